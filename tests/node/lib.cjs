// Helpers shared by the interop scripts: checks with a per-check time limit, connection builders,
// stream/upload helpers and an HTTP client that records every request the SignalR client makes.
const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");
const assert = require("node:assert/strict");

const BASE = process.env.BASE;
if (!BASE) { console.error("set BASE=http://127.0.0.1:PORT"); process.exit(2); }
const T = signalR.HttpTransportType;
const TRANSPORTS = [["WebSockets", T.WebSockets], ["ServerSentEvents", T.ServerSentEvents], ["LongPolling", T.LongPolling]];
const PROTOCOLS = [() => new signalR.JsonHubProtocol(), () => new MessagePackHubProtocol()];
const CHECK_SECONDS = Number(process.env.CHECK_SECONDS || 10);

let passed = 0, failed = 0;
// A rejection nobody awaited (e.g. a pending call when a connection drops) fails the run instead of crashing it.
process.on("unhandledRejection", (e) => { failed++; console.log("FAIL unhandled rejection -", String(e?.message ?? e)); });
const open = new Set();  // connections still running when a check fails are stopped at the end

async function check(name, fn) {
  if (process.env.ONLY && !new RegExp(process.env.ONLY).test(name)) return;
  let timer;
  const limit = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${CHECK_SECONDS} s`)), CHECK_SECONDS * 1000); });
  try { await Promise.race([fn(), limit]); passed++; console.log("ok  ", name); }
  catch (e) { failed++; console.log("FAIL", name, "-", String(e?.message ?? e));
    if (process.env.SIGNALR_LOG) console.log(e?.stack); }
  finally { clearTimeout(timer); }
}

// A builder for `path` (relative to BASE unless absolute) with the given options and protocol.
function builder(path, options = {}, protocol = new signalR.JsonHubProtocol()) {
  const url = path.startsWith("http") ? path : BASE + path;
  return new signalR.HubConnectionBuilder().withUrl(url, { logMessageContent: true, ...options })
    .withHubProtocol(protocol).configureLogging(process.env.SIGNALR_LOG ? signalR.LogLevel.Trace : signalR.LogLevel.None);
}

function track(connection) { open.add(connection); connection.onclose(() => open.delete(connection)); return connection; }

async function started(path, options = {}, protocol) {
  const c = track(builder(path, options, protocol).build());
  await c.start();
  return c;
}

function closedPromise(c) { return new Promise((r) => c.onclose(r)); }

function collect(c, ...args) {
  return new Promise((res, rej) => { const xs = []; c.stream(...args).subscribe({ next: (x) => xs.push(x), complete: () => res(xs), error: rej }); });
}

// Resolves with the arguments of the next `target` call from the server (that `accept`s them: hub-wide sends
// from other tests sharing the server are skipped).
function next(c, target, accept = () => true) {
  return new Promise((r) => {
    const h = (...a) => { const v = a.length === 1 ? a[0] : a; if (accept(v)) { c.off(target, h); r(v); } };
    c.on(target, h);
  });
}

// Resolves once `predicate()` is true (checked every 20 ms).
async function until(predicate, what = "condition") {
  for (let i = 0; i < 400; i++) { if (await predicate()) return; await sleep(20); }
  throw new Error(`never happened: ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The SDK's HTTP client, recording method, url and status of every request it sends.
class RecordingHttpClient extends signalR.DefaultHttpClient {
  constructor() { super(signalR.NullLogger.instance); this.log = []; this.inflight = 0; }  // inflight: POSTs (sends) not answered yet
  async send(request) {
    const entry = { method: request.method, url: request.url, status: undefined };
    this.log.push(entry);
    const post = request.method === "POST";
    if (post) this.inflight++;
    try { const response = await super.send(request); entry.status = response.statusCode; return response; }
    catch (e) { entry.status = e?.statusCode ?? String(e?.name ?? e); throw e; }
    finally { if (post) this.inflight--; }
  }
}

// Waits until no POST of `http` is in flight. The client sends an upload's Completion only after the POST
// carrying its invocation returned; stopping before it went out rejects a promise nobody awaits.
async function settled(http) {
  await sleep(20);  // one macrotask: chained sends have been queued by now
  await until(() => http.inflight === 0, "the client's pending POSTs");
}

// fetch() for plain GETs, retried once on a network error: a keep-alive connection the server closed as idle
// just when it was reused fails with "fetch failed" (an HTTP client must retry an idempotent request then).
async function fetchRetry(url, options) {
  try { return await fetch(url, options); }
  catch (e) { if (e?.message !== "fetch failed") throw e; return fetch(url, options); }
}

async function finish() {
  for (const c of open) { try { await c.stop(); } catch { /* already failing */ } }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

module.exports = {
  signalR, MessagePackHubProtocol, assert, BASE, T, TRANSPORTS, PROTOCOLS, check, builder, track, started, closedPromise,
  collect, next, until, sleep, RecordingHttpClient, settled, fetchRetry, finish,
};
