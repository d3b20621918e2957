// The official @microsoft/signalr 10.x client (+ msgpack) against `serve --conformance`: auth with accessTokenFactory,
// automatic reconnect after the server drops the connection, stateful reconnect across a killed socket, long-polling
// and SSE stop, skipNegotiation, negotiate redirects.
// BASE=http://127.0.0.1:PORT node tests/node/interop_reconnect.cjs ; prints "N passed, N failed".
const {
  signalR, assert, BASE, T, TRANSPORTS, PROTOCOLS, check, builder, track, started, closedPromise, next, until,
  RecordingHttpClient, fetchRetry, finish,
} = require("./lib.cjs");

const token = async () => (await fetchRetry(BASE + "/generateJwtToken")).text();
const CLOSED_BY_REQUEST = "Connection closed with an error. HubException: closed by request";
const UNAUTHORIZED = "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'";

function combos() {
  const out = [];
  for (const [tn, t] of TRANSPORTS) {
    for (const makeProtocol of PROTOCOLS) {
      if (t === T.ServerSentEvents && makeProtocol().name === "messagepack") continue;
      out.push([tn, t, makeProtocol]);
    }
  }
  return out;
}

(async () => {
  // --- auth ---------------------------------------------------------------------------------------------------------
  for (const [tn, t, makeProtocol] of combos()) {
    await check(`${tn}/${makeProtocol().name}: accessTokenFactory on /authorizedhub`, async () => {
      const jwt = await token();
      let calls = 0;
      const c = await started("/authorizedhub", { transport: t, accessTokenFactory: () => { calls++; return jwt; } }, makeProtocol());
      assert.equal(await c.invoke("Echo", "secret ✓"), "secret ✓");
      assert.ok(calls >= 1);
      await c.stop();
    });
  }

  await check("/authorizedhub: 401 with an empty body without a token or with a bad one", async () => {
    await assert.rejects(builder("/authorizedhub").build().start(), { message: UNAUTHORIZED });
    await assert.rejects(builder("/authorizedhub", { accessTokenFactory: () => "not-a-jwt" }).build().start(), { message: UNAUTHORIZED });
    for (const t of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) {
      await assert.rejects(builder("/authorizedhub", { transport: t }).build().start(), { message: UNAUTHORIZED });
    }
    const raw = await fetchRetry(BASE + "/authorizedhub/negotiate?negotiateVersion=1", { method: "POST" });
    assert.equal(raw.status, 401);
    assert.equal(await raw.text(), "");
  });

  await check("/authorizedhub with skipNegotiation: Bearer header on the upgrade works, no token is refused", async () => {
    const jwt = await token();
    const c = await started("/authorizedhub", { transport: T.WebSockets, skipNegotiation: true, accessTokenFactory: () => jwt });
    assert.equal(await c.invoke("Echo", "ws"), "ws");
    await c.stop();
    await assert.rejects(builder("/authorizedhub", { transport: T.WebSockets, skipNegotiation: true }).build().start());
  });

  // --- server-initiated close: automatic reconnect or the end -------------------------------------------------------
  for (const [tn, t, makeProtocol] of combos()) {
    await check(`${tn}/${makeProtocol().name}: withAutomaticReconnect after the server closes with allowReconnect`, async () => {
      const c = track(builder("/testhub", { transport: t }, makeProtocol()).withAutomaticReconnect([0, 50, 100]).build());
      await c.start();
      const id0 = c.connectionId;
      const reconnecting = new Promise((r) => c.onreconnecting(r)), reconnected = new Promise((r) => c.onreconnected(r));
      await c.send("CloseConnection", true);
      const error = await reconnecting;
      assert.equal(error.message, `Server returned an error on close: ${CLOSED_BY_REQUEST}`);
      assert.equal(c.state === signalR.HubConnectionState.Reconnecting || c.state === signalR.HubConnectionState.Connected, true);
      const id1 = await reconnected;
      assert.notEqual(id1, id0);
      assert.equal(c.connectionId, id1);
      assert.equal(await c.invoke("GetCallerConnectionId"), id1);
      assert.equal(await c.invoke("Echo", "after"), "after");
      await c.stop();
    });
  }

  await check("WebSockets: withAutomaticReconnect after a client-side server timeout (serverTimeout hook)", async () => {
    const c = track(builder("/testhub").withAutomaticReconnect([0]).build());
    await c.start();
    const id0 = c.connectionId, reconnected = new Promise((r) => c.onreconnected(r));
    c.serverTimeout();  // private hook, as Microsoft's functional tests use
    assert.notEqual(await reconnected, id0);
    assert.equal(await c.invoke("Echo", "r"), "r");
    await c.stop();
  });

  for (const [tn, t] of TRANSPORTS) {
    await check(`${tn}: a server Close without allowReconnect ends the connection with the server's error`, async () => {
      const http = new RecordingHttpClient();
      const c = track(builder("/testhub", { transport: t, httpClient: http }).withAutomaticReconnect([0]).build());
      await c.start();
      let reconnecting = false;
      c.onreconnecting(() => { reconnecting = true; });
      const closed = closedPromise(c);
      await c.send("CloseConnection", false);
      const error = await closed;
      assert.equal(error.message, `Server returned an error on close: ${CLOSED_BY_REQUEST}`);
      assert.equal(reconnecting, false);
      assert.equal(c.state, signalR.HubConnectionState.Disconnected);
      // No request failed with an HTTP error (the client aborts its last poll itself once it has read the Close).
      assert.ok(http.log.every((e) => typeof e.status !== "number" || e.status < 300), JSON.stringify(http.log));
    });
  }

  // --- stateful reconnect -------------------------------------------------------------------------------------------
  for (const makeProtocol of PROTOCOLS) {
    await check(`WebSockets/${makeProtocol().name}: withStatefulReconnect keeps the connection id and loses no message (calls, group sends, a running stream) across killed sockets`, async () => {
      const c = track(builder("/testhub", { transport: T.WebSockets }, makeProtocol()).withStatefulReconnect().build());
      const sender = await started("/testhub", { transport: T.WebSockets }, makeProtocol());
      await c.start();
      const id0 = c.connectionId;
      let reconnecting = 0, closed = 0;
      c.onreconnecting(() => reconnecting++);
      c.onclose(() => closed++);
      const got = [];
      c.on("GroupMessage", (_group, m) => got.push(m));
      const group = `stateful-${makeProtocol().name}-${Date.now()}-${Math.random()}`;
      await c.invoke("JoinGroup", group);
      // A server-to-client stream running across the drops: every item once, in order.
      const counted = new Promise((res, rej) => { const xs = []; c.stream("Counter", 60, 10).subscribe({ next: (x) => xs.push(x), complete: () => res(xs), error: rej }); });
      let sent = 0;
      for (let round = 0; round < 3; round++) {
        const socket = c.connection.transport._webSocket;
        socket.terminate();  // raw TCP drop, no close frame
        // While the socket is gone: the server keeps sending to the group, the client keeps calling.
        const during = [];
        for (let i = 0; i < 10; i++) during.push(sender.invoke("SendToGroup", group, sent++));
        const echo = c.invoke("Echo", `during-drop-${round}`);
        await Promise.all(during);
        assert.equal(await echo, `during-drop-${round}`);
        await until(() => c.connection.transport._webSocket && c.connection.transport._webSocket !== socket, "a new socket");
        assert.equal(c.connectionId, id0);
        assert.equal(await c.invoke("GetCallerConnectionId"), id0);
      }
      assert.deepEqual(await counted, Array.from({ length: 60 }, (_, i) => i));
      await until(() => got.length >= sent, `all ${sent} group messages (have ${got.length})`);
      assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i));  // in order, none twice
      // Uploads and streams still work on the resumed connection.
      assert.deepEqual(await new Promise((res, rej) => { const xs = []; c.stream("Stream").subscribe({ next: (x) => xs.push(x), complete: () => res(xs), error: rej }); }), ["a", "b", "c"]);
      assert.equal(reconnecting, 0);
      assert.equal(closed, 0);
      await c.stop();
      await sender.stop();
    });
  }

  await check("withStatefulReconnect on long polling: negotiated off, works as usual", async () => {
    const http = new RecordingHttpClient();
    const c = await started("/testhub", { transport: T.LongPolling, httpClient: http }, undefined);
    await c.stop();
    const s = track(builder("/testhub", { transport: T.LongPolling }).withStatefulReconnect().build());
    await s.start();
    assert.equal(await s.invoke("GetActiveTransportName"), "LongPolling");
    await s.stop();
  });

  // --- stop ----------------------------------------------------------------------------------------------------------
  for (const makeProtocol of PROTOCOLS) {
    await check(`LongPolling/${makeProtocol().name}: stop() sends DELETE, the connection is gone afterwards`, async () => {
      const http = new RecordingHttpClient();
      const c = await started("/testhub", { transport: T.LongPolling, httpClient: http }, makeProtocol());
      assert.equal(await c.invoke("Echo", "x"), "x");
      const closed = closedPromise(c);
      await c.stop();
      assert.equal(await closed, undefined);
      const deletes = http.log.filter((e) => e.method === "DELETE");
      assert.equal(deletes.length, 1);
      // 202, or 404 when the hub Close that stop() POSTs first already ended the connection (the client accepts both)
      assert.ok([202, 404].includes(deletes[0].status), String(deletes[0].status));
      assert.ok(http.log.some((e) => e.method === "GET" && e.status === 200), "the connection was polled");
      const url = deletes[0].url;
      assert.match(url, /[?&]id=/);
      // The connection is disposed: a late poll or send gets 404 with .NET's text.
      const poll = await fetchRetry(url);
      assert.equal(poll.status, 404);
      assert.equal(await poll.text(), "No Connection with that ID");
      const post = await fetchRetry(url, { method: "POST", body: "{}\u001e" });
      assert.equal(post.status, 404);
    });
  }

  await check("LongPolling: a second poll ends the client's pending poll with 204, which the client takes as the end", async () => {
    const http = new RecordingHttpClient();
    const c = await started("/testhub", { transport: T.LongPolling, httpClient: http });
    const url = http.log.find((e) => e.method === "GET").url;
    let closedWith = null;
    const closed = closedPromise(c).then((e) => { closedWith = e; return "closed"; });
    const abort = new AbortController();
    for (;;) {
      // If the client had no poll waiting on the server yet, its next poll supersedes ours instead: poll again.
      const mine = fetch(url, { signal: abort.signal }).then((r) => r.status, (e) => e);
      if (await Promise.race([closed, mine]) === "closed") break;
    }
    assert.equal(closedWith, undefined);  // the client saw 204 on its poll and closed without an error
    assert.ok(http.log.some((e) => e.method === "GET" && e.status === 204), JSON.stringify(http.log));
    abort.abort();
    assert.equal((await fetch(url, { method: "DELETE" })).status, 202);  // the server still had it: end it
  });

  await check("ServerSentEvents: stop() disposes the connection (a later POST gets 404)", async () => {
    const http = new RecordingHttpClient();
    const c = await started("/testhub", { transport: T.ServerSentEvents, httpClient: http });
    assert.equal(await c.invoke("Echo", "x"), "x");
    await c.stop();
    const url = http.log.find((e) => e.method === "POST" && /[?&]id=/.test(e.url)).url;
    await until(async () => (await fetchRetry(url, { method: "POST", body: "{\"type\":6}\u001e" })).status === 404, "the SSE connection to be disposed");
  });

  // --- skipNegotiation and redirects ---------------------------------------------------------------------------------
  for (const makeProtocol of PROTOCOLS) {
    await check(`WebSockets/${makeProtocol().name}: skipNegotiation`, async () => {
      const c = await started("/testhub", { transport: T.WebSockets, skipNegotiation: true }, makeProtocol());
      assert.equal(c.connectionId, null);
      assert.equal(await c.invoke("Echo", "skip ✓"), "skip ✓");
      assert.equal(typeof await c.invoke("GetCallerConnectionId"), "string");
      assert.equal(await c.invoke("GetActiveTransportName"), "WebSockets");
      const unique = `skip ${Math.random()}`, message = next(c, "Message", (m) => m === unique);
      await c.invoke("InvokeWithString", unique);
      assert.equal(await message, unique);
      await c.stop();
    });
  }

  await check("skipNegotiation is refused by the client for SSE", async () => {
    await assert.rejects(builder("/testhub", { transport: T.ServerSentEvents, skipNegotiation: true }).build().start(),
      { message: "Negotiation can only be skipped when using the WebSocket transport directly." });
  });

  await check("/redirect/negotiate: the client follows the redirect to /testHub and the counter grows", async () => {
    const url = `${BASE}/redirect?baseUrl=${encodeURIComponent(BASE)}`;
    const a = await started(url), b = await started(url, { transport: T.LongPolling });
    const [na, nb] = [await a.invoke("GetNumRedirects"), await b.invoke("GetNumRedirects")];
    assert.ok(na >= 1 && nb > na, `${na} then ${nb}`);
    assert.equal(await b.invoke("GetActiveTransportName"), "LongPolling");
    assert.equal(await a.invoke("GetCallerConnectionId"), a.connectionId);
    await a.stop();
    await b.stop();
  });

  await finish();
})();
