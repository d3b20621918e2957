// Formatting of durations, money, times, ids and labels shown on the page.

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export function usd(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
  const n = Number(value);
  return n < 1 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
}

export function dateTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** Seconds from the conversation start, as a transcript offset: 1:05. */
export function offset(seconds) {
  return duration(seconds);
}

export function shortId(id) {
  if (!id) return "";
  const [prefix, rest = ""] = id.split("_", 2);
  return rest.length > 10 ? `${prefix}_…${rest.slice(-6)}` : id;
}

export function agentLabel(conversation) {
  return conversation.agentName || conversation.agentId || "unknown agent";
}

const LABELS = { webrtc: "WebRTC", webchat: "Web chat", sms: "SMS", whatsapp: "WhatsApp", in_progress: "In progress" };

/** Contract values (channel, status, sentiment ...) as words: whatsapp -> WhatsApp, in_progress -> In progress. */
export function titleCase(text) {
  if (text && LABELS[text]) return LABELS[text];
  return text ? String(text).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase()) : "";
}

export function sentimentOf(conversation) {
  const analysis = conversation.analysis || {};
  return analysis.sentiment || null;
}

/** dBFS (-100..0) to a 0..1 meter position, with -60 dBFS as the floor. */
export function meterLevel(dbfs) {
  if (dbfs === null || dbfs === undefined || !Number.isFinite(dbfs)) return 0;
  return Math.min(1, Math.max(0, (dbfs + 60) / 60));
}
