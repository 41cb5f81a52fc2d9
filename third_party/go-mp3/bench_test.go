// Copyright 2026 the Dalaba authors. Licensed under the Apache License,
// Version 2.0, as the rest of this package.

package mp3

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// BenchmarkDecode decodes Dalaba's 128 kbit/s joint stereo test file
// (1.045 s), ten times over, reporting ns per second of audio.
func BenchmarkDecode(b *testing.B) {
	one, err := os.ReadFile("../../audio/testdata/tone1k_stereo_44k1_128k_notag.mp3")
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat(one, 10)
	buf := make([]byte, 8192)
	b.ReportAllocs()
	for b.Loop() {
		d, err := NewDecoder(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{d}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
