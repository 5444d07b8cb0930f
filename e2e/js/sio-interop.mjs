// Interop check of Parley's Socket.IO server against the real socket.io-client.
// Usage: SIO_URL=http://127.0.0.1:3000 node sio-interop.mjs
// Prints one JSON line {ok, runs:[...]} and exits 1 on any failure.
import { io } from "socket.io-client";
import assert from "node:assert/strict";

const url = process.env.SIO_URL;
if (!url) {
  console.error("SIO_URL is required");
  process.exit(2);
}
const STEP_MS = 30000; // a bound on one step, not a speed

function once(emitter, event, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function emitAck(sock, ...args) {
  return new Promise((resolve, reject) => {
    sock.timeout(STEP_MS).emit(...args, (err, ...res) => (err ? reject(err) : resolve(res)));
  });
}

async function run(name, extra) {
  const checks = [];
  const check = async (what, fn) => {
    await fn();
    checks.push(what);
  };
  const opts = { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, timeout: STEP_MS, ...extra };
  const sock = io(url, { ...opts, auth: { token: "abc" } });
  try {
    await check("auth", async () => {
      const [[auth]] = await Promise.all([once(sock, "auth"), once(sock, "connect")]);
      assert.deepEqual(auth, { token: "abc" });
    });
    if (!extra.transports) {
      await check("upgrade", async () => {
        if (sock.io.engine.transport.name !== "websocket") await once(sock.io.engine, "upgrade");
        assert.equal(sock.io.engine.transport.name, "websocket");
      });
    }
    await check("echo", async () => {
      const back = once(sock, "message-back");
      sock.emit("message", 1, "2", { 3: [true] });
      assert.deepEqual(await back, [1, "2", { 3: [true] }]);
    });
    await check("ack", async () => {
      assert.deepEqual(await emitAck(sock, "message-with-ack", 1, "2", { 3: [false] }), [1, "2", { 3: [false] }]);
    });
    await check("binary echo", async () => {
      const back = once(sock, "message-back");
      sock.emit("message", Buffer.from([1, 2, 3]), "text");
      const [bin, text] = await back;
      assert.deepEqual([...Buffer.from(bin)], [1, 2, 3]);
      assert.equal(text, "text");
    });
    await check("binary ack", async () => {
      const [bin] = await emitAck(sock, "message-with-ack", Buffer.from([4, 5, 6]));
      assert.deepEqual([...Buffer.from(bin)], [4, 5, 6]);
    });
    await check("custom namespace", async () => {
      const custom = sock.io.socket("/custom", { auth: { room: "x" } });
      const [[auth]] = await Promise.all([once(custom, "auth"), once(custom, "connect")]);
      assert.deepEqual(auth, { room: "x" });
      custom.disconnect();
    });
    await check("invalid namespace", async () => {
      const bad = sock.io.socket("/random");
      const [err] = await once(bad, "connect_error");
      assert.equal(err.message, "Invalid namespace");
      bad.disconnect();
    });
    await check("reconnect", async () => {
      const dropped = once(sock, "disconnect");
      sock.emit("drop-connection");
      const [reason] = await dropped;
      assert.equal(reason, "transport close");
      await once(sock, "connect");
      const back = once(sock, "message-back");
      sock.emit("message", "after");
      assert.deepEqual(await back, ["after"]);
    });
    return { name, ok: true, checks };
  } catch (err) {
    return { name, ok: false, checks, error: String(err && err.stack ? err.stack : err) };
  } finally {
    sock.disconnect();
  }
}

const runs = [];
runs.push(await run("default (polling then upgrade)", {}));
runs.push(await run("websocket only", { transports: ["websocket"] }));
runs.push(await run("polling only", { transports: ["polling"] }));
const ok = runs.every((r) => r.ok);
console.log(JSON.stringify({ ok, runs }));
process.exit(ok ? 0 : 1);
