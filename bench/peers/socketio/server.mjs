// A stock Node.js Socket.IO server (npm socket.io 4.8, default options) that
// parley-bench can drive like Parley, so that both are measured by the same
// client in the same run: idle memory per socket, and group fan-out.
//
// It is a relay, not a messaging server: it keeps nothing on disk, checks
// tokens against the users file that `parley-bench seed` wrote, puts each
// socket in a room named after its user, and answers the few REST routes
// the bench calls (who am I, create a group) in memory. A send_group_message
// is relayed as new_group_message, with the same shape of event and ack as
// Parley's, to the rooms of the group's members with one io.to(rooms).emit,
// which Socket.IO encodes once for every socket.
//
//   npm ci && node server.mjs --users-file /tmp/pb/users.json --port 3001
//
// Listens on 127.0.0.1 only.

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: opts } = parseArgs({
  options: {
    "users-file": { type: "string" },
    port: { type: "string", default: "3001" },
  },
});
if (!opts["users-file"]) {
  console.error("usage: node server.mjs --users-file FILE [--port 3001]");
  process.exit(2);
}

// token → user, from the seed's file ({"users": [{id, username, token}]}).
const users = new Map();
for (const u of JSON.parse(readFileSync(opts["users-file"], "utf8")).users) {
  users.set(u.token, { id: u.id, username: u.username });
}

const maxBody = 1 << 20;
const groups = new Map(); // groupId → member ids (the creator first)

const id = (prefix) => prefix + randomBytes(13).toString("hex").slice(0, 26);

// fail is the error envelope Parley answers (API.md §1).
const fail = (code, message) => ({ success: false, error: { code, message } });

function reply(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
  res.end(b);
}

function userOf(req) {
  const h = req.headers.authorization || "";
  return h.toLowerCase().startsWith("bearer ") ? users.get(h.slice(7).trim()) : undefined;
}

function readJSON(req, done) {
  let size = 0;
  const chunks = [];
  req.on("data", (c) => {
    size += c.length;
    if (size > maxBody) {
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    try {
      done(null, JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
    } catch (err) {
      done(err);
    }
  });
}

const http = createServer((req, res) => {
  if (req.url.startsWith("/socket.io/")) return; // Socket.IO's own handler answers
  const me = userOf(req);
  if (!me) return reply(res, 401, fail("unauthorized", "unauthorized"));
  if (req.method === "GET" && req.url === "/api/users/me") {
    return reply(res, 200, { success: true, data: { userId: me.id, username: me.username } });
  }
  if (req.method === "POST" && req.url === "/api/groups/create") {
    return readJSON(req, (err, body) => {
      const members = body && Array.isArray(body.members) ? body.members.filter((m) => typeof m === "string") : null;
      if (err || !members || members.length > 1024) {
        return reply(res, 400, fail("invalid_argument", "members must be an array of at most 1024 user ids"));
      }
      const groupId = id("group_");
      groups.set(groupId, [me.id, ...members.filter((m) => m !== me.id)]);
      reply(res, 201, { success: true, data: { groupId, name: String(body.name || "") } });
    });
  }
  reply(res, 404, fail("not_found", "not found"));
});

const io = new Server(http);

io.use((socket, next) => {
  const token = (socket.handshake.auth && socket.handshake.auth.token) || socket.handshake.query.token;
  const u = typeof token === "string" ? users.get(token.replace(/^Bearer /, "")) : undefined;
  if (!u) return next(new Error("unauthorized"));
  socket.data.userId = u.id;
  next();
});

let seq = 0;
io.on("connection", (socket) => {
  const me = socket.data.userId;
  socket.join(me);
  socket.on("send_group_message", (data, ack) => {
    const answer = typeof ack === "function" ? ack : () => {};
    const members = data && groups.get(data.groupId);
    if (!members || !members.includes(me) || typeof data.encryptedContent !== "string") {
      return answer(fail("not_found", "no such group of yours, or no encryptedContent"));
    }
    const message = {
      messageId: id("msg_"),
      conversationId: data.groupId,
      groupId: data.groupId,
      seq: ++seq,
      senderId: me,
      clientMessageId: typeof data.clientMessageId === "string" ? data.clientMessageId : undefined,
      content: data.encryptedContent,
      type: data.type || "text",
      status: "sent",
      sentAt: new Date().toISOString(),
    };
    io.to(members).emit("new_group_message", message);
    answer({ success: true, data: message });
  });
});

http.listen(Number(opts.port), "127.0.0.1", () => {
  console.log(`socket.io peer listening on 127.0.0.1:${opts.port}, ${users.size} users, pid ${process.pid}`);
});
