package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDo: the token is sent, a JSON answer is decoded, and an error answer
// becomes an *Error carrying the controller's message and field.
func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"sign in first"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"n":3}`))
		case "/bad":
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"level: 7 is outside 1..4","field":"level"}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`<html>proxy</html>`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "tok", srv.Client())
	var out struct{ N int }
	if err := c.Do(context.Background(), "GET", "/ok", nil, "", &out); err != nil || out.N != 3 {
		t.Fatalf("ok: %v, %+v", err, out)
	}
	var e *Error
	err := c.Do(context.Background(), "POST", "/bad", strings.NewReader("{}"), "application/json", nil)
	if !errors.As(err, &e) || e.Status != 400 || e.Field != "level" || err.Error() != "level: 7 is outside 1..4" {
		t.Fatalf("bad request: %#v", err)
	}
	err = c.Do(context.Background(), "GET", "/gone", nil, "", nil)
	if !errors.As(err, &e) || err.Error() != "GET /gone: HTTP 502 Bad Gateway" {
		t.Fatalf("non-JSON error: %v", err)
	}
	if err := New(srv.URL, "wrong", srv.Client()).Do(context.Background(), "GET", "/ok", nil, "", nil); err == nil || err.Error() != "sign in first" {
		t.Fatalf("wrong token: %v", err)
	}
}
