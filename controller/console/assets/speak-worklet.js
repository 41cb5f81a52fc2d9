// The microphone side of live speech (views/speak.js): an AudioWorklet that
// turns the first input channel, at the audio context's rate, into 16 kHz
// s16le mono frames of 20 ms (320 samples, 640 bytes) posted to the page
// with their peak level (0..1). Each output sample is the mean of the input
// samples of its 1/16000 s: a box filter, which keeps speech and removes
// most of what would alias.
const OUT_RATE = 16000;
const FRAME = 320;

class PCM16k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.phase = 0; // advances OUT_RATE per input sample; an output sample is due at sampleRate
    this.acc = 0;
    this.n = 0;
    this.frame = new Int16Array(FRAME);
    this.at = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      this.acc += input[i];
      this.n++;
      this.phase += OUT_RATE;
      if (this.phase < sampleRate) continue;
      this.phase -= sampleRate;
      const v = Math.max(-1, Math.min(1, this.acc / this.n));
      this.acc = 0;
      this.n = 0;
      this.peak = Math.max(this.peak, Math.abs(v));
      this.frame[this.at++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.at === FRAME) {
        const out = this.frame.buffer;
        this.port.postMessage({pcm: out, peak: this.peak}, [out]);
        this.frame = new Int16Array(FRAME);
        this.at = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor('dalaba-pcm16k', PCM16k);
