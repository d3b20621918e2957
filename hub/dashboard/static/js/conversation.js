// One live conversation: header with live figures, the streaming transcript, and the side panels
// (listen-in, supervisor controls, who is watching, details).

import { liveSeconds } from "./board.js";
import { clear, h, toast } from "./dom.js";
import { agentLabel, dateTime, duration, meterLevel, sentimentOf, shortId, titleCase, usd } from "./format.js";
import { ListenPanel } from "./listen_panel.js";
import { SupervisorPanel } from "./supervisor.js";
import { TranscriptPane } from "./transcript.js";

export class ConversationView {
  constructor(app, id) {
    this.app = app;
    this.monitor = app.monitor;
    this.id = id;
    this.off = [];
    this.timer = 0;
    this.ref = {};
    this.ready = false;
  }

  get entry() {
    const known = this.monitor.conversations.get(this.id);
    if (known) return known;
    this.placeholder ||= { id: this.id, conversation: { id: this.id }, turns: new Map(), items: [], lastSeq: 0, ended: false };
    return this.placeholder;
  }

  mount(root) {
    const m = this.monitor;
    m.pinned.add(this.id);
    const ref = this.ref;
    this.pane = new TranscriptPane();
    this.listen = new ListenPanel(this.app, this.id);
    this.supervisor = new SupervisorPanel(this.app, this.id);
    root.append(
      h("div.conv-head",
        h("a.back", { href: "#/live" }, "← Live calls"),
        h("div.conv-title",
          h("h1", (ref.agent = h("span"))),
          (ref.status = h("span.badge.badge-live", h("span.dot"), "Live")),
          (ref.chips = h("div.chips"))),
        h("div.conv-stats",
          h("div.stat", h("span.stat-label", "Duration"), (ref.duration = h("span.stat-value.mono.duration"))),
          h("div.stat", h("span.stat-label", "Cost"), (ref.cost = h("span.stat-value.mono"))),
          h("div.stat", h("span.stat-label", "Sentiment"), (ref.sentiment = h("span.stat-value"))))),
      (ref.endedNote = h("div.notice", { hidden: true })),
      h("div.conv-layout",
        h("section.panel.transcript-panel",
          h("div.panel-head", h("h2", "Transcript"),
            h("div.legend", h("span.legend-caller", "Caller"), h("span.legend-agent", "Agent"), h("span.legend-partial", "speaking…"))),
          this.pane.el),
        h("aside.side",
          this.levelsCard(),
          this.listen.el,
          this.supervisor.el,
          h("section.panel", h("div.panel-head", h("h2", "Watching"), (ref.watchCount = h("span.count"))), (ref.watchers = h("ul.watchers"))),
          h("section.panel", h("div.panel-head", h("h2", "Details")), (ref.details = h("dl.details"))))));
    const mine = (fn) => (entry, ...rest) => { if (entry.id === this.id) fn(entry, ...rest); };
    this.off.push(
      m.on("turn", mine((e, turn) => this.pane.turn(turn))),
      m.on("item", mine((e, item) => this.pane.item(item))),
      m.on("snapshot", mine((e) => { this.pane.render(e); this.header(); })),
      m.on("added", mine(() => this.header())), m.on("updated", mine(() => this.header())),
      m.on("ended", mine(() => this.ended())),
      m.on("presence", mine((e) => this.watchers(e.watchers))),
      m.on("level", mine((e) => this.levels(e.levels))),
      m.on("removed", mine(() => this.gone())),
      m.on("state", (state) => { if (state === "connected") this.ensure(); }),
    );
    this.pane.render(this.entry);
    this.header();
    this.timer = setInterval(() => this.tick(), 1000);
    if (m.state === "connected") this.ensure();
  }

  unmount() {
    clearInterval(this.timer);
    for (const off of this.off) off();
    this.listen.dispose();
    this.supervisor.dispose();
    this.monitor.pinned.delete(this.id);
    const entry = this.monitor.conversations.get(this.id);
    if (entry && entry.ended) this.monitor.release(this.id);
  }

  /** Subscribed (snapshot first) and presence known; again after every reconnect. */
  async ensure() {
    if (!this.entry.subscribed) await this.monitor.subscribe(this.id);
    const entry = this.monitor.conversations.get(this.id);
    if (!entry) return;
    try {
      this.watchers(await this.monitor.presence(this.id));
    } catch (error) {
      toast(error.message, "error");
    }
    if (entry.ended) this.ended();
  }

  levelsCard() {
    const ref = this.ref;
    const meter = (side, label) => h("div.meter-row", h("span.meter-label", label), h("div.meter", (ref[`${side}Meter`] = h(`div.meter-fill.${side}`))));
    return h("section.panel",
      h("div.panel-head", h("h2", "Levels"), (ref.levelsNote = h("span.muted.small", ""))),
      h("div.meters", meter("caller", "Caller"), meter("agent", "Agent")));
  }

  header() {
    const c = this.entry.conversation;
    const ref = this.ref;
    ref.agent.textContent = agentLabel(c);
    document.title = `${agentLabel(c)} · VoiceHub`;
    clear(ref.chips,
      h("span.chip.mono", shortId(this.id)),
      c.channel && h("span.chip", titleCase(c.channel)),
      c.direction && h("span.chip", c.direction === "outbound" ? "↗ Outbound" : "↙ Inbound"),
      (c.tags || []).map((t) => h("span.chip.chip-tag", `#${t}`)));
    ref.cost.textContent = usd(c.cost && c.cost.totalUsd);
    const sentiment = sentimentOf(c);
    clear(ref.sentiment, sentiment ? h(`span.sentiment.s-${sentiment}`, titleCase(sentiment)) : h("span.muted", "—"));
    const caller = c.caller || {};
    clear(ref.details,
      h("dt", "Conversation"), h("dd.mono", this.id),
      h("dt", "Agent"), h("dd.mono", c.agentId || "—"),
      h("dt", "Started"), h("dd", dateTime(c.startedAt)),
      h("dt", "Caller"), h("dd", [caller.phoneNumber, caller.country].filter(Boolean).join(" · ") || "—"),
      h("dt", "Outcome"), h("dd", c.outcome || "—"));
    this.tick();
  }

  tick() {
    this.ref.duration.textContent = duration(liveSeconds(this.entry));
    const levels = this.entry.levels;
    if (this.listen.active) this.ref.levelsNote.textContent = "paused while listening";
    else this.ref.levelsNote.textContent = "";
    if (!levels || performance.now() - levels.at > 1500) this.levels(null);
  }

  levels(levels) {
    this.ref.callerMeter.style.transform = `scaleX(${levels ? meterLevel(levels.caller) : 0})`;
    this.ref.agentMeter.style.transform = `scaleX(${levels ? meterLevel(levels.agent) : 0})`;
  }

  watchers(list) {
    const me = this.monitor.connectionId;
    this.ref.watchCount.textContent = String((list || []).length);
    clear(this.ref.watchers, (list || []).map((w) => h("li.watcher",
      h("span.avatar", (w.userId || "?").slice(-2).toUpperCase()),
      h("div", h("div", shortId(w.userId), w.connectionId === me ? h("span.you", "you") : null),
        h("div.muted.small", (w.capabilities || []).map((cap) => cap.replace("monitor:", "")).join(" · "))))));
  }

  ended() {
    const c = this.entry.conversation;
    const ref = this.ref;
    clear(ref.status, titleCase(c.status || "ended"));
    ref.status.className = "badge badge-ended";
    ref.endedNote.hidden = false;
    this.pane.list.classList.add("ended"); // a turn cut off by the hang-up stays unfinished, not "speaking"
    clear(ref.endedNote, `This call ended${c.endReason ? ` (${c.endReason.replace(/_/g, " ")})` : ""} after ${duration(c.durationSeconds)}. `,
      h("a", { href: `#/history/${this.id}` }, "Open it in history →"));
    this.listen.disable("The call has ended.");
    this.supervisor.disable("The call has ended.");
    this.tick();
  }

  gone() {
    this.ref.endedNote.hidden = false;
    clear(this.ref.endedNote, "The hub no longer knows this conversation. ", h("a", { href: "#/history" }, "Search the history →"));
    this.listen.disable("Not available.");
    this.supervisor.disable("Not available.");
  }
}
