// Shared helpers of the end-to-end scripts: REST calls against a Parley
// server, users registered with a per-run suffix, recording socket.io
// clients, and numbered checks that print one JSON line.
import { io } from "socket.io-client";
import { appendFileSync } from "node:fs";

// record appends what the server answered or sent to the file named by
// PARLEY_RECORD (JSON lines), for the Go test that runs this script to
// check against the OpenAPI and AsyncAPI documents.
function record(entry) {
  if (process.env.PARLEY_RECORD) appendFileSync(process.env.PARLEY_RECORD, JSON.stringify(entry) + "\n");
}

export const STEP_MS = 30000; // a bound on one step, not a speed: a loaded 2-core machine can take seconds per commit
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// parley returns helpers bound to the server at base. transport is
// "websocket" for WebSocket only, anything else for socket.io's default
// (long-polling, then upgrade).
export function parley(base, transport) {
  const transports = transport === "websocket" ? ["websocket"] : undefined;
  const suffix = Math.random().toString(36).slice(2, 8);

  async function api(token, method, path, body) {
    const res = await fetch(base + path, {
      method,
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: "Bearer " + token } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    record({ kind: "rest", method, path: path.split("?")[0], status: res.status, body: text });
    return { status: res.status, ...JSON.parse(text) };
  }

  async function register(name) {
    const r = await api(null, "POST", "/api/users/register", {
      username: name + suffix, password: "password-" + name, deviceId: "dev-" + name, publicKey: "pk-" + name,
    });
    if (r.status !== 201) throw new Error("register " + name + ": " + JSON.stringify(r));
    return r.data;
  }

  // connect opens a socket for user that records every event it gets.
  function connect(user) {
    const sock = io(base, { forceNew: true, transports, auth: { token: user.token }, timeout: STEP_MS });
    const seen = [];
    sock.onAny((event, data) => {
      seen.push({ event, data });
      record({ kind: "event", event, data });
    });
    const waitFor = (event, pred = () => true, ms = STEP_MS) =>
      new Promise((resolve, reject) => {
        const t0 = Date.now();
        const poll = () => {
          const e = seen.find((e) => e.event === event && pred(e.data));
          if (e) return resolve(e.data);
          if (Date.now() - t0 > ms) return reject(new Error(`${user.username}: no ${event}`));
          setTimeout(poll, 10);
        };
        poll();
      });
    const call = (event, data) =>
      new Promise((resolve, reject) =>
        sock.timeout(STEP_MS).emit(event, data, (err, reply) => {
          if (err) return reject(err);
          record({ kind: "ack", event, data: reply });
          resolve(reply);
        }),
      );
    const connected = new Promise((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("connect_error", reject);
    });
    return { sock, seen, waitFor, call, connected };
  }

  return { api, register, connect };
}

// checker returns check(what, fn): it runs fn, records what on success, and
// on failure prints {ok:false, failed, error, checks} and exits 1. done()
// prints {ok:true, checks}.
export function checker() {
  const checks = [];
  async function check(what, fn) {
    try {
      await fn();
      checks.push(what);
    } catch (e) {
      console.log(JSON.stringify({ ok: false, failed: what, error: String(e && e.stack ? e.stack : e), checks }));
      process.exit(1);
    }
  }
  function done() {
    console.log(JSON.stringify({ ok: true, checks }));
    process.exit(0);
  }
  return { check, done };
}
