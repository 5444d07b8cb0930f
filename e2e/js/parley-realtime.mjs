// Interop check of Parley's real-time hub (API.md §12) against the real
// socket.io-client, driven by realtime/interop_test.go.
//
// Environment:
//   PARLEY_URL     base URL of the server, e.g. http://127.0.0.1:8080
//   PROXY_URL      the same server behind a TCP proxy the test can cut
//   CTRL_URL       POST $CTRL_URL/drop cuts every connection through the proxy
//   PARLEY_USERS   JSON {"a": user, "b": user, "c": user}, user = {userId, token, username, password};
//                  b has a as a contact; c is used for log-in/log-out
//
// Prints one JSON line {ok, runs:[{name, ok, checks, error?}]} and exits 1
// on any failure. Every wait is bounded.
import { io } from "socket.io-client";
import assert from "node:assert/strict";

const url = process.env.PARLEY_URL;
const proxyURL = process.env.PROXY_URL;
const ctrlURL = process.env.CTRL_URL;
const users = JSON.parse(process.env.PARLEY_USERS || "null");
if (!url || !proxyURL || !ctrlURL || !users) {
  console.error("PARLEY_URL, PROXY_URL, CTRL_URL and PARLEY_USERS are required");
  process.exit(2);
}
const STEP_MS = 30000; // a bound on one step, not a speed
const { a, b, c } = users;

function withTimeout(promise, what, ms = STEP_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// once resolves with the arguments of the next `event`, or rejects after ms.
function once(emitter, event, ms = STEP_MS) {
  let handler;
  return withTimeout(
    new Promise((resolve) => {
      handler = (...args) => resolve(args);
      emitter.once(event, handler);
    }),
    `waiting for ${event}`,
    ms,
  ).finally(() => emitter.off(event, handler));
}

// waitEvent resolves with the first `event` whose data satisfies match.
function waitEvent(sock, event, match, ms = STEP_MS) {
  let handler;
  return withTimeout(
    new Promise((resolve) => {
      handler = (data) => {
        if (match(data)) resolve(data);
      };
      sock.on(event, handler);
    }),
    `waiting for ${event}`,
    ms,
  ).finally(() => sock.off(event, handler));
}

// noEvent resolves if `event` does not happen within ms.
async function noEvent(emitter, event, ms) {
  let seen = false;
  const handler = () => (seen = true);
  emitter.on(event, handler);
  await new Promise((r) => setTimeout(r, ms));
  emitter.off(event, handler);
  assert.equal(seen, false, `unexpected ${event}`);
}

async function rest(method, path, token, body) {
  const res = await withTimeout(
    fetch(url + path, {
      method,
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    `${method} ${path}`,
  );
  const env = await res.json();
  assert.ok(res.ok && env.success, `${method} ${path}: ${res.status} ${JSON.stringify(env)}`);
  return env.data;
}

function assertError(reply, code) {
  assert.equal(reply.success, false, JSON.stringify(reply));
  assert.equal(reply.error?.code, code, JSON.stringify(reply));
  assert.equal(typeof reply.error.message, "string");
}

let serial = 0;

async function run(name, extra) {
  const checks = [];
  const failures = [];
  const sockets = [];
  // A failed check is recorded and the next one runs: they are independent
  // once the sockets of a, b1 and b2 are connected.
  const check = async (what, fn) => {
    try {
      await fn();
      checks.push(what);
    } catch (err) {
      failures.push(`${what}: ${err && err.stack ? err.stack : err}`);
    }
  };
  const connect = (token, { via = url, how = "auth", ...more } = {}) => {
    const opts = { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 300, timeout: STEP_MS, ...extra, ...more };
    if (how === "auth") opts.auth = { token };
    else opts.query = { token };
    const sock = io(via, opts);
    sockets.push(sock);
    return sock;
  };
  const connected = async (sock) => {
    if (!sock.connected) await once(sock, "connect");
    if (!extra.transports) {
      // Default options: long-polling first, then the upgrade to WebSocket.
      if (sock.io.engine.transport.name !== "websocket") await once(sock.io.engine, "upgrade");
      assert.equal(sock.io.engine.transport.name, "websocket");
    }
    return sock;
  };
  // profileRoundTrip renames a and waits for profile_updated on every socket given.
  const profileRoundTrip = async (...socks) => {
    const newName = `Ann ${name} ${++serial}`;
    const got = socks.map((s) => waitEvent(s, "profile_updated", (d) => d?.name === newName));
    await rest("PUT", "/api/users/me/profile", a.token, { name: newName });
    for (const data of await Promise.all(got)) {
      assert.equal(data.userId, a.userId);
      assert.equal(data.name, newName);
    }
  };
  try {
    await check("bad token refused (auth and query)", async () => {
      for (const how of ["auth", "query"]) {
        const bad = connect("prl_not_a_token", { how, reconnection: false });
        const [err] = await once(bad, "connect_error");
        assert.equal(err.message, "unauthorized");
        assert.equal(bad.connected, false);
        bad.disconnect();
      }
    });

    const a1 = await connected(connect(a.token));
    const b1 = await connected(connect(b.token, { how: "auth" }));
    const b2 = await connected(connect(b.token, { how: "query" }));
    checks.push("token via auth and via query");

    await check("profile_updated reaches every socket of the contact", async () => {
      await profileRoundTrip(b1, b2);
    });

    await check("unknown event: ack with invalid_argument envelope", async () => {
      const reply = await a1.timeout(STEP_MS).emitWithAck("no_such_event", { x: 1 });
      assertError(reply, "invalid_argument");
      const bin = await a1.timeout(STEP_MS).emitWithAck("no_such_event", Buffer.from([1, 2, 3]));
      assertError(bin, "invalid_argument");
    });

    await check("binary argument: error ack, connection intact", async () => {
      const reply = await a1.timeout(STEP_MS).emitWithAck("send_message", Buffer.from([4, 5, 6]));
      assertError(reply, "invalid_argument");
      const mixed = await a1.timeout(STEP_MS).emitWithAck("send_message", { recipientId: b.userId, encryptedContent: Buffer.from([7]), type: "text" });
      assertError(mixed, "invalid_argument");
      assert.equal(a1.connected, true);
      // The same socket still sends and receives.
      await profileRoundTrip(b1);
      const ok = await a1.timeout(STEP_MS).emitWithAck("send_message", { recipientId: b.userId, encryptedContent: "after-binary", type: "text" });
      assert.equal(ok.success, true, JSON.stringify(ok));
    });

    await check("send_message: ack, new_message on every socket of the recipient", async () => {
      const clientMessageId = `interop-${name}-${Date.now()}`;
      const encryptedContent = JSON.stringify({ message: "Y2lwaGVy", key: "a2V5", iv: "aXY=", n: clientMessageId });
      const arrivals = [b1, b2].map((s) => waitEvent(s, "new_message", (m) => m?.content === encryptedContent));
      const reply = await a1.timeout(STEP_MS).emitWithAck("send_message", {
        recipientId: b.userId, encryptedContent, type: "text", clientMessageId,
      });
      assert.equal(reply.success, true, JSON.stringify(reply));
      const { messageId, status, sentAt, seq } = reply.data;
      assert.ok(typeof messageId === "string" && messageId.length > 0);
      assert.equal(status, "sent");
      assert.ok(!Number.isNaN(Date.parse(sentAt)), `sentAt ${sentAt}`);
      assert.ok(Number.isInteger(seq) && seq > 0, `seq ${seq}`);
      for (const m of await Promise.all(arrivals)) {
        assert.equal(m.messageId, messageId);
        assert.equal(m.senderId, a.userId);
        assert.equal(m.recipientId, b.userId);
        assert.equal(m.seq, seq);
        assert.equal(m.type, "text");
      }
      // The same clientMessageId again: the first message, nothing delivered.
      const dupSeen = noEvent(b1, "new_message", 500);
      const again = await a1.timeout(STEP_MS).emitWithAck("send_message", {
        recipientId: b.userId, encryptedContent, type: "text", clientMessageId,
      });
      assert.equal(again.success, true, JSON.stringify(again));
      assert.equal(again.data.messageId, messageId);
      await dupSeen;
      const bad = await a1.timeout(STEP_MS).emitWithAck("send_message", { recipientId: b.userId, encryptedContent: "", type: "text" });
      assertError(bad, "invalid_argument");
    });

    await check("network drop: reconnects by itself, events flow again", async () => {
      const d = await connected(connect(b.token, { via: proxyURL }));
      const dropped = once(d, "disconnect");
      const res = await withTimeout(fetch(ctrlURL + "/drop", { method: "POST" }), "POST /drop");
      assert.equal(res.status, 200);
      const [reason] = await dropped;
      assert.notEqual(reason, "io server disconnect");
      assert.notEqual(reason, "io client disconnect");
      if (!d.connected) await once(d, "connect", 10_000);
      await connected(d);
      await profileRoundTrip(d, b1);
    });

    await check("logout closes the socket; reconnect fails with unauthorized", async () => {
      const login = await rest("POST", "/api/auth/login", undefined, { username: c.username, password: c.password });
      const s = await connected(connect(login.token));
      const dropped = once(s, "disconnect");
      await rest("POST", "/api/auth/logout", login.token);
      await dropped;
      const [err] = await once(s, "connect_error", 10_000);
      assert.equal(err.message, "unauthorized");
      await noEvent(s, "connect", 1000);
      assert.equal(s.connected, false);
      // The user's other sessions are untouched: a fresh login still connects.
      const again = await rest("POST", "/api/auth/login", undefined, { username: c.username, password: c.password });
      await connected(connect(again.token));
    });
  } catch (err) {
    failures.push(`setup: ${err && err.stack ? err.stack : err}`);
  } finally {
    for (const s of sockets) s.disconnect();
  }
  return failures.length === 0 ? { name, ok: true, checks } : { name, ok: false, checks, error: failures.join("\n") };
}

const runs = [];
runs.push(await run("default (polling then upgrade)", {}));
runs.push(await run("websocket only", { transports: ["websocket"] }));
const ok = runs.every((r) => r.ok);
console.log(JSON.stringify({ ok, runs }));
process.exit(ok ? 0 : 1);
