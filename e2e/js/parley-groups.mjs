// Groups end to end with four real socket.io-client users (API.md §5, §12).
// Ann creates a group with Bob and Cat; Dan joins later and is removed; the
// script checks what every socket receives, and what it must not.
// Usage: PARLEY_URL=http://127.0.0.1:8080 TRANSPORT=default|websocket node parley-groups.mjs
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

const [ann, bob, cat, dan] = [await register("ann"), await register("bob"), await register("cat"), await register("dan")];
const [a, b, c, d] = [connect(ann), connect(bob), connect(cat), connect(dan)];
for (const s of [a, b, c, d]) await s.connected;
let group, first;

// marker sends a direct message on socket from to user, and waits until
// user's connection got it: a barrier after which anything sent before it
// would have arrived too (the queue of a socket is in order).
async function marker(from, to, toConn) {
  const r = await from.call("send_message", { recipientId: to.userId, encryptedContent: "marker", type: "text" });
  await toConn.waitFor("new_message", (x) => x.messageId === r.data.messageId);
}

await check("create: members get group_member_added; outsiders get 404", async () => {
  const r = await api(ann.token, "POST", "/api/groups/create", { name: "Trip", description: "Lisbon", members: [bob.userId, cat.userId] });
  assert.equal(r.status, 201, JSON.stringify(r));
  group = r.data;
  assert.equal(group.membersCount, 3);
  assert.equal(group.createdBy, ann.userId);
  for (const s of [a, b, c]) await s.waitFor("group_member_added", (x) => x.groupId === group.groupId);
  assert.equal((await api(dan.token, "GET", "/api/groups/" + group.groupId)).status, 404);
  const g = await api(bob.token, "GET", "/api/groups/" + group.groupId);
  assert.deepEqual(g.data.members.map((m) => [m.userId, m.role]).sort(), [[ann.userId, "admin"], [bob.userId, "member"], [cat.userId, "member"]].sort());
});

await check("a group has at most 1024 members", async () => {
  const many = Array.from({ length: 1024 }, (_, i) => "usr_x" + i);
  const r = await api(ann.token, "POST", "/api/groups/create", { name: "big", members: many });
  assert.equal(r.status, 400);
  assert.equal(r.error.code, "invalid_argument");
  assert.match(r.error.message, /at most 1024/);
});

await check("send_group_message with ack; every member gets new_group_message once", async () => {
  // Cat blocked Ann: she still receives Ann's group messages.
  assert.equal((await api(cat.token, "POST", "/api/users/block", { blockedUserId: ann.userId })).status, 200);
  const r = await a.call("send_group_message", { groupId: group.groupId, encryptedContent: '{"message":"x","keys":{}}', type: "text", clientMessageId: "g-1" });
  assert.equal(r.success, true, JSON.stringify(r));
  first = r.data;
  assert.equal(first.groupId, group.groupId);
  const again = await a.call("send_group_message", { groupId: group.groupId, encryptedContent: "other", clientMessageId: "g-1" });
  assert.equal(again.data.messageId, first.messageId);
  for (const s of [b, c, a]) {
    const m = await s.waitFor("new_group_message", (x) => x.messageId === first.messageId);
    assert.equal(m.content, '{"message":"x","keys":{}}');
    assert.equal(m.senderId, ann.userId);
  }
  await marker(c, bob, b);
  assert.equal(b.seen.filter((e) => e.event === "new_group_message" && e.data.messageId === first.messageId).length, 1);
  assert.equal(d.seen.filter((e) => e.event === "new_group_message").length, 0, "an outsider got a group message");
  const out = await d.call("send_group_message", { groupId: group.groupId, encryptedContent: "x" });
  assert.equal(out.error.code, "not_found");
});

await check("typing reaches members but never crosses a block", async () => {
  const r = await a.call("typing", { groupId: group.groupId, isTyping: true });
  assert.equal(r.success, true, JSON.stringify(r));
  await b.waitFor("typing_indicator", (x) => x.senderId === ann.userId && x.groupId === group.groupId);
  await marker(b, cat, c);
  assert.equal(c.seen.filter((e) => e.event === "typing_indicator" && e.data.senderId === ann.userId).length, 0);
});

await check("receipts: message_status advances cursors; the sender sees who has it", async () => {
  const r = await b.call("message_status", { messageId: first.messageId, status: "seen" });
  assert.equal(r.success, true, JSON.stringify(r));
  await a.waitFor("group_message_status_update", (x) => x.userId === bob.userId && x.status === "seen");
  await c.call("message_status", { messageId: first.messageId, status: "delivered" });
  await a.waitFor("group_message_status_update", (x) => x.userId === cat.userId);
  const st = await api(ann.token, "GET", `/api/group-messages/${first.messageId}/status`);
  assert.deepEqual(st.data.delivered.map((x) => x.userId).sort(), [bob.userId, cat.userId].sort());
  assert.deepEqual(st.data.seen.map((x) => x.userId), [bob.userId]);
  assert.ok(st.data.seen[0].at);
  assert.equal(st.data.status, "delivered");
});

await check("reactions and admin delete for everyone", async () => {
  const m = await b.call("send_group_message", { groupId: group.groupId, encryptedContent: "bob's" });
  const re = await api(cat.token, "POST", "/api/group-messages/react", { messageId: m.data.messageId, reaction: "❤" });
  assert.equal(re.status, 200, JSON.stringify(re));
  await b.waitFor("group_message_reaction", (x) => x.messageId === m.data.messageId && x.reaction === "❤");
  const del = await api(cat.token, "POST", "/api/group-messages/delete", { messageId: m.data.messageId, deleteForEveryone: true });
  assert.equal(del.status, 403);
  const ok = await api(ann.token, "POST", "/api/group-messages/delete", { messageId: m.data.messageId, deleteForEveryone: true });
  assert.equal(ok.status, 200, JSON.stringify(ok));
  await c.waitFor("group_message_deleted", (x) => x.messageId === m.data.messageId);
});

await check("a late member sees only later messages; a removed one gets nothing more", async () => {
  const add = await api(ann.token, "POST", "/api/groups/members/add", { groupId: group.groupId, members: [dan.userId] });
  assert.deepEqual(add.data.newMembers, [dan.userId]);
  await d.waitFor("group_member_added", (x) => x.groupId === group.groupId);
  const h = await api(dan.token, "GET", "/api/group-messages/" + group.groupId);
  assert.equal(h.data.length, 0);
  const m = await c.call("send_group_message", { groupId: group.groupId, encryptedContent: "hi dan" });
  await d.waitFor("new_group_message", (x) => x.messageId === m.data.messageId);
  const rm = await api(ann.token, "POST", "/api/groups/members/remove", { groupId: group.groupId, memberId: dan.userId });
  assert.equal(rm.status, 200, JSON.stringify(rm));
  await d.waitFor("group_member_removed", (x) => x.memberId === dan.userId);
  await b.waitFor("group_member_removed", (x) => x.memberId === dan.userId);
  const after = await a.call("send_group_message", { groupId: group.groupId, encryptedContent: "dan is out" });
  await b.waitFor("new_group_message", (x) => x.messageId === after.data.messageId);
  await b.call("typing", { groupId: group.groupId });
  await a.waitFor("typing_indicator", (x) => x.senderId === bob.userId);
  await marker(a, dan, d);
  const leaked = d.seen.filter((e) => JSON.stringify(e.data).includes(after.data.messageId) || e.event === "typing_indicator");
  assert.equal(leaked.length, 0, "removed member got " + JSON.stringify(leaked));
  // A former member keeps what was sent while he was a member, nothing after.
  const kept = await api(dan.token, "GET", "/api/group-messages/" + group.groupId);
  assert.equal(kept.status, 200);
  assert.deepEqual(kept.data.map((x) => x.messageId), [m.data.messageId]);
});

await check("admins only: settings, roles, removals; the owner cannot be removed", async () => {
  const s = await api(bob.token, "POST", "/api/groups/settings", { groupId: group.groupId, settings: { onlyAdminsCanSend: true } });
  assert.equal(s.status, 403);
  const ok = await api(ann.token, "POST", "/api/groups/settings", { groupId: group.groupId, settings: { onlyAdminsCanSend: true } });
  assert.equal(ok.data.settings.onlyAdminsCanSend, true);
  await b.waitFor("group_updated", (x) => x.settings && x.settings.onlyAdminsCanSend === true);
  const denied = await b.call("send_group_message", { groupId: group.groupId, encryptedContent: "x" });
  assert.equal(denied.error.code, "forbidden");
  const role = await api(ann.token, "POST", "/api/groups/members/role", { groupId: group.groupId, memberId: bob.userId, newRole: "admin" });
  assert.equal(role.status, 200);
  await c.waitFor("group_updated", (x) => x.memberId === bob.userId && x.role === "admin");
  assert.equal((await b.call("send_group_message", { groupId: group.groupId, encryptedContent: "admin now" })).success, true);
  assert.equal((await api(bob.token, "POST", "/api/groups/members/remove", { groupId: group.groupId, memberId: ann.userId })).status, 403);
  assert.equal((await api(cat.token, "POST", "/api/groups/members/remove", { groupId: group.groupId, memberId: bob.userId })).status, 403);
});

await check("chats and sync list the group and its events", async () => {
  const chats = await api(cat.token, "GET", "/api/chats");
  const row = chats.data.find((x) => x.type === "group");
  assert.ok(row && row.group.groupId === group.groupId && row.lastMessage, JSON.stringify(chats.data));
  const events = new Set();
  let cursor = "0";
  for (;;) {
    const p = await api(cat.token, "GET", "/api/sync?limit=50&cursor=" + cursor);
    for (const it of p.data.items) events.add(it.event);
    cursor = p.data.nextCursor;
    if (!p.data.hasMore) break;
  }
  for (const e of ["group_member_added", "new_group_message", "group_message_deleted", "group_member_removed", "group_updated"]) {
    assert.ok(events.has(e), "sync lacks " + e + ": " + [...events]);
  }
});

await check("the last admin leaving promotes the longest-standing member; delete reaches everyone", async () => {
  const g2 = await api(cat.token, "POST", "/api/groups/create", { name: "Two", members: [bob.userId] });
  const left = await api(cat.token, "POST", "/api/groups/members/remove", { groupId: g2.data.groupId, memberId: cat.userId });
  assert.equal(left.data.promoted, bob.userId);
  await b.waitFor("group_member_removed", (x) => x.groupId === g2.data.groupId && x.promoted === bob.userId);
  const del = await api(ann.token, "POST", "/api/groups/delete", { groupId: group.groupId });
  assert.equal(del.status, 200, JSON.stringify(del));
  for (const s of [a, b, c]) await s.waitFor("group_deleted", (x) => x.groupId === group.groupId);
  assert.equal(d.seen.filter((e) => e.event === "group_deleted").length, 0);
  assert.equal((await api(bob.token, "GET", "/api/groups/" + group.groupId)).status, 404);
});

done();
