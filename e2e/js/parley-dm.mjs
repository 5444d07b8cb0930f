// Direct messaging end to end with two real socket.io-client users (API.md
// §3, §4, §12). Ann and Bob register over REST, connect sockets, and drive
// every direct-message route and event; the script checks what each side
// receives. Usage: PARLEY_URL=http://127.0.0.1:8080 TRANSPORT=default|websocket node parley-dm.mjs
// Prints one JSON line {ok, checks} and exits 1 on the first failure.
import assert from "node:assert/strict";
import { parley, checker } from "./lib.mjs";

const base = process.env.PARLEY_URL;
if (!base) {
  console.error("PARLEY_URL is required");
  process.exit(2);
}
const { api, register, connect } = parley(base, process.env.TRANSPORT);
const { check, done } = checker();

const ann = await register("ann");
const bob = await register("bob");
await api(bob.token, "POST", "/api/contacts", { contactId: ann.userId });
const b = connect(bob);
await b.connected;
const a = connect(ann);
await a.connected;
let first;

await check("presence_update online to a contact", async () => {
  const p = await b.waitFor("presence_update", (d) => d.userId === ann.userId && d.online === true);
  assert.equal(p.online, true);
});

await check("send_message over the socket with ack after commit", async () => {
  const reply = await a.call("send_message", { recipientId: bob.userId, encryptedContent: '{"message":"aGk=","key":"k","iv":"i"}', type: "text", clientMessageId: "js-1" });
  assert.equal(reply.success, true, JSON.stringify(reply));
  assert.equal(reply.data.status, "sent");
  assert.equal(reply.data.seq, 1);
  first = reply.data;
  const again = await a.call("send_message", { recipientId: bob.userId, encryptedContent: "other", clientMessageId: "js-1" });
  assert.equal(again.data.messageId, first.messageId, "clientMessageId retry must return the first message");
});

await check("new_message carries the full message", async () => {
  const m = await b.waitFor("new_message", (d) => d.messageId === first.messageId);
  assert.equal(m.content, '{"message":"aGk=","key":"k","iv":"i"}');
  assert.equal(m.senderId, ann.userId);
  assert.equal(m.recipientId, bob.userId);
  assert.equal(m.contentHash.length, 64);
  assert.deepEqual(m.reactions, []);
  // A barrier, not a sleep: a marker sent after the retry reaches Bob
  // after anything the retry could have delivered.
  const marker = await a.call("send_message", { recipientId: bob.userId, encryptedContent: "marker", type: "text" });
  assert.equal(marker.success, true, JSON.stringify(marker));
  await b.waitFor("new_message", (d) => d.messageId === marker.data.messageId);
  assert.equal(b.seen.filter((e) => e.event === "new_message" && e.data.messageId === first.messageId).length, 1, "retry delivered twice");
});

await check("send errors come back in the ack envelope", async () => {
  const r = await a.call("send_message", { recipientId: bob.userId, encryptedContent: "" });
  assert.equal(r.success, false);
  assert.equal(r.error.code, "invalid_argument");
  const r2 = await a.call("send_message", { recipientId: bob.userId, encryptedContent: "x", senderId: bob.userId });
  assert.equal(r2.error.code, "forbidden");
});

await check("typing over the socket reaches the peer", async () => {
  const r = await b.call("typing", { recipientId: ann.userId, isTyping: true });
  assert.equal(r.success, true, JSON.stringify(r));
  const t = await a.waitFor("typing_indicator", (d) => d.senderId === bob.userId);
  assert.equal(t.isTyping, true);
});

await check("message_status over the socket; message_status_update to the sender", async () => {
  const r = await b.call("message_status", { messageId: first.messageId, status: "seen" });
  assert.equal(r.success, true, JSON.stringify(r));
  assert.equal(r.data.status, "seen");
  const u = await a.waitFor("message_status_update", (d) => d.messageId === first.messageId && d.status === "seen");
  assert.equal(u.userId, bob.userId);
  const s = await api(ann.token, "GET", "/api/status/" + first.messageId);
  assert.equal(s.data.status, "seen");
  assert.ok(s.data.seenAt && s.data.deliveredAt);
});

let second;
await check("REST send, reply, react, edit, delete reach the socket", async () => {
  const s = await api(bob.token, "POST", "/api/messages/send", { recipientId: ann.userId, encryptedContent: "from bob" });
  assert.equal(s.status, 201);
  second = s.data;
  await a.waitFor("new_message", (d) => d.messageId === second.messageId);
  const rep = await api(ann.token, "POST", "/api/messages/reply", { recipientId: bob.userId, replyToId: second.messageId, encryptedContent: "re" });
  assert.equal(rep.status, 201);
  const rm = await b.waitFor("new_message", (d) => d.messageId === rep.data.messageId);
  assert.equal(rm.replyToId, second.messageId);
  await api(ann.token, "POST", "/api/messages/react", { messageId: second.messageId, reaction: "🎉" });
  const re = await b.waitFor("message_reaction", (d) => d.messageId === second.messageId);
  assert.equal(re.reaction, "🎉");
  await api(bob.token, "POST", "/api/messages/edit", { messageId: second.messageId, encryptedContent: "from bob, edited" });
  const ed = await a.waitFor("message_edited", (d) => d.messageId === second.messageId);
  assert.equal(ed.content, "from bob, edited");
  assert.ok(ed.editedAt);
  await api(bob.token, "POST", "/api/messages/delete", { messageId: second.messageId, deleteForEveryone: true });
  const de = await a.waitFor("message_deleted", (d) => d.messageId === second.messageId);
  assert.equal(de.deleteForEveryone, true);
  const h = await api(ann.token, "GET", `/api/messages/${ann.userId}/${bob.userId}?limit=10`);
  const tomb = h.data.find((m) => m.messageId === second.messageId);
  assert.equal(tomb.deletedForEveryone, true);
  assert.equal(tomb.content, null);
});

await check("scheduled message is delivered as new_message", async () => {
  const at = new Date(Date.now() + 800).toISOString();
  const s = await api(ann.token, "POST", "/api/messages/schedule", { recipientId: bob.userId, encryptedContent: "later", scheduledAt: at });
  assert.equal(s.status, 201, JSON.stringify(s));
  const m = await b.waitFor("new_message", (d) => d.messageId === s.data.messageId, 8000);
  assert.equal(m.content, "later");
});

await check("offline user gets every message from sync", async () => {
  b.sock.disconnect();
  const ids = [];
  for (let i = 0; i < 12; i++) {
    const r = await a.call("send_message", { recipientId: bob.userId, encryptedContent: "offline " + i });
    ids.push(r.data.messageId);
  }
  const got = [];
  let cursor = "";
  for (;;) {
    const p = await api(bob.token, "GET", "/api/sync?limit=5" + (cursor ? "&cursor=" + cursor : ""));
    for (const it of p.data.items) if (it.event === "new_message") got.push(it.data.messageId);
    cursor = p.data.nextCursor;
    if (!p.data.hasMore) break;
  }
  for (const id of ids) assert.ok(got.includes(id), "sync missed " + id);
  assert.deepEqual(got.filter((id) => ids.includes(id)), ids, "sync order");
});

await check("presence_update offline after the grace period, with lastSeen", async () => {
  const b2 = connect(bob);
  await b2.connected;
  a.sock.disconnect();
  const p = await b2.waitFor("presence_update", (d) => d.userId === ann.userId && d.online === false, 12000);
  assert.ok(p.lastSeen);
  b2.sock.disconnect();
});

await check("chat list shows the conversation with unread count", async () => {
  const c = await api(bob.token, "GET", "/api/chats");
  assert.equal(c.data.length, 1);
  assert.equal(c.data[0].peer.userId, ann.userId);
  assert.ok(c.data[0].unreadCount >= 12);
});

done();
