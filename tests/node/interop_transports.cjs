// The official @microsoft/signalr 10.x client (+ msgpack) on every transport x protocol against `serve --conformance`:
// invoke/send/echo, server->client calls, errors, streams with cancellation, uploads, client results, groups.
// BASE=http://127.0.0.1:PORT node tests/node/interop_transports.cjs ; prints "N passed, N failed".
const {
  signalR, assert, BASE, T, TRANSPORTS, PROTOCOLS, check, builder, started, closedPromise, collect, next, RecordingHttpClient,
  settled, fetchRetry, finish,
} = require("./lib.cjs");
const { Subject } = require("rxjs");

const TEXT = "héllo ✓ 你好 \u{1F600}";
const unexpected = (m, rest) => `An unexpected error occurred invoking '${m}' on the server. ${rest}`;

async function combo(tn, t, makeProtocol) {
  const pn = makeProtocol().name;
  const at = async (path = "/testhub") => {
    const http = new RecordingHttpClient(), c = await started(path, { transport: t, httpClient: http }, makeProtocol());
    c.http = http;
    return c;
  };
  const label = `${tn}/${pn}`;

  await check(`${label}: start, invoke, send, ids, transport name, stop`, async () => {
    const c = await at(), closed = closedPromise(c);
    assert.equal(c.state, signalR.HubConnectionState.Connected);
    assert.equal(await c.invoke("Echo", TEXT), TEXT);
    assert.equal(await c.invoke("echo", "lower-case target"), "lower-case target");
    assert.equal(await c.send("Echo", "fire and forget"), undefined);
    assert.equal(await c.invoke("GetActiveTransportName"), tn);
    const id = await c.invoke("GetCallerConnectionId");
    assert.equal(id, c.connectionId);
    assert.match(id, /^[A-Za-z0-9_-]{16,}$/);
    // Several invocations in flight at once come back to the right callers.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => c.invoke("Echo", `m${i}`)));
    assert.deepEqual(many, Array.from({ length: 20 }, (_, i) => `m${i}`));
    await c.stop();
    assert.equal(await closed, undefined);
    assert.equal(c.state, signalR.HubConnectionState.Disconnected);
  });

  await check(`${label}: server->client calls, objects, null vs void, error texts`, async () => {
    const c = await at();
    const unique = `${TEXT} ${label} ${Date.now()}`;
    const message = next(c, "message", (m) => m === unique);  // the server calls "Message": names are case-insensitive
    assert.equal(await c.invoke("InvokeWithString", unique), undefined);  // void -> undefined
    assert.equal(await message, unique);
    const custom = next(c, "CustomObject");
    await c.invoke("SendCustomObject", { Name: "n", Value: 7 });
    assert.deepEqual(await custom, { Name: "n", Value: 7 });
    assert.equal(await c.invoke("GetCookie", "no-such-cookie"), null);  // null result arrives as null
    assert.equal(await c.invoke("GetHeader", "no-such-header"), null);
    const complex = await c.invoke("SendComplexObject");
    assert.equal(complex.String, "hello world");
    assert.deepEqual(complex.IntArray, [1, 2, 3]);
    assert.equal(complex.Guid, "00010203-0405-0607-0706-050403020100");
    if (pn === "json") {
      assert.equal(complex.ByteArray, "AQID");
      assert.equal(complex.DateTime, "2000-01-01T00:00:00Z");
    } else {
      assert.deepEqual(Array.from(complex.ByteArray), [1, 2, 3]);
      assert.equal(complex.DateTime.toISOString(), "2000-01-01T00:00:00.000Z");
    }
    const sent = pn === "json"
      ? { String: "s", IntArray: [4, 5], ByteArray: "AQID", Guid: "00010203-0405-0607-0706-050403020100", DateTime: "2002-04-01T10:20:15Z" }
      : { String: "s", IntArray: [4, 5], ByteArray: new Uint8Array([1, 2, 3]), Guid: "00010203-0405-0607-0706-050403020100", DateTime: new Date("2002-04-01T10:20:15Z") };
    assert.deepEqual(await c.invoke("EchoComplexObject", sent), sent);
    await assert.rejects(c.invoke("ThrowException", "An error occurred."),
      { message: unexpected("ThrowException", "InvalidOperationException: An error occurred.") });
    await assert.rejects(c.invoke("NoSuchMethod", 1), { message: "Unknown hub method 'NoSuchMethod'" });
    const binding = (n) => `Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Invocation provides ${n} argument(s) but target expects 1.`;
    await assert.rejects(c.invoke("Echo"), { message: binding(0) });
    await assert.rejects(c.invoke("Echo", "a", "b"), { message: binding(2) });
    await assert.rejects(c.invoke("EmptyStream"),
      { message: "The client attempted to invoke the streaming 'EmptyStream' method with a non-streaming invocation." });
    assert.equal(await c.invoke("Echo", "still fine"), "still fine");
    await c.stop();
  });

  await check(`${label}: server-to-client streams, errors and cancellation`, async () => {
    const c = await at();
    assert.deepEqual(await collect(c, "Stream"), ["a", "b", "c"]);
    assert.deepEqual(await collect(c, "stream"), ["a", "b", "c"]);
    assert.deepEqual(await collect(c, "EmptyStream"), []);
    await assert.rejects(collect(c, "Echo", "42"),
      { message: "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation." });
    await assert.rejects(collect(c, "StreamThrowException", "An error occurred."),
      { message: unexpected("StreamThrowException", "InvalidOperationException: An error occurred.") });
    await assert.rejects(collect(c, "NoSuchStream"), { message: "Unknown hub method 'NoSuchStream'" });
    // Cancel: dispose() sends CancelInvocation, the server's generator sees it and calls StreamCanceled().
    const canceled = next(c, "StreamCanceled");
    let items = 0, ended = false;
    const subscription = c.stream("InfiniteStream").subscribe({ next: () => items++, complete: () => { ended = true; }, error: () => { ended = true; } });
    assert.equal(await c.invoke("Echo", "stream running"), "stream running");  // the stream runs in the background
    subscription.dispose();
    assert.deepEqual(await canceled, []);
    assert.equal(items, 0);
    assert.equal(ended, false);  // a disposed subscription hears nothing more
    // Two streams at once interleave correctly.
    const [x, y] = await Promise.all([collect(c, "Stream"), collect(c, "Stream")]);
    assert.deepEqual([x, y], [["a", "b", "c"], ["a", "b", "c"]]);
    await c.stop();
  });

  await check(`${label}: client-to-server upload streams`, async () => {
    const c = await at();
    const s = new Subject(), p = c.invoke("StreamingConcat", s);
    s.next("a"); s.next("b"); s.next(TEXT); s.complete();
    assert.equal(await p, "ab" + TEXT);
    // More items than the server's per-stream buffer (10).
    const big = new signalR.Subject(), q = c.invoke("StreamingConcat", big);
    for (let i = 0; i < 60; i++) big.next(String(i % 10));
    big.complete();
    assert.equal(await q, Array.from({ length: 60 }, (_, i) => String(i % 10)).join(""));
    const empty = new Subject(), e = c.invoke("StreamingConcat", empty);
    empty.complete();
    assert.equal(await e, "");
    const bad = new Subject(), r = c.invoke("StreamingConcat", bad);
    bad.next("a"); bad.error(new Error("Something bad"));
    await assert.rejects(r, { message: unexpected("StreamingConcat", "HubException: Something bad") });
    // An upload passed to a method without a stream parameter.
    const extra = new Subject(), w = c.invoke("Echo", "x", extra);
    extra.complete();
    await assert.rejects(w, { message: unexpected("Echo", "HubException: Client sent 1 stream(s), Hub method expects 0.") });
    assert.equal(await c.invoke("Echo", "after uploads"), "after uploads");
    await settled(c.http);
    await c.stop();
  });

  await check(`${label}: client results (/clientresult/{id} and from a hub method)`, async () => {
    const c = await at();
    const result = async () => (await fetchRetry(`${BASE}/clientresult/${encodeURIComponent(c.connectionId)}`)).text();
    assert.equal(await result(), "Client didn't provide a result.");  // no handler
    c.on("Result", () => 42);
    assert.equal(await result(), "42");
    c.off("Result");
    c.on("Result", () => { throw new Error("from callback"); });
    assert.equal(await result(), "Error: from callback");
    c.off("Result");
    c.on("Result", async () => 7);  // a promise is awaited by the client
    assert.equal(await result(), "7");
    c.off("Result");
    c.on("Result", () => 1);
    c.on("Result", () => 2);
    assert.equal(await result(), "Client provided multiple results.");
    c.off("Result");
    c.on("GetValue", () => ({ Answer: 41 + 1 }));
    assert.deepEqual(await c.invoke("InvokeCaller", "GetValue"), { Answer: 42 });
    await assert.rejects(c.invoke("InvokeCaller", "NoHandler"),
      { message: unexpected("InvokeCaller", "HubException: Client didn't provide a result.") });
    await c.stop();
  });

  await check(`${label}: groups, others, all`, async () => {
    const [a, b, outsider] = [await at(), await at(), await at()];
    const got = { a: [], b: [], outsider: [] };
    const group = `g-${label}-${Date.now()}-${Math.random()}`, fromA = `from-a ${group}`;
    for (const [k, c] of Object.entries({ a, b, outsider })) {
      c.on("GroupMessage", (g, m) => got[k].push(`${g}:${m}`));
      c.on("Message", (m) => { if (m === fromA) got[k].push(m); });  // SendToOthers reaches the whole hub
    }
    await a.invoke("JoinGroup", group);
    await b.invoke("JoinGroup", group);
    await outsider.invoke("SendToGroup", group, "one");
    await b.invoke("LeaveGroup", group);
    await outsider.invoke("SendToGroup", group, "two");
    await a.invoke("SendToOthers", fromA);
    // A round trip on every connection: server messages to it that were sent before the reply arrive first.
    for (const c of [a, b, outsider]) await c.invoke("Echo", "sync");
    assert.deepEqual(got.a, [`${group}:one`, `${group}:two`]);
    assert.deepEqual(got.b, [`${group}:one`, fromA]);
    assert.deepEqual(got.outsider, [fromA]);
    await Promise.all([a.stop(), b.stop(), outsider.stop()]);
  });
}

(async () => {
  for (const [tn, t] of TRANSPORTS) {
    for (const makeProtocol of PROTOCOLS) {
      if (t === T.ServerSentEvents && makeProtocol().name === "messagepack") continue;  // SSE is text-only
      await combo(tn, t, makeProtocol);
    }
  }

  await check("MessagePack with SSE forced is refused by the client ('does not support Binary')", async () => {
    const c = builder("/testhub", { transport: T.ServerSentEvents }, PROTOCOLS[1]()).build();
    await assert.rejects(c.start(), (e) => {
      assert.match(e.message, /^Unable to connect to the server with any of the available transports\./);
      assert.match(e.message, /ServerSentEvents failed: Error: 'ServerSentEvents' does not support Binary\./);
      return true;
    });
  });

  await check("/testhub-nowebsockets: JSON picks SSE, MessagePack skips SSE for long polling, WebSockets refused", async () => {
    const json = await started("/testhub-nowebsockets");
    assert.equal(await json.invoke("GetActiveTransportName"), "ServerSentEvents");
    await json.stop();
    const mp = await started("/testhub-nowebsockets", {}, PROTOCOLS[1]());
    assert.equal(await mp.invoke("GetActiveTransportName"), "LongPolling");
    assert.equal(await mp.invoke("Echo", TEXT), TEXT);
    await mp.stop();
    const ws = builder("/testhub-nowebsockets", { transport: T.WebSockets }).build();
    await assert.rejects(ws.start(), /WebSockets failed: Error: 'WebSockets' is not supported by the server\.|None of the transports|Unable to connect/);
    const skip = builder("/testhub-nowebsockets", { transport: T.WebSockets, skipNegotiation: true }).build();
    await assert.rejects(skip.start());
  });

  await check("default transport selection picks WebSockets; negotiate cookies reach the hub", async () => {
    const c = await started("/testhub");
    assert.equal(await c.invoke("GetActiveTransportName"), "WebSockets");
    assert.equal(await c.invoke("GetCookie", "testCookie"), "testValue");
    assert.equal(await c.invoke("GetCookie", "testCookie2"), "testValue2");
    assert.equal(await c.invoke("GetCookie", "expiredCookie"), null);
    assert.match(await c.invoke("GetHeader", "User-Agent"), /^Microsoft SignalR\/10\.0 /);
    await c.stop();
  });

  await finish();
})();
