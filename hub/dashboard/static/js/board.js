// The live calls board: every in-progress conversation as a card (agent, channel, direction, ticking
// duration, live cost, sentiment, level meters per side, the latest transcript line). Calls appear and
// leave as the hub reports them; filters (agent, channel, tags) apply to what is shown.

import { $, clear, h } from "./dom.js";
import { agentLabel, duration, meterLevel, sentimentOf, shortId, titleCase, usd } from "./format.js";

const CHANNELS = ["phone", "webrtc", "webchat", "sms", "whatsapp", "telegram"];
const ENDED_LINGER_MS = 2500;
const filters = { agent: "", channel: "", tags: "" };

export class BoardView {
  constructor(app) {
    this.app = app;
    this.monitor = app.monitor;
    this.cards = new Map();
    this.off = [];
    this.timer = 0;
  }

  mount(root) {
    this.agentSelect = h("select#f-agent", { "aria-label": "Agent", onchange: (e) => this.setFilter("agent", e.target.value) });
    const channel = h("select#f-channel", { "aria-label": "Channel", onchange: (e) => this.setFilter("channel", e.target.value) },
      h("option", { value: "" }, "All channels"), CHANNELS.map((c) => h("option", { value: c }, titleCase(c))));
    channel.value = filters.channel;
    const tags = h("input#f-tags", { type: "search", placeholder: "Tags, comma separated", value: filters.tags,
                                     "aria-label": "Tags", oninput: (e) => this.setFilter("tags", e.target.value) });
    this.summary = h("p.muted.page-sub");
    this.grid = h("div.board#board");
    this.empty = h("div.empty",
      h("div.empty-icon", "◌"),
      h("h3", "No live calls right now"),
      h("p.muted", "Calls appear here the moment they start. For a demo, run ", h("code", "./scripts/serve --demo 3"), "."));
    const kpi = (label) => { const value = h("span.kpi-value.mono", "–"); return [h("div.kpi", h("span.stat-label", label), value), value]; };
    const [live, liveValue] = kpi("Live calls");
    const [longest, longestValue] = kpi("Longest call");
    const [cost, costValue] = kpi("Live cost");
    const [agents, agentsValue] = kpi("Agents on calls");
    this.kpis = { live: liveValue, longest: longestValue, cost: costValue, agents: agentsValue };
    root.append(
      h("div.page-head",
        h("div", h("h1", "Live calls"), this.summary),
        h("div.filters", this.agentSelect, channel, tags)),
      h("div.kpis", live, longest, cost, agents),
      this.grid, this.empty);
    for (const entry of this.monitor.conversations.values()) if (!entry.ended) this.upsert(entry);
    const m = this.monitor;
    this.off.push(
      m.on("added", (e) => this.upsert(e)), m.on("updated", (e) => this.upsert(e)),
      m.on("snapshot", (e) => this.upsert(e)), m.on("turn", (e) => this.updateLine(e)),
      m.on("level", (e) => this.updateLevels(e)), m.on("ended", (e) => this.ended(e)),
      m.on("removed", (e) => this.remove(e.id)));
    this.timer = setInterval(() => this.tick(), 1000);
    this.refresh();
  }

  unmount() {
    clearInterval(this.timer);
    for (const off of this.off) off();
  }

  setFilter(key, value) {
    filters[key] = value;
    this.refresh();
  }

  matches(entry) {
    const c = entry.conversation;
    if (filters.agent && c.agentId !== filters.agent) return false;
    if (filters.channel && c.channel !== filters.channel) return false;
    const wanted = filters.tags.split(",").map((t) => t.trim()).filter(Boolean);
    const have = new Set(c.tags || []);
    return wanted.every((t) => have.has(t));
  }

  upsert(entry) {
    if (entry.ended && !this.cards.has(entry.id)) return;
    let card = this.cards.get(entry.id);
    if (!card) {
      card = this.buildCard(entry);
      this.cards.set(entry.id, card);
      this.grid.prepend(card.el);
    }
    this.fill(card, entry);
    this.refresh();
  }

  buildCard(entry) {
    const ref = {};
    const meter = (side) => h("div.meter-row", h("span.meter-label", side === "caller" ? "Caller" : "Agent"),
      h("div.meter", (ref[`${side}Meter`] = h(`div.meter-fill.${side}`))));
    const el = h("a.card.call-card", { href: `#/live/${entry.id}`, dataset: { id: entry.id } },
      h("div.card-top",
        h("div.card-title", (ref.agent = h("span.agent")), (ref.id = h("span.muted.mono.small"))),
        (ref.status = h("span.badge.badge-live", h("span.dot"), "Live"))),
      (ref.chips = h("div.chips")),
      h("div.stats",
        h("div.stat", h("span.stat-label", "Duration"), (ref.duration = h("span.stat-value.mono.duration"))),
        h("div.stat", h("span.stat-label", "Cost"), (ref.cost = h("span.stat-value.mono"))),
        h("div.stat", h("span.stat-label", "Sentiment"), (ref.sentiment = h("span.stat-value")))),
      h("div.meters", meter("caller"), meter("agent")),
      (ref.line = h("p.last-line.muted", "Waiting for speech…")));
    return { el, ref, entry };
  }

  fill(card, entry) {
    const c = entry.conversation;
    card.entry = entry;
    card.ref.agent.textContent = agentLabel(c);
    card.ref.id.textContent = shortId(entry.id);
    clear(card.ref.chips,
      c.channel && h("span.chip", titleCase(c.channel)),
      c.direction && h("span.chip", c.direction === "outbound" ? "↗ Outbound" : "↙ Inbound"),
      (c.tags || []).map((t) => h("span.chip.chip-tag", `#${t}`)));
    card.ref.cost.textContent = usd(c.cost && c.cost.totalUsd);
    const sentiment = sentimentOf(c);
    clear(card.ref.sentiment, sentiment ? h(`span.sentiment.s-${sentiment}`, titleCase(sentiment)) : h("span.muted", "—"));
    this.tickCard(card);
    this.updateLine(entry);
  }

  updateLine(entry) {
    const card = this.cards.get(entry.id);
    if (!card) return;
    let latest = null;
    for (const turn of entry.turns.values()) if (!latest || (turn.seq || 0) > (latest.seq || 0)) latest = turn;
    if (!latest || !latest.text) return;
    clear(card.ref.line, h("span.who", latest.role === "agent" ? "Agent: " : "Caller: "), latest.text);
    card.ref.line.classList.toggle("partial", !latest.isFinal);
  }

  updateLevels(entry) {
    const card = this.cards.get(entry.id);
    if (!card || !entry.levels) return;
    card.ref.callerMeter.style.transform = `scaleX(${meterLevel(entry.levels.caller)})`;
    card.ref.agentMeter.style.transform = `scaleX(${meterLevel(entry.levels.agent)})`;
  }

  ended(entry) {
    const card = this.cards.get(entry.id);
    if (!card) return;
    card.el.classList.add("ending");
    clear(card.ref.status, "Ended");
    card.ref.status.className = "badge badge-ended";
    this.tickCard(card);
    setTimeout(() => this.remove(entry.id), ENDED_LINGER_MS);
  }

  remove(id) {
    const card = this.cards.get(id);
    if (!card) return;
    card.el.remove();
    this.cards.delete(id);
    this.refresh();
  }

  tick() {
    for (const card of this.cards.values()) this.tickCard(card);
    const live = [...this.cards.values()].map((c) => c.entry).filter((e) => !e.ended && this.matches(e));
    this.kpis.live.textContent = String(live.length);
    this.kpis.longest.textContent = live.length ? duration(Math.max(...live.map(liveSeconds))) : "–";
    this.kpis.cost.textContent = usd(live.reduce((sum, e) => sum + Number((e.conversation.cost || {}).totalUsd || 0), 0));
    this.kpis.agents.textContent = String(new Set(live.map((e) => e.conversation.agentId)).size);
  }

  tickCard(card) {
    const entry = card.entry;
    card.ref.duration.textContent = duration(liveSeconds(entry));
    if (entry.levels && performance.now() - entry.levels.at > 1500) {
      card.ref.callerMeter.style.transform = "scaleX(0)";
      card.ref.agentMeter.style.transform = "scaleX(0)";
    }
  }

  refresh() {
    if (this.kpis) this.tick();
    const agents = new Set();
    let shown = 0;
    let live = 0;
    for (const card of this.cards.values()) {
      const visible = this.matches(card.entry);
      card.el.hidden = !visible;
      if (visible) shown++;
      if (!card.entry.ended) live++;
      if (card.entry.conversation.agentId) agents.add(card.entry.conversation.agentId);
    }
    if (filters.agent) agents.add(filters.agent);
    const key = [...agents].sort().join("|");
    if (key !== this.agentsKey) {
      this.agentsKey = key;
      clear(this.agentSelect, h("option", { value: "" }, "All agents"), [...agents].sort().map((a) => h("option", { value: a }, a)));
      this.agentSelect.value = filters.agent;
    }
    const filtered = filters.agent || filters.channel || filters.tags.trim();
    this.summary.textContent = filtered ? `${shown} of ${live} in progress match the filters` : `${live} in progress`;
    this.empty.hidden = shown > 0;
    const emptyTitle = $("h3", this.empty);
    if (emptyTitle) emptyTitle.textContent = live > 0 ? "No live calls match these filters" : "No live calls right now";
  }
}

/** Seconds since the call started: the server's figure when last heard, plus local time since then. */
export function liveSeconds(entry) {
  const c = entry.conversation;
  if (entry.ended || c.status !== "in_progress") return c.durationSeconds || 0;
  const base = typeof c.durationSeconds === "number" ? c.durationSeconds : 0;
  const since = entry.receivedAt ? (performance.now() - entry.receivedAt) / 1000 : 0;
  const fromStart = c.startedAt ? (Date.now() - Date.parse(c.startedAt)) / 1000 : 0;
  const estimate = base + since;
  // Trust the wall clock when it agrees (same machine), else the server's count.
  return Math.abs(fromStart - estimate) < 3 ? fromStart : estimate;
}
