package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"dalaba/internal/apiclient"
)

// api calls the controller's JSON API with one bearer token.
type api struct{ *apiclient.Client }

func newAPI(base, token string) *api {
	return &api{apiclient.New(base, token, &http.Client{Timeout: 2 * time.Minute})}
}

// do sends body (JSON-encoded unless it is []byte) and decodes a JSON answer
// into out when out is not nil.
func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	if err := a.Do(ctx, method, path, rd, ctype, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
