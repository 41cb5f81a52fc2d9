package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("融安-Flood-2026")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoding %s", h)
	}
	h2, _ := HashPassword("融安-Flood-2026")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	cases := []struct {
		name, hash, pw string
		want           bool
	}{
		{"right", h, "融安-Flood-2026", true},
		{"wrong", h, "融安-Flood-2027", false},
		{"empty", h, "", false},
		{"malformed hash", "$argon2id$v=19$m=1,t=1$x$y", "融安-Flood-2026", false},
		{"other algorithm", strings.Replace(h, "argon2id", "argon2i", 1), "融安-Flood-2026", false},
		{"absurd memory", strings.Replace(h, "m=19456", "m=99999999", 1), "融安-Flood-2026", false},
	}
	for _, c := range cases {
		if got := CheckPassword(c.hash, c.pw); got != c.want {
			t.Errorf("%s: CheckPassword = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPasswordRules(t *testing.T) {
	cases := []struct {
		pw, user string
		ok       bool
	}{
		{"short1!", "li", false},
		{"zhangwei-2026x", "zhangwei", false},
		{"password123", "li", false},
		{"aaaaaaaaaaaa", "li", false},
		{"onlyletterslong", "li", false},
		{"Tide-gauge-42", "li", true},
		{"大巷村广播2026年", "li", true},
		{OneTimePassword(), "admin", true},
	}
	for _, c := range cases {
		err := CheckPasswordRules(c.pw, c.user)
		if (err == nil) != c.ok {
			t.Errorf("CheckPasswordRules(%q) = %v, want ok=%v", c.pw, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrWeakPassword) {
			t.Errorf("%q: error %v does not wrap ErrWeakPassword", c.pw, err)
		}
	}
}

func TestThrottle(t *testing.T) {
	th := NewThrottle(3, time.Minute, 10*time.Minute)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 2; i++ {
		if th.Fail("li", t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if !th.Fail("li", t0.Add(2*time.Second)) {
		t.Fatal("not locked after 3 failures")
	}
	if locked, until := th.Locked("li", t0.Add(5*time.Minute)); !locked || !until.Equal(t0.Add(2*time.Second+10*time.Minute)) {
		t.Fatalf("Locked = %v until %v", locked, until)
	}
	if locked, _ := th.Locked("li", t0.Add(11*time.Minute)); locked {
		t.Fatal("still locked after the lockout")
	}
	if locked, _ := th.Locked("wang", t0); locked {
		t.Fatal("another account locked")
	}
	// Failures spread beyond the window do not add up.
	for i := 0; i < 5; i++ {
		if th.Fail("zhao", t0.Add(time.Duration(i)*2*time.Minute)) {
			t.Fatal("locked by failures outside the window")
		}
	}
	th.Succeed("zhao")
}
