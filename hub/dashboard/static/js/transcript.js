// The live transcript of one conversation: turns keyed by turnId (a partial is replaced in place by the
// next partial and then by the final), DTMF and control events inline, everything ordered by its time
// from the conversation start. Auto-scroll follows new lines until the user scrolls up; a "new lines"
// button brings them back.

import { h } from "./dom.js";
import { offset, shortId } from "./format.js";

const STICK_PX = 48;
const ACTIONS = { whisper: "whispered to the agent", barge: "barged in", release: "released the call", end: "ended the call" };

export class TranscriptPane {
  constructor() {
    this.list = h("ol.transcript#transcript", { "aria-live": "polite" });
    this.jump = h("button.jump", { type: "button", hidden: true, onclick: () => this.toBottom() }, "New lines ↓");
    this.empty = h("li.transcript-empty.muted", "No speech yet. Lines appear here as the caller and the agent talk.");
    this.list.append(this.empty);
    this.el = h("div.transcript-wrap", this.list, this.jump);
    this.follow = true;
    this.rows = new Map();
    this.startedAt = 0;
    this.list.addEventListener("scroll", () => {
      this.follow = this.atBottom();
      if (this.follow) this.jump.hidden = true;
    });
  }

  atBottom() {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < STICK_PX;
  }

  toBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.follow = true;
    this.jump.hidden = true;
  }

  /** Everything known about the conversation (snapshot + what arrived since), idempotently. */
  render(entry) {
    this.startedAt = Date.parse(entry.conversation.startedAt || "") || this.startedAt;
    for (const turn of entry.turns.values()) this.turn(turn, false);
    for (const item of entry.items) this.item(item, false);
    this.after();
  }

  turn(turn, scroll = true) {
    const key = `turn:${turn.turnId}`;
    let row = this.rows.get(key);
    if (row && (row.seq || 0) > (turn.seq || 0)) return;
    const who = turn.role === "agent" ? "Agent" : "Caller";
    const el = h(`li.turn.role-${turn.role === "agent" ? "agent" : "user"}${turn.isFinal ? "" : ".partial"}`,
      { dataset: { turn: turn.turnId, seq: turn.seq, final: turn.isFinal ? "1" : "0" } },
      h("div.turn-meta", h("span.speaker", who), h("span.time.mono", offset(turn.startTime))),
      h("div.bubble", turn.text || "…", turn.isFinal ? null : h("span.typing", { "aria-label": "still speaking" }, h("i"), h("i"), h("i"))));
    const sortKey = Number(turn.startTime) || 0;
    if (row) {
      row.el.remove();
      Object.assign(row, { el, seq: turn.seq, sortKey });
    } else {
      row = { el, seq: turn.seq, sortKey };
      this.rows.set(key, row);
    }
    this.insert(row);
    if (scroll) this.after();
  }

  item(item, scroll = true) {
    const key = `${item.kind}:${item.seq}`;
    if (this.rows.has(key)) return;
    const at = Date.parse(item.timestamp || "");
    const sortKey = this.startedAt && at ? (at - this.startedAt) / 1000 : Number.MAX_SAFE_INTEGER;
    const text = item.kind === "dtmf"
      ? ["Caller pressed ", h("kbd", item.digit)]
      : [`Supervisor ${shortId(item.by || "")} `, ACTIONS[item.action] || item.action];
    const el = h(`li.event.event-${item.kind}${item.kind === "control" ? `.action-${item.action}` : ""}`,
      { dataset: { seq: item.seq } },
      h("span.event-icon", item.kind === "dtmf" ? "#" : "◆"), h("span.event-text", text),
      h("span.time.mono", Number.isFinite(sortKey) && sortKey < 1e9 ? offset(sortKey) : ""));
    const row = { el, seq: item.seq, sortKey };
    this.rows.set(key, row);
    this.insert(row);
    if (scroll) this.after();
  }

  insert(row) {
    this.empty.remove();
    row.el.sortKey = row.sortKey;
    let before = this.list.lastElementChild;
    while (before && before.sortKey > row.sortKey) before = before.previousElementSibling;
    if (before) before.after(row.el);
    else this.list.prepend(row.el);
  }

  after() {
    if (this.follow) this.list.scrollTop = this.list.scrollHeight;
    else this.jump.hidden = false;
  }
}
