// A socket.io-client agent driven line by line by a Go test (see
// server/cluster_test.go): the test opens sockets of several users to
// whichever node it likes, emits client events and reads back everything
// each socket sees, while it stops nodes or the NATS server in between.
//
// Commands, one JSON object per line on stdin:
//   {"op":"connect","sock":"a1","url":"http://127.0.0.1:8080","token":"prl_…","transport":"websocket"|"default"}
//   {"op":"emit","sock":"a1","id":7,"event":"send_message","data":{…}}
//   {"op":"close","sock":"a1"}
// Reports, one JSON object per line on stdout, each stamped with "t"
// (milliseconds since the epoch, taken when it happened):
//   {"sock":"a1","type":"connect","transport":"websocket"}
//   {"sock":"a1","type":"connect_error","message":"unauthorized","body":"…"}
//   {"sock":"a1","type":"disconnect","reason":"transport close","body":"…"}
//   {"sock":"a1","type":"event","event":"new_message","data":{…}}
//   {"sock":"a1","type":"ack","id":7,"sent":<t of the emit>,"data":{…}} (or "error")
// "body" is the HTTP response body of a failed long-polling request, when
// there was one. Sockets reconnect by themselves (socket.io's default,
// with short delays). The agent exits when stdin closes.
import { io } from "socket.io-client";
import readline from "node:readline";

const sockets = new Map();
const report = (r) => process.stdout.write(JSON.stringify({ t: Date.now(), ...r }) + "\n");

// bodyOf digs the response body out of a transport error, if any.
function bodyOf(err) {
  const ctx = err && err.context;
  if (ctx && typeof ctx.responseText === "string") return ctx.responseText;
  return undefined;
}

function connect(cmd) {
  const sock = io(cmd.url, {
    forceNew: true,
    transports: cmd.transport === "websocket" ? ["websocket"] : undefined,
    auth: { token: cmd.token },
    timeout: 5000,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  const name = cmd.sock;
  sockets.set(name, sock);
  sock.on("connect", () => report({ sock: name, type: "connect", transport: sock.io.engine.transport.name }));
  sock.on("connect_error", (err) => report({ sock: name, type: "connect_error", message: String(err && err.message), body: bodyOf(err) }));
  sock.on("disconnect", (reason, details) => report({ sock: name, type: "disconnect", reason, body: bodyOf(details) }));
  sock.onAny((event, data) => report({ sock: name, type: "event", event, data }));
}

function emit(cmd) {
  const sock = sockets.get(cmd.sock);
  const sent = Date.now();
  if (!sock) return report({ sock: cmd.sock, type: "ack", id: cmd.id, sent, error: "no such socket" });
  sock.timeout(30000).emit(cmd.event, cmd.data, (err, reply) => {
    if (err) report({ sock: cmd.sock, type: "ack", id: cmd.id, sent, error: String(err.message || err) });
    else report({ sock: cmd.sock, type: "ack", id: cmd.id, sent, data: reply });
  });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    return report({ type: "bad_command", error: String(e) });
  }
  switch (cmd.op) {
    case "connect":
      return connect(cmd);
    case "emit":
      return emit(cmd);
    case "close": {
      const sock = sockets.get(cmd.sock);
      if (sock) sock.close();
      sockets.delete(cmd.sock);
      return report({ sock: cmd.sock, type: "closed" });
    }
    default:
      return report({ type: "bad_command", error: "unknown op " + cmd.op });
  }
});
rl.on("close", () => {
  for (const sock of sockets.values()) sock.close();
  process.exit(0);
});
