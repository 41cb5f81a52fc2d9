// Package apiclient calls the controller's JSON API with a bearer token.
// The operator CLI and the fleet simulator share it.
package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls one controller with one token.
type Client struct {
	Base  string // e.g. http://127.0.0.1:8440, no trailing slash
	Token string
	HTTP  *http.Client
}

// New returns a client for base with token.
func New(base, token string, hc *http.Client) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: hc}
}

// Error is an answer of 300 or above. Error() is the controller's own
// message, which says what was wrong and what to do.
type Error struct {
	Method, Path string
	Status       int
	Message      string // the controller's "error"; empty when it sent none
	Field        string // the request field it names, if any
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
}

// Do sends body (content type ctype, when body is not nil) and decodes a
// JSON answer into out when out is not nil.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil && ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the controller at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Method: method, Path: path, Status: resp.StatusCode}
		var msg struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		if json.Unmarshal(data, &msg) == nil {
			e.Message, e.Field = msg.Error, msg.Field
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return nil
}
