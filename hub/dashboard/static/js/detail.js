// One past conversation: summary, recording player (signed URL from /recording), transcript, costs
// and analysis, each from its REST endpoint.

import { clear, h } from "./dom.js";
import { agentLabel, dateTime, duration, offset, titleCase, usd } from "./format.js";

export class DetailView {
  constructor(app, id) {
    this.api = app.api;
    this.id = id;
    this.alive = true;
  }

  mount(root) {
    this.root = root;
    root.append(h("a.back", { href: "#/history" }, "← History"), h("p.muted", "Loading…"));
    this.load();
  }

  unmount() {
    this.alive = false;
  }

  async optional(path) {
    try {
      return await this.api.get(path);
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  async load() {
    const base = `/conversations/${encodeURIComponent(this.id)}`;
    let results;
    try {
      // Only ask for what the conversation says exists: a 404 would be a console error in the browser.
      const c = await this.api.get(base);
      results = [c, ...await Promise.all([
        this.optional(`${base}/transcript`), this.optional(`${base}/costs`),
        c.analysis ? this.optional(`${base}/analysis`) : null,
        c.recording && c.recording.available ? this.optional(`${base}/recording`) : null])];
    } catch (error) {
      if (this.alive) clear(this.root, h("a.back", { href: "#/history" }, "← History"), h("p.form-error", error.message));
      return;
    }
    if (!this.alive) return;
    const [c, transcript, costs, analysis, recording] = results;
    document.title = `${agentLabel(c)} · History · VoiceHub`;
    clear(this.root,
      h("div.conv-head",
        h("a.back", { href: "#/history" }, "← History"),
        h("div.conv-title", h("h1", agentLabel(c)), h(`span.status.st-${c.status}`, titleCase(c.status)),
          h("div.chips", h("span.chip.mono", c.id), h("span.chip", titleCase(c.channel)), h("span.chip", titleCase(c.direction)),
            (c.tags || []).map((t) => h("span.chip.chip-tag", `#${t}`)))),
        h("div.conv-stats",
          h("div.stat", h("span.stat-label", "Started"), h("span.stat-value", dateTime(c.startedAt))),
          h("div.stat", h("span.stat-label", "Duration"), h("span.stat-value.mono", duration(c.durationSeconds))),
          h("div.stat", h("span.stat-label", "Cost"), h("span.stat-value.mono", usd(c.cost && c.cost.totalUsd))))),
      h("div.conv-layout",
        h("div.stack",
          this.recording(recording, c),
          h("section.panel.transcript-panel.static", h("div.panel-head", h("h2", "Transcript")), this.transcript(transcript))),
        h("aside.side", this.costs(costs), this.analysis(analysis), this.details(c))));
  }

  recording(recording, c) {
    const body = recording && recording.url
      ? [h("audio#recording", { controls: true, preload: "metadata", src: recording.url }),
         h("p.muted.small", `MP3 · ${duration(recording.durationSeconds)} · link valid until ${dateTime(recording.expiresAt)}`)]
      : h("p.muted", c.status === "in_progress" ? "The recording is available when the call ends." : "No recording for this conversation.");
    return h("section.panel#recording-panel", h("div.panel-head", h("h2", "Recording")), body);
  }

  transcript(transcript) {
    const turns = (transcript && transcript.turns) || [];
    if (!turns.length) return h("p.muted.pad", "No transcript.");
    return h("ol.transcript.static-list", turns.map((t) => h(`li.turn.role-${t.speaker === "agent" ? "agent" : "user"}`,
      h("div.turn-meta", h("span.speaker", t.speaker === "agent" ? "Agent" : "Caller"), h("span.time.mono", offset(t.startTime))),
      h("div.bubble", t.text))));
  }

  costs(costs) {
    const breakdown = (costs && costs.breakdown) || {};
    const rows = Object.entries(breakdown).map(([name, part]) => h("tr",
      h("td", name.length <= 3 ? name.toUpperCase() : titleCase(name)), h("td.muted.small", [part.provider, part.model].filter(Boolean).join(" · ")),
      h("td.mono.num", usd(part.cost))));
    return h("section.panel#costs-panel", h("div.panel-head", h("h2", "Costs"), h("span.mono", usd(costs ? costs.total : 0))),
      rows.length ? h("table.table.compact", h("tbody", rows)) : h("p.muted", "No costs recorded."));
  }

  analysis(analysis) {
    if (!analysis) return h("section.panel#analysis-panel", h("div.panel-head", h("h2", "Analysis")), h("p.muted", "No analysis yet."));
    const fields = [["Sentiment", analysis.sentiment && `${titleCase(analysis.sentiment)}${analysis.sentimentScore !== undefined ? ` (${analysis.sentimentScore})` : ""}`],
      ["Intent", analysis.intent && titleCase(analysis.intent)], ["Topics", (analysis.topics || []).join(", ")], ["Quality", analysis.callQualityScore]];
    return h("section.panel#analysis-panel", h("div.panel-head", h("h2", "Analysis")),
      analysis.summary ? h("p.summary", analysis.summary) : null,
      h("dl.details", fields.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [h("dt", k), h("dd", String(v))])));
  }

  details(c) {
    const caller = c.caller || {};
    return h("section.panel", h("div.panel-head", h("h2", "Details")),
      h("dl.details",
        h("dt", "Agent"), h("dd.mono", c.agentId || "—"),
        h("dt", "Ended"), h("dd", dateTime(c.endedAt)),
        h("dt", "Caller"), h("dd", [caller.phoneNumber, caller.country].filter(Boolean).join(" · ") || "—"),
        h("dt", "Outcome"), h("dd", c.outcome || "—")));
  }
}
