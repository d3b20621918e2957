// Supervisor controls (scope monitor:control): whisper to the agent, barge with push-to-talk from the
// microphone (SendSupervisorAudio, PCM16 16 kHz), release, and end the call.

import { Microphone } from "./barge.js";
import { clear, h, toast } from "./dom.js";

export class SupervisorPanel {
  constructor(app, id) {
    this.monitor = app.monitor;
    this.id = id;
    this.barged = false;
    this.mic = new Microphone((bytes) => this.monitor.invoke("SendSupervisorAudio", this.id, bytes));
    const allowed = app.auth.has("monitor:control");
    this.whisperInput = h("input#whisper-text", { type: "text", placeholder: "Guidance for the agent…", maxlength: 500, disabled: !allowed });
    this.bargeButton = h("button.btn#barge", { type: "button", disabled: !allowed, onclick: () => this.toggleBarge() }, "Barge");
    this.talkButton = h("button.btn.btn-talk#talk", { type: "button", disabled: true }, "Hold to talk");
    this.endButton = h("button.btn.btn-danger-outline#end-call", { type: "button", disabled: !allowed, onclick: () => this.askEnd() }, "End call");
    this.confirm = h("div.confirm", { hidden: true },
      h("span", "End this call for the caller?"),
      h("button.btn.btn-small", { type: "button", onclick: () => this.cancelEnd() }, "Cancel"),
      h("button.btn.btn-small.btn-danger#end-confirm", { type: "button", onclick: () => this.endCall() }, "End call"));
    this.note = h("p.muted.small#supervisor-note", allowed ? "Barge takes the call over from the agent." : "Your key lacks monitor:control.");
    this.micLevel = h("div.meter-fill.mic");
    this.el = h("section.panel#supervisor-panel",
      h("div.panel-head", h("h2", "Supervisor")),
      h("form.whisper", { onsubmit: (e) => { e.preventDefault(); this.whisper(); } },
        this.whisperInput, h("button.btn#whisper-send", { type: "submit", disabled: !allowed }, "Whisper")),
      h("div.row", this.bargeButton, this.talkButton, this.endButton),
      (this.micRow = h("div.meter-row", { hidden: true }, h("span.meter-label", "Mic"), h("div.meter", this.micLevel))),
      this.confirm, this.note);
    const talk = (on) => (event) => {
      if (!this.barged) return;
      event.preventDefault();
      this.mic.setTalking(on);
      this.talkButton.classList.toggle("talking", on);
      clear(this.talkButton, on ? "Talking…" : "Hold to talk");
      this.note.textContent = on ? "The caller hears you." : "You hold the call. Hold the button (or Space) to speak to the caller.";
    };
    this.talkButton.addEventListener("pointerdown", (e) => { this.talkButton.setPointerCapture(e.pointerId); talk(true)(e); });
    for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) this.talkButton.addEventListener(name, talk(false));
    this.onKey = (event) => {
      if (event.code !== "Space" || !this.barged || /INPUT|TEXTAREA|SELECT/.test(event.target.tagName)) return;
      if (event.target.tagName === "BUTTON" && event.target !== this.talkButton) return; // Space activates other buttons
      if (event.type === "keydown" && !event.repeat) talk(true)(event);
      else if (event.type === "keyup") talk(false)(event);
    };
    window.addEventListener("keydown", this.onKey);
    window.addEventListener("keyup", this.onKey);
    this.meterTimer = setInterval(() => {
      const mic = window.voicehubStats && window.voicehubStats.mic;
      const level = mic && this.mic.talking ? mic.level || 0 : 0;
      this.micLevel.style.transform = `scaleX(${Math.min(1, Math.sqrt(level))})`;
    }, 100);
  }

  async whisper() {
    const text = this.whisperInput.value.trim();
    if (!text) return;
    try {
      await this.monitor.invoke("Whisper", this.id, text);
      this.whisperInput.value = "";
      toast("Whisper sent to the agent.");
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async toggleBarge() {
    this.bargeButton.disabled = true;
    try {
      if (this.barged) await this.release();
      else await this.barge();
    } catch (error) {
      toast(error.message, "error");
    } finally {
      this.bargeButton.disabled = false;
    }
  }

  async barge() {
    await this.monitor.invoke("Barge", this.id);
    this.barged = true;
    clear(this.bargeButton, "Release");
    this.bargeButton.classList.add("btn-warn");
    this.el.classList.add("barged");
    try {
      await this.mic.start();
      this.talkButton.disabled = false;
      this.talkButton.focus(); // Space now talks instead of pressing Release
      this.micRow.hidden = false;
      this.note.textContent = "You hold the call. Hold the button (or Space) to speak to the caller.";
    } catch (error) {
      this.note.textContent = `Microphone unavailable (${error.message || error}); release when done.`;
    }
  }

  async release() {
    this.mic.setTalking(false);
    this.talkButton.disabled = true;
    this.talkButton.classList.remove("talking");
    this.micRow.hidden = true;
    await this.mic.close();
    this.barged = false;
    clear(this.bargeButton, "Barge");
    this.bargeButton.classList.remove("btn-warn");
    this.el.classList.remove("barged");
    this.note.textContent = "Released: the agent has the call again.";
    await this.monitor.invoke("ReleaseBarge", this.id);
  }

  askEnd() {
    this.confirm.hidden = false;
    this.endButton.hidden = true;
  }

  cancelEnd() {
    this.confirm.hidden = true;
    this.endButton.hidden = false;
  }

  async endCall() {
    this.cancelEnd();
    try {
      await this.monitor.invoke("EndConversation", this.id, "supervisor_ended");
      toast("Ending the call…");
    } catch (error) {
      toast(error.message, "error");
    }
  }

  disable(reason) {
    if (this.barged) this.release().catch(() => {});
    for (const el of this.el.querySelectorAll("button, input")) el.disabled = true;
    this.note.textContent = reason;
  }

  dispose() {
    clearInterval(this.meterTimer);
    window.removeEventListener("keydown", this.onKey);
    window.removeEventListener("keyup", this.onKey);
    if (this.barged) this.release().catch(() => {});
    else this.mic.close().catch(() => {});
  }
}
