// Package audio validates, decodes and plays the audio of Dalaba alerts.
//
// Files are 16-bit PCM WAV or MP3 (MPEG-1/2 layer III). Probe validates an
// uploaded file completely and measures it; Decode turns a file into the one
// PCM format every Sink plays: interleaved signed 16-bit little-endian stereo
// at the sink's rate, with the volume applied.
//
// Sinks play in real time: OpenSystemOutput opens the system audio, a
// PulseStreamSink while a PulseAudio server answers, else an OtoSink (ALSA);
// WAVFileSink into WAV files for demos without an audio server, and
// SilentSink, which only keeps time, for simulated terminals.
//
// ToneWAV, ReadWAV and ToneSegments make and analyse test tones, so tests and
// technicians can check what a loudspeaker line actually carried.
package audio
