package main

import (
	"context"
	"fmt"
	"strings"

	"dalaba/controller"
)

// cmdTTS speaks a text on the controller and stores it as media.
func cmdTTS(ctx context.Context, args []string) error {
	fs := newFlags("media tts")
	api := apiFlags(fs)
	lang := fs.String("lang", "zh", "language of the text: zh (Mandarin) or en, or one configured in \"tts\".voices")
	tone := fs.Bool("tone", false, "an attention chime before the speech")
	c, pos, err := connect(fs, api, args, "TEXT")
	if err != nil {
		return err
	}
	m, err := c.speak(ctx, controller.TTSRequest{Text: pos[0], Lang: *lang, AttentionTone: *tone})
	if err != nil {
		return err
	}
	fmt.Printf("%s  %v  %v bytes  %.1f s  %v\n", m["sha256"], m["format"], m["size"], m["duration_ms"].(float64)/1000, m["name"])
	return nil
}

// speak asks the controller to speak a text and returns the media it stored.
func (c *client) speak(ctx context.Context, req controller.TTSRequest) (map[string]any, error) {
	if strings.TrimSpace(req.Text) == "" {
		return nil, fmt.Errorf("text is empty: give the words to read out")
	}
	var m map[string]any
	if err := c.post(ctx, "/api/v1/media/tts", req, &m); err != nil {
		return nil, fmt.Errorf("text to speech: %w", err)
	}
	return m, nil
}
