// The listen-in panel: which side, which rate, start/stop, and the jitter buffer's health.

import { clear, h, toast } from "./dom.js";
import { JITTER_TARGET_MS, Player } from "./listen.js";

const MODES = [["mixed", "Mixed"], ["caller", "Caller"], ["agent", "Agent"]];

export class ListenPanel {
  constructor(app, id) {
    this.monitor = app.monitor;
    this.id = id;
    this.mode = "mixed";
    this.rate = 48000;
    this.player = new Player((stats) => this.health(stats));
    this.queue = Promise.resolve();
    const allowed = app.auth.has("monitor:listen");
    this.modeButtons = MODES.map(([value, label]) => h("button.seg", {
      type: "button", dataset: { mode: value }, "aria-pressed": value === this.mode ? "true" : "false",
      onclick: () => this.setMode(value) }, label));
    this.rateSelect = h("select#listen-rate", { "aria-label": "Sample rate", onchange: (e) => this.setRate(Number(e.target.value)) },
      h("option", { value: "48000" }, "48 kHz"), h("option", { value: "16000" }, "16 kHz"));
    this.button = h("button.btn.btn-primary#listen-toggle", { type: "button", onclick: () => this.toggle(), disabled: !allowed }, "▶ Listen");
    this.bar = h("div.buffer-fill");
    this.state = h("span#listen-state", allowed ? "Not listening" : "Your key lacks monitor:listen");
    this.detail = h("span.muted.small#listen-detail");
    this.out = h("div.meter-fill.out");
    this.el = h("section.panel#listen-panel",
      h("div.panel-head", h("h2", "Listen in"), h("span.muted.small", `${JITTER_TARGET_MS} ms jitter buffer`)),
      h("div.row", h("div.segmented", this.modeButtons), this.rateSelect),
      this.button,
      h("div.buffer", h("div.buffer-track", this.bar, h("div.buffer-target", { style: { left: "50%" } })),
        h("div.buffer-text", this.state, this.detail)),
      h("div.meter-row", h("span.meter-label", "Output"), h("div.meter", this.out)));
    this.off = this.monitor.on("audio", (frame) => {
      if (frame.conversationId === this.id && frame.track === this.mode) this.player.push(frame);
    });
  }

  get active() {
    return this.player.active;
  }

  /** Panel actions (start, stop, switches) run one after another in the order they were asked. */
  serial(fn) {
    const next = this.queue.then(fn);
    this.queue = next.catch((error) => {
      toast(`Listen-in failed: ${error.message || error}`, "error");
      return this.stop().catch(() => {});
    });
    return this.queue;
  }

  toggle() {
    return this.serial(() => (this.player.active ? this.stop() : this.start()));
  }

  async start() {
    await this.player.start(this.rate);
    await this.monitor.listen(this.id, this.mode, this.rate);
    clear(this.button, "■ Stop listening");
    this.button.classList.replace("btn-primary", "btn-danger");
    this.state.textContent = "Buffering…";
  }

  async stop() {
    await this.monitor.stopListening();
    await this.player.stop();
    clear(this.button, "▶ Listen");
    this.button.classList.replace("btn-danger", "btn-primary");
    this.state.textContent = "Not listening";
    this.detail.textContent = "";
    this.bar.style.width = "0%";
    this.out.style.transform = "scaleX(0)";
  }

  setMode(mode) {
    this.mode = mode;
    for (const b of this.modeButtons) b.setAttribute("aria-pressed", b.dataset.mode === mode ? "true" : "false");
    return this.serial(() => (this.player.active ? this.start() : null));
  }

  setRate(rate) {
    this.rate = rate;
    return this.serial(() => (this.player.active ? this.start() : null));
  }

  health(stats) {
    if (!this.player.active) return;
    const target = stats.targetMs || JITTER_TARGET_MS;
    this.bar.style.width = `${Math.min(100, (stats.bufferedMs / (2 * target)) * 100)}%`;
    const healthy = stats.state === "playing" && stats.bufferedMs >= target * 0.4;
    this.bar.className = `buffer-fill ${healthy ? "ok" : "warn"}`;
    this.state.textContent = stats.state === "playing" ? `Playing · ${Math.round(stats.bufferedMs)} ms buffered` : "Buffering…";
    this.detail.textContent = ` · ${stats.underruns} underruns · ${stats.missingFrames || 0} lost frames`;
    this.out.style.transform = `scaleX(${Math.min(1, Math.sqrt(stats.windowPeak || 0))})`;
  }

  disable(reason) {
    this.serial(() => (this.player.active ? this.stop() : null));
    this.button.disabled = true;
    this.state.textContent = reason;
  }

  dispose() {
    this.off();
    this.serial(() => (this.player.active ? this.stop() : null));
  }
}
