// Barge microphone capture: hands the microphone's samples to the page in ~20 ms batches.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.batch = new Float32Array(Math.round(sampleRate / 50));
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data.type === "stop") this.running = false;
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      let offset = 0;
      while (offset < input.length) {
        const n = Math.min(input.length - offset, this.batch.length - this.filled);
        this.batch.set(input.subarray(offset, offset + n), this.filled);
        this.filled += n;
        offset += n;
        if (this.filled === this.batch.length) {
          this.port.postMessage(this.batch);
          this.batch = new Float32Array(this.batch.length);
          this.filled = 0;
        }
      }
    }
    return this.running;
  }
}

registerProcessor("voicehub-capture", CaptureProcessor);
