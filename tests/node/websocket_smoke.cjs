// The official @microsoft/signalr client (JSON and MessagePack) over WebSockets against /testhub.
// BASE=http://127.0.0.1:PORT node tests/node/websocket_smoke.cjs ; prints "N passed, N failed".
const signalR = require("@microsoft/signalr"), { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");
const assert = require("node:assert/strict");
const BASE = process.env.BASE;
let passed = 0, failed = 0;
const check = async (name, fn) => {
  try { await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error("timed out")), 10000))]); passed++; console.log("ok  ", name); }
  catch (e) { failed++; console.log("FAIL", name, "-", String(e?.message ?? e)); }
};
(async () => {
  for (const proto of [new signalR.JsonHubProtocol(), new MessagePackHubProtocol()]) {
    await check(`WebSockets/${proto.name}: start, invoke Echo, errors, stop`, async () => {
      const c = new signalR.HubConnectionBuilder().withUrl(BASE + "/testhub", { transport: signalR.HttpTransportType.WebSockets })
        .withHubProtocol(proto).configureLogging(signalR.LogLevel.Warning).build();
      const closed = new Promise((r) => c.onclose(r));
      await c.start();
      assert.equal(await c.invoke("Echo", "héllo ✓ 你好"), "héllo ✓ 你好");
      assert.equal(await c.invoke("GetActiveTransportName"), "WebSockets");
      assert.equal(await c.invoke("GetCallerConnectionId"), c.connectionId);
      await assert.rejects(c.invoke("ThrowException", "An error occurred."),
        { message: "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred." });
      await assert.rejects(c.invoke("NoSuchMethod"), { message: "Unknown hub method 'NoSuchMethod'" });
      const items = await new Promise((res, rej) => { const xs = []; c.stream("Stream").subscribe({ next: (x) => xs.push(x), complete: () => res(xs), error: rej }); });
      assert.deepEqual(items, ["a", "b", "c"]);
      await assert.rejects(c.invoke("EmptyStream"),
        { message: "The client attempted to invoke the streaming 'EmptyStream' method with a non-streaming invocation." });
      await assert.rejects(new Promise((res, rej) => c.stream("Echo", "42").subscribe({ next: () => {}, complete: res, error: rej })),
        { message: "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation." });
      await c.stop();
      assert.equal(await closed, undefined);
    });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
