package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/audio"
	"dalaba/controller"
	"dalaba/protocol"
)

// cmdLive streams a WAV or MP3 file, or raw PCM from standard input, as
// live speech (喊话) at real-time pace.
func cmdLive(ctx context.Context, args []string) error {
	fs := newFlags("live")
	api := apiFlags(fs)
	var areas, terms multi
	fs.Var(&areas, "area", "target area code (repeatable)")
	fs.Var(&terms, "terminal", "target terminal id (repeatable)")
	title := fs.String("title", "", "title shown in the alert list (default 喊话)")
	class := fs.String("class", protocol.ClassDaily, "daily, or emergency (where the county's policy lets it go without approval)")
	level := fs.Int("level", 0, "emergency level 1..4 (0 for a daily notice)")
	volume := fs.Int("volume", 0, "0..100 (0: by class and each terminal's own volume)")
	maxSec := fs.Int("max-seconds", 0, "end the session after this many seconds (default 600)")
	verbose := fs.Bool("v", false, "print when the first frame was sent (for latency measurements)")
	pos, err := parse(fs, args, "FILE | -")
	if err != nil {
		return err
	}
	src, err := liveSource(pos[0])
	if err != nil {
		return err
	}
	c, err := api()
	if err != nil {
		return err
	}
	conn, err := c.dialLive(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := controller.LiveRequest{Class: *class, Level: *level, Title: *title, Areas: areas, Terminals: terms, Volume: *volume, MaxSeconds: *maxSec}
	if err := conn.WriteJSON(req); err != nil {
		return fmt.Errorf("live: send the request: %w", err)
	}
	var m controller.LiveMessage
	if err := conn.ReadJSON(&m); err != nil {
		return fmt.Errorf("live: no answer from the controller: %w", err)
	}
	if m.Type != "started" {
		if m.Field != "" {
			return fmt.Errorf("live: %s: %s", m.Field, m.Error)
		}
		return fmt.Errorf("live: %s", m.Error)
	}
	fmt.Printf("live %s to %d terminals (%d online); speaking (Ctrl-C ends)\n", m.AlertID, m.Terminals, m.Online)
	answers := make(chan controller.LiveMessage, 4)
	go func() {
		defer close(answers)
		for {
			var m controller.LiveMessage
			if conn.ReadJSON(&m) != nil {
				return
			}
			answers <- m
		}
	}()
	sendErr := streamLive(ctx, conn, src, answers, *verbose)
	conn.WriteJSON(controller.LiveMessage{Type: "end"})
	for {
		select {
		case m, ok := <-answers:
			switch {
			case !ok:
				return errors.Join(sendErr, errors.New("live: the controller closed the connection"))
			case m.Type == "error":
				return fmt.Errorf("live: %s", m.Error)
			case m.Type == "ended":
				fmt.Printf("live %s ended (%s) after %d s: %d frames, %d dropped\n", m.AlertID, m.Reason, m.Seconds, m.Frames, m.Dropped)
				return sendErr
			}
		case <-time.After(5 * time.Second):
			return errors.Join(sendErr, errors.New("live: the controller did not confirm the end"))
		}
	}
}

// streamLive sends src in 20 ms frames, frame i at i·20 ms after the first
// (at once when the source is slower, as a microphone on stdin is), until
// it ends, ctx ends, or the controller ends the session.
func streamLive(ctx context.Context, conn *websocket.Conn, src io.Reader, answers <-chan controller.LiveMessage, verbose bool) error {
	frame := make([]byte, protocol.LiveFrameBytes)
	var first time.Time
	for i := 0; ; i++ {
		n, err := io.ReadFull(src, frame)
		n -= n % 2
		if n > 0 {
			if i == 0 {
				first = time.Now()
				if verbose {
					fmt.Fprintf(os.Stderr, "first frame sent at %d\n", first.UnixNano())
				}
			} else if d := time.Until(first.Add(time.Duration(i) * protocol.LiveFrameMS * time.Millisecond)); d > 0 {
				select {
				case <-ctx.Done():
					return nil
				case m := <-answers:
					return fmt.Errorf("live: the controller ended the session: %s%s", m.Reason, m.Error)
				case <-time.After(d):
				}
			}
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(websocket.BinaryMessage, frame[:n]); err != nil {
				return fmt.Errorf("live: send audio: %w", err)
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return fmt.Errorf("live: read audio: %w", err)
		}
	}
}

// liveSource opens the audio to speak: a WAV or MP3 file, converted to
// 16 kHz mono, or with "-" raw s16le 16 kHz mono PCM from standard input.
func liveSource(name string) (io.Reader, error) {
	if name == "-" {
		return os.Stdin, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	format := audio.Sniff(data)
	if format == "" {
		return nil, fmt.Errorf("live: %s is neither WAV nor MP3 (for raw s16le 16 kHz mono PCM, pipe it in and give -)", name)
	}
	if _, err := audio.Probe(data); err != nil {
		return nil, fmt.Errorf("live: %s: %w", name, err)
	}
	stereo, err := audio.Decode(bytes.NewReader(data), format, protocol.LiveRate, 100)
	if err != nil {
		return nil, fmt.Errorf("live: %s: %w", name, err)
	}
	return &leftChannel{r: stereo}, nil
}

// leftChannel turns s16le stereo into mono by keeping the left channel
// (Decode duplicates mono input into both).
type leftChannel struct {
	r   io.Reader
	buf []byte
}

func (l *leftChannel) Read(p []byte) (int, error) {
	want := len(p) / 2 * 4
	if cap(l.buf) < want {
		l.buf = make([]byte, want)
	}
	n, err := io.ReadFull(l.r, l.buf[:want])
	n -= n % 4
	for i := 0; i < n; i += 4 {
		p[i/2], p[i/2+1] = l.buf[i], l.buf[i+1]
	}
	if n == 0 && err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	if n > 0 && err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n / 2, err
}

// dialLive opens the live speech WebSocket with the API token.
func (c *client) dialLive(ctx context.Context) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/live"
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + c.token}})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return nil, fmt.Errorf("live: the controller refused (%s): %s", resp.Status, bytes.TrimSpace(body))
		}
		return nil, fmt.Errorf("live: connect to %s: %w", u, err)
	}
	return conn, nil
}
