// Package auth holds the controller's sign-in mechanics: password hashing
// with argon2id, password rules, and throttling of failed sign-ins per
// account and per source address.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum for argon2id (19 MiB, 2 passes, 1
// lane), about 30 ms on the controller's small server.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an encoded argon2id hash with a fresh salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches an encoded hash, in constant time
// for the comparison. A malformed hash never matches.
func CheckPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// ErrWeakPassword wraps every password-rule failure.
var ErrWeakPassword = errors.New("password too weak")

// common are passwords seen first in every breach list and on broadcast
// equipment's default-credential lists; they are refused whatever their length.
var common = []string{"password", "12345678", "123456789", "1234567890", "qwertyuiop", "admin", "administrator",
	"dalaba", "broadcast", "iloveyou", "00000000", "11111111", "88888888", "abc123456", "password123", "admin123456",
	"woaini1314", "qwerty123", "1q2w3e4r5t", "a123456789"}

// CheckPasswordRules explains what is wrong with a new password, naming the
// rule, or returns nil. Rules: at least MinPasswordLength characters, not
// the user name, not a well-known password, not one repeated character, and
// at least two kinds of character (letters, digits, others).
func CheckPasswordRules(pw, user string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength {
		return fmt.Errorf("%w: it has %d characters; use at least %d", ErrWeakPassword, n, MinPasswordLength)
	}
	lower := strings.ToLower(pw)
	if user != "" && strings.Contains(lower, strings.ToLower(user)) {
		return fmt.Errorf("%w: it contains the user name", ErrWeakPassword)
	}
	for _, c := range common {
		if strings.Contains(lower, c) && len(c) >= n-2 {
			return fmt.Errorf("%w: it is a well-known password", ErrWeakPassword)
		}
	}
	first, _ := utf8.DecodeRuneInString(pw)
	if strings.Trim(pw, string(first)) == "" {
		return fmt.Errorf("%w: it repeats one character", ErrWeakPassword)
	}
	var letters, digits, others bool
	for _, r := range pw {
		switch {
		case unicode.IsLetter(r):
			letters = true
		case unicode.IsDigit(r):
			digits = true
		default:
			others = true
		}
	}
	kinds := 0
	for _, k := range []bool{letters, digits, others} {
		if k {
			kinds++
		}
	}
	if kinds < 2 {
		return fmt.Errorf("%w: mix at least two kinds of character (letters, digits, symbols)", ErrWeakPassword)
	}
	return nil
}

// OneTimePassword returns a random password that meets the rules, for an
// account whose holder must change it at first sign-in.
func OneTimePassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	rand.Read(b)
	out := make([]byte, 0, 19)
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			out = append(out, '-')
		}
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}
