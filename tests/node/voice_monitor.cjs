// A VoiceHub monitor with the official @microsoft/signalr client (JSON or MessagePack), for tests/test_voice_e2e.py.
// BASE=http://127.0.0.1:PORT TOKEN=<jwt> PROTOCOL=json|messagepack OPTIONS='{"audio":"mixed",...}' node voice_monitor.cjs
// SubscribeAll({}, {transcript: false}) to discover calls, prints "READY", Subscribes with OPTIONS to the first call that
// starts, records what arrives until its ConversationEnded, then prints one JSON line "RESULT {...}" and exits.
const signalR = require("@microsoft/signalr"), { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const BASE = process.env.BASE, TOKEN = process.env.TOKEN;
const msgpack = process.env.PROTOCOL === "messagepack";
const OPTIONS = JSON.parse(process.env.OPTIONS || "{}");
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS || 30000);

const result = { protocol: msgpack ? "messagepack" : "json", conversationId: null, snapshot: null, events: [],
                 audio: {}, levels: 0, errors: {}, subscribeError: null };
let target = null;

const connection = new signalR.HubConnectionBuilder()
  .withUrl(BASE + "/hubs/voice", { accessTokenFactory: () => TOKEN, transport: signalR.HttpTransportType.WebSockets })
  .withHubProtocol(msgpack ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol())
  .configureLogging(signalR.LogLevel.Warning).build();

const finish = async (code) => {
  console.log("RESULT " + JSON.stringify(result));
  try { await connection.stop(); } catch (e) { /* already closed */ }
  process.exit(code);
};
setTimeout(() => { result.errors.timeout = "no ConversationEnded in time"; finish(2); }, TIMEOUT_MS);

const mine = (payload) => payload && payload.conversationId === target;
const history = (name) => (payload) => {
  if (!mine(payload)) return;
  result.events.push({ name, seq: payload.seq, turnId: payload.turnId ?? null, role: payload.role ?? null,
                       isFinal: payload.isFinal ?? null, text: payload.text ?? null, action: payload.action ?? null });
  if (name === "ConversationEnded") finish(0);
};
for (const name of ["TranscriptTurn", "Dtmf", "Control", "ConversationUpdated", "ConversationEnded"]) {
  connection.on(name, history(name));
}
connection.on("AudioLevel", (payload) => { if (mine(payload)) result.levels++; });
connection.on("AudioFrame", (frame) => {
  if (!mine(frame)) return;
  const data = frame.data;
  const isBytes = data instanceof Uint8Array;
  const size = isBytes ? data.length : Buffer.from(data, "base64").length;
  const track = (result.audio[frame.track] ??= { count: 0, encodings: [], rates: [], sizes: [], dataTypes: [],
                                                  channels: [], firstFrame: frame.frame, lastFrame: -1, increasing: true });
  track.count++;
  for (const [key, value] of [["encodings", frame.encoding], ["rates", frame.sampleRate], ["sizes", size],
                              ["dataTypes", isBytes ? "bytes" : typeof data], ["channels", frame.channels]]) {
    if (!track[key].includes(value)) track[key].push(value);
  }
  if (frame.frame <= track.lastFrame) track.increasing = false;
  track.lastFrame = frame.frame;
});
connection.on("ConversationStarted", async (conversation) => {
  if (target !== null) return;
  target = conversation.id;
  result.conversationId = target;
  try {
    result.snapshot = await connection.invoke("Subscribe", target, OPTIONS);
    result.snapshot.transcript = result.snapshot.transcript.map((t) => ({ turnId: t.turnId, seq: t.seq, text: t.text }));
    delete result.snapshot.partials;
  } catch (e) {
    result.subscribeError = String(e?.message ?? e);
  }
});

(async () => {
  try {
    await connection.start();
    try { await connection.invoke("Subscribe", "conv_01HXDEF456GHIJKLMNOPQRSTUV"); }
    catch (e) { result.errors.unknownConversation = String(e?.message ?? e); }
    try { await connection.invoke("Subscribe", "conv_01HXDEF456GHIJKLMNOPQRSTUV", { audio: "loud" }); }
    catch (e) { result.errors.badOptions = String(e?.message ?? e); }
    await connection.invoke("SubscribeAll", {}, { transcript: false });
    console.log("READY");
  } catch (e) {
    result.errors.start = String(e?.message ?? e);
    finish(1);
  }
})();
