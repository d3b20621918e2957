// Past conversations: the REST list (GET /api/v1/conversations) with its filters and pagination.

import { clear, h, toast } from "./dom.js";
import { agentLabel, dateTime, duration, sentimentOf, shortId, titleCase, usd } from "./format.js";

const PAGE_SIZE = 20;
const state = { status: "", agentId: "", channel: "", direction: "", dateFrom: "", dateTo: "", tags: "", outcome: "", page: 1 };
const STATUSES = ["in_progress", "completed", "failed", "abandoned"];
const CHANNELS = ["phone", "webrtc", "webchat", "sms", "whatsapp", "telegram"];

export class HistoryView {
  constructor(app) {
    this.api = app.api;
    this.seq = 0;
  }

  mount(root) {
    const select = (name, label, values) => h(`select#h-${name}`, { name, "aria-label": label },
      h("option", { value: "" }, label), values.map((v) => h("option", { value: v }, titleCase(v))));
    const input = (name, label, type = "text") => h(`input#h-${name}`, { name, type, placeholder: label, "aria-label": label });
    this.form = h("form.history-filters", { onsubmit: (e) => { e.preventDefault(); state.page = 1; this.load(); } },
      select("status", "Any status", STATUSES), input("agentId", "Agent id"), select("channel", "Any channel", CHANNELS),
      select("direction", "Any direction", ["inbound", "outbound"]), input("dateFrom", "From", "date"), input("dateTo", "To", "date"),
      input("tags", "Tags (a,b)"), input("outcome", "Outcome"),
      h("button.btn.btn-primary", { type: "submit" }, "Apply"),
      h("button.btn.btn-ghost", { type: "button", onclick: () => this.reset() }, "Reset"));
    for (const el of this.form.elements) if (el.name in state) el.value = state[el.name];
    this.body = h("tbody");
    this.summary = h("span.muted#h-summary");
    this.prev = h("button.btn.btn-small#h-prev", { type: "button", onclick: () => this.go(-1) }, "← Previous");
    this.next = h("button.btn.btn-small#h-next", { type: "button", onclick: () => this.go(1) }, "Next →");
    this.pageLabel = h("span.muted#h-page");
    root.append(
      h("div.page-head", h("div", h("h1", "History"), h("p.muted.page-sub", "Every conversation of your tenant, newest first."))),
      this.form,
      h("section.panel.table-panel",
        h("table.table#history-table",
          h("thead", h("tr", ["Started", "Agent", "Channel", "Status", "Duration", "Sentiment", "Cost", "Tags"].map((t) => h("th", t)))),
          this.body),
        h("div.pager", this.summary, h("div.pager-buttons", this.prev, this.pageLabel, this.next))));
    this.load();
  }

  unmount() {
    this.seq++;
  }

  reset() {
    for (const key of Object.keys(state)) state[key] = key === "page" ? 1 : "";
    for (const el of this.form.elements) if (el.name in state) el.value = "";
    this.load();
  }

  go(delta) {
    state.page = Math.max(1, state.page + delta);
    this.load();
  }

  async load() {
    for (const el of this.form.elements) if (el.name in state) state[el.name] = el.value.trim();
    const mine = ++this.seq;
    const query = { ...state, pageSize: PAGE_SIZE };
    clear(this.body, h("tr", h("td.muted", { colspan: 8 }, "Loading…")));
    let result;
    try {
      result = await this.api.get("/conversations", query);
    } catch (error) {
      if (mine !== this.seq) return;
      clear(this.body, h("tr", h("td.form-error", { colspan: 8 }, error.message)));
      toast(error.message, "error");
      return;
    }
    if (mine !== this.seq) return;
    const rows = result.data || [];
    clear(this.body, rows.length ? rows.map((c) => this.row(c)) : h("tr", h("td.muted.empty-row", { colspan: 8 }, "No conversations match these filters.")));
    const from = rows.length ? (result.page - 1) * result.pageSize + 1 : 0;
    this.summary.textContent = `${from}–${from + rows.length - (rows.length ? 1 : 0)} of ${result.total} conversations`;
    this.pageLabel.textContent = `Page ${result.page} of ${Math.max(1, result.totalPages)}`;
    this.prev.disabled = result.page <= 1;
    this.next.disabled = result.page >= result.totalPages;
  }

  row(c) {
    const sentiment = sentimentOf(c);
    // A call still in progress opens in the live view (transcript streaming, listen-in).
    const open = () => { location.hash = c.status === "in_progress" ? `#/live/${c.id}` : `#/history/${c.id}`; };
    return h("tr.clickable", { tabindex: 0, dataset: { id: c.id }, onclick: open, onkeydown: (e) => { if (e.key === "Enter") open(); } },
      h("td", dateTime(c.startedAt)),
      h("td", h("div", agentLabel(c)), h("div.muted.small.mono", shortId(c.id))),
      h("td", titleCase(c.channel), h("div.muted.small", c.direction)),
      h("td", h(`span.status.st-${c.status}`, titleCase(c.status))),
      h("td.mono", duration(c.durationSeconds)),
      h("td", sentiment ? h(`span.sentiment.s-${sentiment}`, titleCase(sentiment)) : h("span.muted", "—")),
      h("td.mono", usd(c.cost && c.cost.totalUsd)),
      h("td", (c.tags || []).map((t) => h("span.chip.chip-tag", `#${t}`))));
  }
}
