// The web client's communities and channels: Debian's Chromium (never a
// downloaded one) driven by playwright-core against a running Parley
// server. Run by web/browser_communities_test.go:
//   node communities.mjs BASE_URL ARTIFACTS_DIR CANARY
// It exits non-zero with the failed step on stderr.
//
// Two people in two browser contexts: ann creates a private community,
// bob asks to join with its invite code, ann approves in her page; ann's
// open client hands bob the channel keys when the server asks
// (channel_key_needed), bob reads what ann posts, decrypted in his
// browser; a private channel bob is added to afterwards; an announcement
// channel without a composer for bob; a pinned message in the Pinned list
// of both; a reload on a channel's address; the community deleted under
// bob's eyes; a public community joined at once, read with the community
// key, and left; a rejected request. A channel for every member of the
// private community, its key wrapped by ann's client for each; the member
// list; carl
// removed from a private channel: ann's client rotates its key, bob reads
// the old message and the new one, carl gets 404. Every request body and
// socket frame is captured: the canary typed in the UI must be in none.
// axe-core scans the community and channel screens.
import { T, launch, fail, steps, axeScan, registerIn } from './harness.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, artifacts, canary] = process.argv.slice(2);
if (!base || !artifacts || !canary) {
  console.error('usage: node communities.mjs BASE_URL ARTIFACTS_DIR CANARY');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const origin = new URL(base).origin;

const started = Date.now();
const { timings, step, run: stage } = steps();

const browser = await launch();

const problems = [];
/** Every request body and socket frame the pages sent, to look for the canary. */
const sent = [];

async function newUser(label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  context.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(origin + '/') && !url.startsWith('blob:') && !url.startsWith('data:')) problems.push(`${label}: third-party request ${url}`);
    const body = req.postDataBuffer();
    if (body) sent.push({ who: label, url: new URL(url, origin).pathname, body: body.toString('latin1') });
  });
  page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push({ who: label, url: 'ws', body: String(f.payload) })));
  page.on('console', (msg) => {
    // A refused request (the 404 this scenario provokes) logs "Failed to load resource": not a problem.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`${label}: console error ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error ${err.message}`));
  page.on('dialog', (d) => d.accept()); // confirm() of leave and delete
  return { label, context, page, username: '' };
}

async function register(u, username, name) {
  await registerIn(u.page, base, username, name);
  u.username = username;
}

async function axe(u, screen) {
  await axeScan(u.page, artifacts, `axe-communities-${screen}.json`, screen);
}

async function shot(u, name) {
  await u.page.screenshot({ path: join(artifacts, 'communities-' + name + '.png') });
}

/** Sends text from the open channel's composer and waits until the server took it. */
async function post(u, text) {
  await u.page.fill('#channel-composer', text);
  await u.page.press('#channel-composer', 'Enter');
  await u.page.waitForSelector(`li.msg.out:not([data-mid=""]) >> text=${text}`);
}

/** Opens a channel of the community page on screen. */
async function openChannel(u, name) {
  await u.page.click(`.channel-link:has-text("${name}")`);
  await u.page.waitForSelector(`#conv-title >> text=# ${name}`);
}

async function backToCommunity(u) {
  await u.page.click('button[aria-label="Back to the community"]');
  await u.page.waitForSelector('.channel-list');
}

/**
 * Creates a channel from the community page; members are usernames
 * allowed at creation. everyone: a channel every member reads (the
 * private box unticked).
 */
async function newChannel(u, name, type, members, everyone = false) {
  await u.page.click('button:has-text("New channel")');
  await u.page.fill('#channel-name', name);
  await u.page.selectOption('#channel-type', type);
  if (everyone) await u.page.uncheck('#channel-private');
  for (const [i, m] of members.entries()) {
    await u.page.fill('#channel-member', m);
    await u.page.press('#channel-member', 'Enter');
    await u.page.waitForFunction((n) => document.querySelectorAll('dialog .chips li').length === n, i + 1);
  }
  await u.page.click('button:has-text("Create channel")');
  await u.page.waitForSelector(`#conv-title >> text=# ${name}`);
}

const suffix = Date.now().toString(36).slice(-5);
const names = { ann: 'cann_' + suffix, bob: 'cbob_' + suffix, carl: 'ccarl_' + suffix };
const texts = {
  general: `general ${canary}`,
  reply: `bob answers ${canary}`,
  secret: `secret ${canary}`,
  news: `news ${canary}`,
  open: `open ${canary}`,
  before: `before rotation ${canary}`,
  after: `after rotation ${canary}`,
  all: `all hands ${canary}`,
};
let ann, bob, carl;
let communityId = '';

try {
  await stage('two people register', async () => {
    ann = await newUser('ann');
    bob = await newUser('bob');
    // One-word names: the sidebar's avatar button shows initials that axe's
    // label-content-name-mismatch rule reads as text from two letters on.
    await register(ann, names.ann, 'Ann');
    await register(bob, names.bob, 'Bob');
  });

  await stage('ann creates a private community', async () => {
    await ann.page.click('button[aria-label="Communities"]');
    await ann.page.waitForSelector('#conv-title >> text=Communities');
    await ann.page.waitForSelector('text=You are in no community yet.');
    await axe(ann, 'home');
    await ann.page.click('button:has-text("New community")');
    if (!(await ann.page.isChecked('#community-private'))) fail('a new community is not private by default');
    await ann.page.fill('#community-name', 'Canary club');
    await ann.page.fill('#community-description', 'A private test community');
    await ann.page.click('button:has-text("Create community")');
    await ann.page.waitForSelector('#conv-title >> text=Canary club');
    communityId = await ann.page.inputValue('#invite-show');
    if (!communityId.startsWith('comm_')) fail(`invite code ${communityId}`);
    await ann.page.waitForSelector('.channel-link:has-text("general")');
    await ann.page.waitForSelector('.join-requests >> text=No pending requests.');
    await shot(ann, '01-community');
    await axe(ann, 'community');
  });

  await stage('bob asks to join with the invite code; the request is pending', async () => {
    await bob.page.click('button[aria-label="Communities"]');
    await bob.page.fill('#invite-code', communityId);
    await bob.page.click('button:has-text("Ask to join")');
    await bob.page.waitForSelector('text=Request sent. An admin of the community will answer it.');
    await bob.page.waitForSelector(`[data-community="${communityId}"] >> text=Request sent`);
    // A pending member reads nothing of the community.
    const st = await bob.page.evaluate(async (id) => (await fetch('/api/communities/' + id + '/channels', {
      headers: { Authorization: 'Bearer ' + document.querySelector('parley-app').api.token } })).status, communityId);
    if (st !== 404) fail(`a pending member got ${st} for the channels`);
  });

  await stage('ann approves the request live in her page', async () => {
    await ann.page.waitForSelector('.join-request >> text=Bob');
    await shot(ann, '02-request');
    await axe(ann, 'request');
    await ann.page.click('.join-request button:has-text("Approve")');
    await ann.page.waitForSelector('.join-requests >> text=No pending requests.');
  });

  await stage('ann posts in general; bob reads it, decrypted in his browser', async () => {
    await bob.page.click(`[data-community="${communityId}"] button:has-text("Open")`);
    await bob.page.waitForSelector('#conv-title >> text=Canary club');
    await openChannel(ann, 'general');
    await post(ann, texts.general);
    await openChannel(bob, 'general');
    // Bob's key came from ann's client (channel_key_needed after the approval).
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.general}`);
    await bob.page.waitForSelector('#channel-composer:not([disabled])');
    await shot(bob, '03-general');
    await axe(bob, 'channel');
  });

  await stage('bob replies and likes; ann sees both live', async () => {
    await bob.page.hover(`li.msg.in:has-text("${texts.general}")`);
    await bob.page.click(`li.msg.in:has-text("${texts.general}") button[aria-label="Reply"]`);
    await bob.page.waitForSelector('.reply-bar >> text=Replying to');
    await post(bob, texts.reply);
    await ann.page.waitForSelector(`li.msg.in:has-text("${texts.reply}") blockquote >> text=${texts.general}`);
    // Bob likes ann's message: her page shows the reaction live.
    await bob.page.click(`li.msg.in:has-text("${texts.general}") button[aria-label="Like"]`);
    await bob.page.waitForSelector(`li.msg.in:has-text("${texts.general}") button[aria-label="Like"][aria-pressed="true"]`);
    await ann.page.waitForSelector(`li.msg.out:has-text("${texts.general}") .reactions`);
    // Bob is no admin: no pin buttons for him.
    if (await bob.page.$('button[aria-label="Pin"]')) fail('a member sees pin buttons');
  });

  await stage('ann pins her message; it is in both Pinned lists', async () => {
    await ann.page.click(`li.msg.out:has-text("${texts.general}") button[aria-label="Pin"]`);
    await ann.page.waitForSelector('.pinned summary >> text=Pinned (1)');
    await bob.page.waitForSelector('.pinned summary >> text=Pinned (1)');
    await bob.page.click('.pinned summary');
    await bob.page.waitForSelector(`.pinned-list >> text=${texts.general}`);
    await ann.page.click('.pinned summary');
    await ann.page.waitForSelector(`.pinned-list >> text=${texts.general}`);
    await shot(bob, '04-pinned');
    await axe(bob, 'pinned');
    // Unpinned and pinned again: both pages follow live.
    await ann.page.click(`li.msg.out:has-text("${texts.general}") button[aria-label="Unpin"]`);
    await bob.page.waitForSelector('.pinned summary >> text=Pinned (0)');
    await ann.page.click(`li.msg.out:has-text("${texts.general}") button[aria-label="Pin"]`);
    await bob.page.waitForSelector('.pinned summary >> text=Pinned (1)');
    await bob.page.waitForSelector(`li.msg.in:has-text("${texts.general}") [aria-label="Pinned"]`);
  });

  await stage('a channel for every member of the private community: the key is wrapped for bob at creation', async () => {
    await backToCommunity(ann);
    // ann's page stops listening, so bob's key can only be the one her
    // client wrapped from the members list when it created the channel.
    await ann.page.evaluate(() => document.querySelector('parley-app').live.stop());
    await newChannel(ann, 'all-hands', 'text', [], true);
    await post(ann, texts.all);
    await backToCommunity(bob);
    await openChannel(bob, 'all-hands');
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.all}`);
    await bob.page.waitForSelector('#channel-composer:not([disabled])');
    await ann.page.reload();
    await ann.page.waitForSelector(`li.msg.out >> text=${texts.all}`);
  });

  await stage('a private channel bob is added to while no admin is online: he waits, then gets the key', async () => {
    await backToCommunity(ann);
    await newChannel(ann, 'secret', 'text', []);
    await post(ann, texts.secret);
    // ann's page stops listening: channel_key_needed waits in her sync feed.
    await ann.page.evaluate(() => document.querySelector('parley-app').live.stop());
    await ann.page.click('button.add-reader');
    await ann.page.fill('#reader-name', names.bob);
    await ann.page.click('dialog button:has-text("Add")');
    await ann.page.waitForSelector('dialog', { state: 'detached' });
    await backToCommunity(bob);
    await openChannel(bob, 'secret');
    await bob.page.waitForSelector('li.notice >> text=Waiting for an admin to share the key');
    if (!(await bob.page.isDisabled('#channel-composer'))) fail('bob can type in a channel whose key he lacks');
    await shot(bob, '05-waiting');
    await axe(bob, 'waiting');
    // ann comes back: her client catches up and answers; bob's page reads.
    await ann.page.reload();
    await ann.page.waitForSelector(`li.msg.out >> text=${texts.secret}`);
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.secret}`);
    await bob.page.waitForSelector('#channel-composer:not([disabled])');
  });

  await stage('both see the member list on the community page', async () => {
    await backToCommunity(ann);
    await ann.page.waitForSelector('.community-members li:has-text("Bob")');
    await ann.page.waitForSelector('.community-members li:has-text("Ann") >> text=owner');
    await backToCommunity(bob);
    await bob.page.waitForSelector('.community-members li:has-text("Ann")');
    await bob.page.waitForSelector('.community-members li:has-text("Bob")');
  });

  await stage('a removed reader: ann\'s client rotates the key; bob reads old and new, carl gets 404', async () => {
    carl = await newUser('carl');
    await register(carl, names.carl, 'Carl');
    await carl.page.click('button[aria-label="Communities"]');
    await carl.page.fill('#invite-code', communityId);
    await carl.page.click('button:has-text("Ask to join")');
    await carl.page.waitForSelector(`[data-community="${communityId}"] >> text=Request sent`);
    await ann.page.click('.join-request:has-text("Carl") button:has-text("Approve")');
    await ann.page.waitForSelector('.join-requests >> text=No pending requests.');
    await newChannel(ann, 'inner', 'text', [names.bob, names.carl]);
    const inner = new URL(ann.page.url()).pathname.split('/').pop();
    await post(ann, texts.before);
    await openChannel(bob, 'inner');
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.before}`);
    await carl.page.click(`[data-community="${communityId}"] button:has-text("Open")`);
    await openChannel(carl, 'inner');
    await carl.page.waitForSelector(`li.msg.in >> text=${texts.before}`);
    const kidIn = (needle) => {
      const s = sent.find((x) => x.who === 'ann' && x.url === '/api/channel-messages/send' && x.body.includes(inner) && x.body.includes(needle));
      return s ? JSON.parse(JSON.parse(s.body).content).kid : undefined;
    };
    const oldKid = kidIn('"content"');
    if (!oldKid) fail('the message before the rotation names no key id');
    const keyId = () => ann.page.evaluate(async (id) => {
      const c = document.querySelector('parley-app').communities;
      const k = c.keys.get(id);
      return k ? c.kidOf(k) : '';
    }, inner);
    if (await keyId() !== oldKid) fail('ann\'s client holds another key than it sent with');
    // ann removes carl from the channel: the server asks the admins to rotate.
    await ann.page.click('button.remove-reader');
    await ann.page.fill('#reader-name', names.carl);
    await ann.page.click('dialog button:has-text("Remove")');
    await ann.page.waitForSelector('dialog', { state: 'detached' });
    await ann.page.waitForFunction(([id, old]) => {
      const c = document.querySelector('parley-app').communities;
      const k = c.keys.get(id);
      const kid = k && c.kids.get(k);
      return !!kid && kid !== old;
    }, [inner, oldKid], { polling: 200 }).catch(() => fail('ann\'s client did not rotate the key of the channel'));
    const sendsBefore = sent.length;
    await post(ann, texts.after);
    const newKid = sent.slice(sendsBefore).filter((x) => x.url === '/api/channel-messages/send').map((x) => JSON.parse(JSON.parse(x.body).content).kid)[0];
    if (!newKid || newKid === oldKid) fail(`the message after the rotation names key ${newKid}, the old one is ${oldKid}`);
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.after}`);
    // Carl reads nothing of the channel any more.
    const st = await carl.page.evaluate(async (id) => {
      const h = { headers: { Authorization: 'Bearer ' + document.querySelector('parley-app').api.token } };
      return [(await fetch('/api/channel-messages/' + id + '?limit=10', h)).status, (await fetch('/api/channels/' + id + '/key', h)).status];
    }, inner);
    if (st[0] !== 404 || st[1] !== 404) fail(`carl, removed, got ${st} for the messages and the key`);
    // Bob reloads: the old message decrypts with the old key his client kept, the new one with the new key.
    await bob.page.reload();
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.after}`);
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.before}`);
    if (await bob.page.$('li.msg.in >> text=cannot be decrypted')) fail('bob has an undecryptable message after the rotation');
    await shot(bob, '05b-rotated');
    await carl.context.close();
    carl = undefined;
  });

  await stage('an announcement channel has no composer for bob', async () => {
    await backToCommunity(ann);
    await newChannel(ann, 'news', 'announcement', [names.bob]);
    await post(ann, texts.news);
    await backToCommunity(bob);
    await openChannel(bob, 'news');
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.news}`);
    await bob.page.waitForSelector('.composer-note >> text=Only admins can post in this announcement channel.');
    if (await bob.page.$('#channel-composer')) fail('bob has a composer in an announcement channel');
    await shot(bob, '06-announcement');
    await axe(bob, 'announcement');
    // On a phone's width the channel has the whole screen and its way back.
    await bob.page.setViewportSize({ width: 390, height: 844 });
    if (!(await bob.page.isVisible('button[aria-label="Back to the community"]'))) fail('no way back from a channel on a phone');
    if (await bob.page.isVisible('#chat-list')) fail('the chat list covers the channel on a phone');
    await shot(bob, '07-phone');
    await axe(bob, 'announcement-phone');
    await bob.page.setViewportSize({ width: 1280, height: 800 });
    if (!(await ann.page.$('#channel-composer'))) fail('ann, an admin, has no composer in the announcement channel');
  });

  await stage('a reload opens the channel from its address; the key comes back from the server', async () => {
    const path = new URL(bob.page.url()).pathname;
    if (!path.startsWith('/communities/' + communityId + '/channels/')) fail(`bob's address is ${path}`);
    await bob.page.reload();
    await bob.page.waitForSelector(`li.msg.in >> text=${texts.news}`);
  });

  await stage('ann deletes the community; bob\'s open page leaves it', async () => {
    await backToCommunity(bob);
    await backToCommunity(ann);
    await ann.page.click('button:has-text("Delete community")');
    await ann.page.waitForSelector('#conv-title >> text=Communities');
    await bob.page.waitForSelector('text=Canary club was deleted.');
    await bob.page.waitForSelector('text=You are in no community yet.');
  });

  await stage('a public community: joined at once, read with the community key', async () => {
    await bob.page.click('button:has-text("New community")');
    await bob.page.fill('#community-name', 'Open house ' + suffix);
    await bob.page.uncheck('#community-private');
    await bob.page.click('button:has-text("Create community")');
    await bob.page.waitForSelector('#conv-title >> text=Open house');
    if (await bob.page.$('#invite-show')) fail('a public community shows an invite code');
    await openChannel(bob, 'general');
    await post(bob, texts.open);
    await ann.page.fill('#community-search', 'Open house ' + suffix);
    await ann.page.click('form[role=search] button');
    await ann.page.click('.community-list button:has-text("Join")');
    await ann.page.waitForSelector('#conv-title >> text=Open house');
    await openChannel(ann, 'general');
    await ann.page.waitForSelector(`li.msg.in >> text=${texts.open}`);
    await axe(ann, 'public-channel');
  });

  await stage('ann leaves the public community; bob\'s next request is rejected', async () => {
    await ann.page.click('button[aria-label="Back to the community"]');
    await ann.page.click('button:has-text("Leave community")');
    await ann.page.waitForSelector('#conv-title >> text=Communities');
    await ann.page.waitForSelector('text=You are in no community yet.');
    await ann.page.click('button:has-text("New community")');
    await ann.page.fill('#community-name', 'Closed door');
    await ann.page.click('button:has-text("Create community")');
    const second = await ann.page.inputValue('#invite-show');
    await bob.page.click('button[aria-label="Communities"]');
    await bob.page.fill('#invite-code', second);
    await bob.page.click('button:has-text("Ask to join")');
    await bob.page.waitForSelector(`[data-community="${second}"] >> text=Request sent`);
    await ann.page.click('.join-request button:has-text("Reject")');
    await bob.page.waitForSelector('text=Your request to join was declined.');
    await bob.page.waitForSelector(`[data-community="${second}"]`, { state: 'detached' });
  });

  await stage('the canary never left the browsers in clear', async () => {
    const withCanary = sent.filter((s) => s.body.includes(canary));
    if (withCanary.length) fail(`plaintext canary sent: ${withCanary.map((s) => `${s.who} ${s.url}`).join(', ')}`);
    const sends = sent.filter((s) => s.url === '/api/channel-messages/send' && s.body.includes('"content"'));
    if (sends.length < 5) fail(`captured only ${sends.length} channel message sends: the capture does not work`);
    // ann's client wrapped keys: general at creation, and for bob on the
    // server's channel_key_needed (general after the approval, secret after the add).
    const keyPosts = sent.filter((s) => s.who === 'ann' && s.url === '/api/channels/keys');
    if (keyPosts.length < 3) fail(`ann's client posted ${keyPosts.length} channel keys, want at least 3`);
    if (problems.length) fail(problems.join('\n'));
  });
} catch (e) {
  console.error(`FAIL at "${step()}": ${e.message}`);
  for (const u of [ann, bob, carl]) if (u) await u.page.screenshot({ path: join(artifacts, `communities-failed-${u.label}.png`) }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify({ totalMs: Date.now() - started, requestsCaptured: sent.length, timings }));
