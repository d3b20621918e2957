// A subscriber process using the official npm SignalR client (@microsoft/signalr, JSON or MessagePack protocol)
// against the hub; same line protocol and result shape as scripts/bench/subscriber.py (started by
// scripts/bench_fanout.py --clients node, with NODE_PATH=tests/node/node_modules).
//   node scripts/bench/node_subscriber.cjs '<json config>'
// Prints OPEN/READY, reads START <us> / SUBSCRIBE / STOP on stdin, prints RESULT <json>.
"use strict";
const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");
const readline = require("node:readline");

const config = JSON.parse(process.argv[2]);
const OPTIONS = { audio: "agent", encoding: "pcm_s16le", sampleRate: 24000, transcript: true, partials: false };
const HIST_SCALE = 10, HIST_LINEAR = 20000;
const counts = { audio: {}, transcripts: {} };
const hist = { counts: new Map(), n: 0, max_ms: 0 };
let warmUs = Number.MAX_SAFE_INTEGER;

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
function record(ms) {
  if (ms < 0) ms = 0;
  let bucket = Math.floor(ms * HIST_SCALE);
  if (bucket >= HIST_LINEAR) bucket = HIST_LINEAR + Math.floor(ms / 10);
  hist.counts.set(bucket, (hist.counts.get(bucket) || 0) + 1);
  hist.n++;
  if (ms > hist.max_ms) hist.max_ms = ms;
}
function stampOf(data) {
  const bytes = typeof data === "string" ? Buffer.from(data.slice(0, 12), "base64") : data;
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0, true));
}
function onAudio(frame) {
  const id = frame.conversationId;
  counts.audio[id] = (counts.audio[id] || 0) + 1;
  const stamp = stampOf(frame.data);
  if (stamp >= warmUs) record((nowUs() - stamp) / 1000);
}
function onTurn(turn) {
  const id = turn.conversationId;
  counts.transcripts[id] = (counts.transcripts[id] || 0) + 1;
  const words = turn.text.split(" ");
  const stamp = Number(words[words.length - 1]);
  if (stamp >= warmUs) record((nowUs() - stamp) / 1000);
}

async function openOne() {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(config.url + "/hubs/voice", { transport: signalR.HttpTransportType.WebSockets,
                                           accessTokenFactory: () => config.token })
    .withHubProtocol(config.protocol === "msgpack" ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol())
    .configureLogging(signalR.LogLevel.Error).build();
  connection.on("AudioFrame", onAudio);
  connection.on("TranscriptTurn", onTurn);
  await connection.start();
  return connection;
}

async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i], i); }
  }));
  return out;
}

(async () => {
  const lines = readline.createInterface({ input: process.stdin });
  const queue = [];
  let waiting = null;
  lines.on("line", (line) => { if (waiting) { const w = waiting; waiting = null; w(line); } else queue.push(line); });
  lines.on("close", () => { if (waiting) waiting(""); else queue.push(""); });
  const nextLine = () => new Promise((resolve) => { if (queue.length) resolve(queue.shift()); else waiting = resolve; });

  const ids = config.conversations;
  const connections = await pool(ids, 20, () => openOne());
  if (config.idle_first) { console.log(`OPEN ${connections.length}`); await nextLine(); }
  await pool(ids, 20, (id, i) => connections[i].invoke("Subscribe", id, OPTIONS));
  console.log(`READY ${connections.length}`);
  for (;;) {
    const line = (await nextLine()).trim();
    if (line.startsWith("START")) warmUs = Number(line.split(" ")[1]);
    else if (line === "STOP" || line === "") break;
  }
  const result = { audio: counts.audio, transcripts: counts.transcripts,
                   hist: { counts: Object.fromEntries([...hist.counts].map(([k, v]) => [String(k), v])), n: hist.n, max_ms: hist.max_ms } };
  console.log("RESULT " + JSON.stringify(result));
  await Promise.all(connections.map((c) => c.stop().catch(() => {})));
  process.exit(0);
})().catch((e) => { console.error(String(e?.stack ?? e)); process.exit(1); });
