package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dalaba/controller"
	"dalaba/internal/apiclient"
)

// client calls the controller's JSON API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// apiFlags adds --url, --token and --data to fs and returns a constructor.
func apiFlags(fs *flag.FlagSet) func() (*client, error) {
	u := fs.String("url", "", "controller address (default $DALABA_URL or http://127.0.0.1:8440)")
	tok := fs.String("token", "", "API token (default $DALABA_TOKEN, then the one `dalaba login` kept, then DATA/admin.token)")
	data := fs.String("data", "dalaba-data", "data folder, for the token on the controller's machine")
	return func() (*client, error) {
		c := &client{base: firstOf(*u, os.Getenv("DALABA_URL"), "http://127.0.0.1:8440"), token: firstOf(*tok, os.Getenv("DALABA_TOKEN")),
			http: &http.Client{Timeout: 60 * time.Second}}
		for _, f := range []string{tokenFile(), filepath.Join(*data, controller.TokenFile)} {
			if c.token != "" {
				break
			}
			if b, err := os.ReadFile(f); err == nil {
				c.token = strings.TrimSpace(string(b))
			}
		}
		if c.token == "" {
			return nil, errors.New("no API token: run `dalaba login --user NAME`, give --token, set DALABA_TOKEN, or on the controller's machine give --data")
		}
		c.base = strings.TrimRight(c.base, "/")
		return c, nil
	}
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *client) do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	return apiclient.New(c.base, c.token, c.http).Do(ctx, method, path, body, ctype, out)
}

func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", out)
}

func (c *client) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, http.MethodPost, path, body, "application/json", out)
}

func (c *client) upload(ctx context.Context, file string) (map[string]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read audio: %w", err)
	}
	var m map[string]any
	err = c.do(ctx, http.MethodPost, "/api/v1/media?name="+url.QueryEscape(filepath.Base(file)), bytes.NewReader(data), "application/octet-stream", &m)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", file, err)
	}
	return m, nil
}

func httpClient() *http.Client { return &http.Client{Timeout: 60 * time.Second} }

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// download copies a response body to w.
func (c *client) download(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the controller at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// connect parses a subcommand's flags and positional arguments, then makes
// its API client.
func connect(fs *flag.FlagSet, api func() (*client, error), args []string, positional ...string) (*client, []string, error) {
	pos, err := parse(fs, args, positional...)
	if err != nil {
		return nil, nil, err
	}
	c, err := api()
	return c, pos, err
}
