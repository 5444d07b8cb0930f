// The web client's calls, notifications, PWA and admin suite: Debian's
// Chromium (never a downloaded one) with fake camera and microphone,
// driven by playwright-core against a running Parley server whose
// embedded TURN server listens on loopback. Run by web/browser_calls_test.go:
//   node calls.mjs BASE_URL ARTIFACTS_DIR CANARY PUSH_SERVICE_URL ADMIN_USERNAME SEEDED_JSON
// It exits non-zero with the failed step on stderr.
//
// Web Push: a browser subscribes through its vendor's push service (for
// Chromium, Google's FCM), which a test machine cannot reach. The page's
// PushManager is replaced by one that makes a real subscription's keys
// (ECDH P-256 and a 16-byte auth secret) and names the test's own push
// service as the endpoint; the server encrypts and signs real pushes to
// it, this script decrypts them (RFC 8291) with those keys and hands the
// payload to the service worker the way the push service would, through
// the DevTools protocol (ServiceWorker.deliverPushMessage).
import { T, launch, fail, steps, axeScan, registerIn, until } from './harness.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';

const [base, artifacts, canary, pushBase, adminName, seededJSON] = process.argv.slice(2);
if (!base || !artifacts || !canary || !pushBase || !adminName || !seededJSON) {
  console.error('usage: node calls.mjs BASE_URL ARTIFACTS_DIR CANARY PUSH_SERVICE_URL ADMIN_USERNAME SEEDED_JSON');
  process.exit(2);
}
/** @type {Record<string, [number, number]>} date -> [messages, active users] */
const seeded = JSON.parse(seededJSON);
mkdirSync(artifacts, { recursive: true });
const origin = new URL(base).origin;

const started = Date.now();
/** What the scenario measured (milliseconds), printed at the end for BENCHMARKS.md. */
const measured = {};
const { timings, step, run: stage } = steps();

// Chromium's fake camera (a test pattern) and microphone (a beep), allowed without asking.
const browser = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required']);

const problems = [];
/** Every request body and socket frame the pages sent, to look for the canary. */
const sent = [];

/**
 * Stands in for PushManager (see the top of this file). Runs in the page.
 * @param {string} endpointBase
 */
function fakePushManager(endpointBase) {
  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  let sub = null;
  PushManager.prototype.getSubscription = async function () { return sub; };
  PushManager.prototype.subscribe = async function (opts) {
    const key = opts && opts.applicationServerKey;
    if (!key || key.byteLength !== 65) throw new DOMException('applicationServerKey must be a P-256 public key', 'InvalidAccessError');
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
    const pub = await crypto.subtle.exportKey('raw', pair.publicKey);
    const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
    const auth = crypto.getRandomValues(new Uint8Array(16));
    const endpoint = endpointBase + '/push/' + crypto.randomUUID();
    const json = { endpoint, expirationTime: null, keys: { p256dh: b64u(pub), auth: b64u(auth) } };
    const serverKey = new Uint8Array(key).slice().buffer;
    sub = { endpoint, expirationTime: null, options: { applicationServerKey: serverKey, userVisibleOnly: !!opts.userVisibleOnly },
      toJSON: () => json, getKey: (n) => (n === 'p256dh' ? pub : auth.buffer), unsubscribe: async () => { sub = null; return true; } };
    // @ts-ignore: read by the scenario
    window.__push = { endpoint, jwk, p256dh: json.keys.p256dh, auth: json.keys.auth, serverKey: b64u(serverKey) };
    return sub;
  };
}

async function newUser(label, { notifications = true } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Granting some permissions refuses all the others (DevTools' grantPermissions):
  // a user who has not decided about notifications is granted nothing.
  if (notifications) await context.grantPermissions(['camera', 'microphone', 'notifications'], { origin });
  await context.addInitScript(fakePushManager, pushBase);
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
    if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(`${label}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error ${err.message}`));
  return { label, context, page };
}

async function register(u, username, name) {
  await registerIn(u.page, base, username, name);
  u.username = username;
}

async function login(u, username) {
  await u.page.goto(base + '/login');
  await u.page.fill('input[name=username]', username);
  await u.page.fill('input[name=password]', 'correct horse ' + username);
  await u.page.click('button[type=submit]');
  await u.page.waitForSelector('#chat-list');
}

async function openChatWith(u, username) {
  await u.page.fill('#search', username.slice(0, 6));
  await u.page.click(`[data-user="${username}"]`);
  await u.page.waitForSelector('#composer');
}

async function axe(u, screen) {
  await axeScan(u.page, artifacts, `axe-calls-${screen}.json`, screen);
}

async function shot(u, name) {
  await u.page.screenshot({ path: join(artifacts, `calls-${name}.png`) });
}

/** The call's WebRTC facts, from the page's RTCPeerConnection. */
async function callStats(u) {
  return u.page.evaluate(async () => {
    const app = /** @type {any} */ (document.querySelector('parley-app'));
    const call = app.calls.active;
    if (!call || !call.pc) return null;
    const stats = await call.pc.getStats();
    let video = null;
    let pair = null;
    const byId = new Map();
    stats.forEach((s) => byId.set(s.id, s));
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') video = { framesDecoded: s.framesDecoded || 0, framesReceived: s.framesReceived || 0 };
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    return { state: call.pc.connectionState, policy: call.pc.getConfiguration().iceTransportPolicy, video,
      local: local ? local.candidateType : '', remote: remote ? remote.candidateType : '' };
  });
}

/** RFC 8291 (aes128gcm) decryption of a push body with the subscription's keys. */
function decryptPush(body, sub) {
  const salt = body.subarray(0, 16);
  const idlen = body[20];
  const keyid = body.subarray(21, 21 + idlen); // the server's ephemeral public key
  const ct = body.subarray(21 + idlen);
  const b64u = (b) => Buffer.from(b).toString('base64url');
  const uaPrivate = createPrivateKey({ key: sub.jwk, format: 'jwk' });
  const asPublic = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(keyid.subarray(1, 33)), y: b64u(keyid.subarray(33, 65)) }, format: 'jwk' });
  const ecdh = diffieHellman({ privateKey: uaPrivate, publicKey: asPublic });
  const hmac = (k, d) => createHmac('sha256', k).update(d).digest();
  const uaPublic = Buffer.from(sub.p256dh, 'base64url');
  const ikm = hmac(hmac(Buffer.from(sub.auth, 'base64url'), ecdh), Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, keyid, Buffer.from([1])]));
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from('Content-Encoding: aes128gcm\0\x01')).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from('Content-Encoding: nonce\0\x01')).subarray(0, 12);
  const d = createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(ct.subarray(ct.length - 16));
  const plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  if (plain[end] !== 2) fail('push record without the last-record delimiter');
  return plain.subarray(0, end).toString('utf8');
}

const suffix = Date.now().toString(36).slice(-5);
const names = { ann: 'ann' + suffix, bob: 'bob' + suffix };
let ann, bob, bob2, boss;
try {
  await stage('register; both choose relayed calls on the Calls page', async () => {
    ann = await newUser('ann');
    bob = await newUser('bob');
    await register(ann, names.ann, 'Ann');
    await register(bob, names.bob, 'Bob');
    for (const u of [ann, bob]) {
      await u.page.click('button[aria-label="Calls"]');
      await u.page.waitForSelector('.call-history >> text=No calls yet.');
      await u.page.check('#relay-calls');
    }
    await axe(ann, 'history-empty');
    // Bob's second device rings too, until bob answers on the first.
    bob2 = await newUser('bob2');
    await login(bob2, names.bob);
    await openChatWith(ann, names.bob);
    await ann.page.fill('#composer', 'call me maybe');
    await ann.page.press('#composer', 'Enter');
    await bob.page.waitForSelector('#chat-list .chat-item >> text=call me maybe');
  });

  await stage('a video call rings on both of bob\'s devices', async () => {
    await ann.page.click('button[aria-label="Video call"]');
    await ann.page.waitForSelector('dialog.call-screen[open] >> text=Ringing…');
    for (const u of [bob, bob2]) {
      await u.page.waitForSelector('dialog.incoming-call[open] >> text=Incoming video call');
      await u.page.waitForSelector('dialog.incoming-call[open] h2 >> text=Ann');
    }
    await shot(bob, '01-incoming');
    await axe(bob, 'incoming');
  });

  await stage('bob answers; his other device stops ringing; both connect through TURN', async () => {
    // The other device says why it stopped ringing (for 2 s), then the screen goes.
    const elsewhere = bob2.page.waitForSelector('dialog.incoming-call[data-ended] >> text=Answered on another device');
    const t0 = Date.now();
    await bob.page.click('dialog.incoming-call button[aria-label="Accept"]');
    await elsewhere;
    await bob2.page.waitForSelector('dialog.incoming-call', { state: 'detached' });
    await Promise.all([ann, bob].map((u) => u.page.waitForSelector('dialog.call-screen[data-state="connected"]')));
    measured.acceptToConnectedMs = Date.now() - t0;
    for (const u of [ann, bob]) {
      const st = await until(`${u.label}: video frames`, async () => {
        const s = await callStats(u);
        return s && s.video && s.video.framesDecoded > 0 && s.video.framesReceived > 0 && s.local ? s : null;
      });
      if (st.state !== 'connected') fail(`${u.label}: connection ${st.state}`);
      if (st.policy !== 'relay') fail(`${u.label}: iceTransportPolicy ${st.policy}, want relay`);
      if (st.local !== 'relay' || st.remote !== 'relay') fail(`${u.label}: candidate pair ${st.local}/${st.remote}, want relay/relay`);
      console.log(`    ${u.label}: ${JSON.stringify(st)}`);
    }
    // The remote video element plays the other side's camera.
    await until('ann: the remote video plays', () => ann.page.evaluate(() => {
      const v = /** @type {HTMLVideoElement | null} */ (document.querySelector('dialog.call-screen .remote-video'));
      return !!v && v.videoWidth > 0 && !v.paused;
    }));
    await shot(ann, '02-in-call');
    await axe(ann, 'in-call');
  });

  await stage('mute and camera off', async () => {
    await ann.page.click('dialog.call-screen button[data-act="mute"]');
    await ann.page.waitForSelector('dialog.call-screen button[data-act="mute"][aria-pressed="true"]');
    await ann.page.click('dialog.call-screen button[data-act="camera"]');
    await ann.page.waitForSelector('dialog.call-screen button[data-act="camera"][aria-pressed="true"]');
    const tracks = await ann.page.evaluate(() => {
      const call = /** @type {any} */ (document.querySelector('parley-app')).calls.active;
      return call.local.getTracks().map((t) => ({ kind: t.kind, enabled: t.enabled }));
    });
    if (tracks.length !== 2 || tracks.some((t) => t.enabled)) fail(`muted tracks still enabled: ${JSON.stringify(tracks)}`);
    if (await ann.page.locator('dialog.call-screen .local-video').isVisible()) fail('the camera preview stays on with the camera off');
    await ann.page.click('dialog.call-screen button[data-act="mute"]');
    await ann.page.waitForSelector('dialog.call-screen button[data-act="mute"][aria-pressed="false"]');
  });

  await stage('hang up ends it on both; the call is in both histories', async () => {
    // Each screen says "Call ended" for 2.5 s: both are watched from before the click.
    const ended = [ann, bob].map((u) => u.page.waitForSelector('dialog.call-screen[data-state="ended"] >> text=Call ended'));
    await ann.page.click('dialog.call-screen button[data-act="hangup"]');
    await Promise.all(ended);
    for (const u of [ann, bob]) {
      await until(`${u.label}: the peer connection closed`, () => u.page.evaluate(() => {
        const app = /** @type {any} */ (document.querySelector('parley-app'));
        return app.calls.active === null;
      }));
      await u.page.waitForSelector('dialog.call-screen', { state: 'detached' });
    }
    await bob.page.click('button[aria-label="Calls"]');
    await bob.page.waitForSelector('.call-row[data-status="ended"] >> text=Incoming video call');
    await ann.page.click('button[aria-label="Calls"]');
    await ann.page.waitForSelector('.call-row[data-status="ended"] >> text=Outgoing video call');
    await shot(ann, '03-history');
    await axe(ann, 'history');
  });

  await stage('a declined voice call, placed from the history', async () => {
    await ann.page.click(`.call-row button[aria-label="Voice call Bob"]`);
    await bob.page.waitForSelector('dialog.incoming-call[open] >> text=Incoming voice call');
    await bob2.page.waitForSelector('dialog.incoming-call[open] >> text=Incoming voice call');
    const declined = ann.page.waitForSelector('dialog.call-screen >> text=Call declined');
    await bob.page.click('dialog.incoming-call button[aria-label="Decline"]');
    await declined;
    await bob2.page.waitForSelector('dialog.incoming-call', { state: 'detached' });
    await ann.page.waitForSelector('.call-row[data-status="rejected"]');
  });

  await stage('PWA: manifest, icons, service worker at /', async () => {
    const cdp = await ann.context.newCDPSession(ann.page);
    const manifest = await cdp.send('Page.getAppManifest');
    if (!manifest.url.endsWith('/static/manifest.webmanifest') || (manifest.errors || []).length) fail(`manifest: ${JSON.stringify(manifest.errors)}`);
    const inst = await cdp.send('Page.getInstallabilityErrors');
    // Playwright's contexts are off the record, which Chromium never
    // installs from; every other check (manifest, icons, worker) counts.
    const errs = (inst.installabilityErrors || []).filter((e) => e.errorId !== 'in-incognito');
    if (errs.length) fail(`not installable: ${JSON.stringify(errs)}`);
    const scope = await ann.page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    if (scope !== base + '/') fail(`service worker scope ${scope}`);
    await cdp.detach();
  });

  let bobSub;
  await stage('web push: subscribed with the server\'s key and registered as a device', async () => {
    bobSub = await until('bob\'s push subscription', () => bob.page.evaluate(() => /** @type {any} */ (window).__push));
    const key = await bob.page.evaluate(() => /** @type {any} */ (document.querySelector('parley-app')).api.get('/api/notifications/vapid-public-key'));
    if (bobSub.serverKey !== key.publicKey) fail('subscribed with another key than the server\'s VAPID key');
    const devices = await until('bob\'s push devices', async () => {
      const list = await bob.page.evaluate(() => /** @type {any} */ (document.querySelector('parley-app')).api.get('/api/notifications/devices'));
      return list.length >= 2 ? list : null; // both of bob's browsers
    });
    if (!devices.every((d) => d.platform === 'webpush')) fail(`devices ${JSON.stringify(devices)}`);
  });

  await stage('a message to offline bob: pushed, shown by the service worker without content', async () => {
    // Bob's browsers go away: his second one closes, his first goes offline.
    const bobId = await bob.page.evaluate(() => /** @type {any} */ (document.querySelector('parley-app')).session.userId);
    await bob2.context.close();
    bob2 = null;
    await bob.context.setOffline(true);
    await ann.page.click('#chat-list .chat-item >> text=Bob');
    // The server says bob is offline once his sockets are gone and the
    // presence grace has passed: then a message to him is pushed.
    await until('bob offline on the server', () => ann.page.evaluate(async (id) => {
      const p = await /** @type {any} */ (document.querySelector('parley-app')).api.get(`/api/users/${id}/presence`);
      return p.online === false;
    }, bobId));
    const secret = `${canary} meet me at noon`;
    await ann.page.fill('#composer', secret);
    const t0 = Date.now();
    await ann.page.press('#composer', 'Enter');
    const path = new URL(bobSub.endpoint).pathname;
    const record = await until('the push at the push service', async () => {
      const list = await (await fetch(pushBase + '/pushes')).json();
      return (list || []).find((p) => p.endpoint === path);
    });
    measured.sendToPushMs = Date.now() - t0;
    await ann.page.waitForSelector(`li.msg.out[data-status="sent"] >> text=${secret}`);
    if (record.encoding !== 'aes128gcm') fail(`push encoding ${record.encoding}`);
    const body = Buffer.from(record.body, 'base64');
    if (body.includes(Buffer.from(canary))) fail('the canary is in the push body');
    const payload = decryptPush(body, bobSub);
    const p = JSON.parse(payload);
    if (payload.includes(canary) || payload.includes('noon')) fail(`message content in the push: ${payload}`);
    if (p.type !== 'message' || p.senderName !== 'Ann' || !p.conversationId || !p.notificationId) fail(`push payload ${payload}`);
    console.log(`    push payload: ${payload}`);

    const cdp = await bob.context.newCDPSession(bob.page);
    const regs = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => regs.push(...e.registrations));
    await cdp.send('ServiceWorker.enable');
    // The newest report of the registration (an earlier one may name a
    // version that is gone). A push handed to a worker that is not
    // running yet can be dropped by DevTools, as a push service would
    // retry, so it is handed again every 5 s until the notification is
    // there (one tag: a repeat replaces it, as the server's own retries do).
    const latest = () => [...regs].reverse().find((r) => r.scopeURL === base + '/' && !r.isDeleted);
    await until('the service worker registration', latest);
    const t1 = Date.now();
    let handed = 0;
    let lastHanded = 0;
    const shown = await until('the notification', async () => {
      if (Date.now() - lastHanded >= 5000) {
        await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: latest().registrationId, data: payload });
        handed++;
        lastHanded = Date.now();
      }
      return bob.page.evaluate(async () => {
        const list = await (await navigator.serviceWorker.ready).getNotifications();
        return list.length ? list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })) : null;
      });
    });
    measured.deliverToNotificationMs = Date.now() - t1;
    if (handed > 1) console.log(`    the push was handed to the worker ${handed} times`);
    console.log(`    notification: ${JSON.stringify(shown)}`);
    const n = shown[0];
    if (n.title !== 'New message from Ann') fail(`notification title ${n.title}`);
    if (JSON.stringify(shown).includes(canary) || JSON.stringify(shown).includes('noon')) fail('message content in the notification');
    if (n.data.url !== '/?chat=' + encodeURIComponent(p.conversationId)) fail(`notification link ${n.data.url}`);
    await cdp.detach();

    // Its link opens the chat, where the message decrypts in the browser.
    await bob.context.setOffline(false);
    await bob.page.goto(base + n.data.url);
    await bob.page.waitForSelector('#conv-title >> text=Ann');
    await bob.page.waitForSelector(`li.msg.in >> text=${secret}`);
    if (!bob.page.url().endsWith('/chat/' + encodeURIComponent(await ann.page.evaluate(() => /** @type {any} */ (document.querySelector('parley-app')).session.userId)))) {
      fail(`the notification's link led to ${bob.page.url()}`);
    }
  });

  await stage('admin dashboard: charts of the seeded days, live node health', async () => {
    boss = await newUser('boss', { notifications: false });
    await register(boss, adminName, 'Boss');
    // Without permission yet, the sidebar offers notifications.
    await boss.page.waitForSelector('.notify-banner >> text=Turn on notifications');
    await axe(boss, 'notify-banner');
    await openChatWith(boss, names.ann);
    await boss.page.fill('#composer', 'stats for today');
    await boss.page.press('#composer', 'Enter');
    await boss.page.waitForSelector('li.msg.out[data-status="delivered"], li.msg.out[data-status="seen"]');
    await boss.page.click('button[aria-label="Admin dashboard"]');
    await boss.page.waitForSelector('svg.chart.messages rect.bar', { state: 'attached' }); // an empty day's bar has no height
    const bars = await boss.page.$$eval('svg.chart.messages rect.bar', (rs) => rs.map((r) => [r.getAttribute('data-date'), Number(r.getAttribute('data-value'))]));
    const points = await boss.page.$$eval('svg.chart.users circle.point', (cs) => cs.map((c) => [c.getAttribute('data-date'), Number(c.getAttribute('data-value'))]));
    if (bars.length !== 30 || points.length !== 30) fail(`${bars.length} bars and ${points.length} points for 30 days`);
    const barOf = new Map(bars);
    const pointOf = new Map(points);
    for (const [date, [msgs, users]] of Object.entries(seeded)) {
      if (barOf.get(date) !== msgs || pointOf.get(date) !== users) fail(`${date}: drawn ${barOf.get(date)}/${pointOf.get(date)}, seeded ${msgs}/${users}`);
    }
    const today = bars[bars.length - 1];
    if (!(today[1] >= 3)) fail(`today's bar ${today[1]}: the scenario's own messages are not counted`);
    const heights = await boss.page.$$eval('svg.chart.messages rect.bar', (rs) => rs.map((r) => Number(r.getAttribute('height'))));
    const maxAt = bars.reduce((m, b, i) => (b[1] > bars[m][1] ? i : m), 0);
    if (Math.max(...heights) !== heights[maxAt] || !(heights[maxAt] > 100)) fail(`bar heights do not follow the values: ${heights}`);
    // Every node's health, read again every 5 s.
    const card = boss.page.locator('.node-card').first();
    await card.waitFor();
    const conns = Number(await card.locator('[data-fact="connections"]').textContent());
    if (!(conns >= 2)) fail(`connections ${conns}: ann's and boss's sockets at least`);
    if (!/^OK, \d/.test(await card.locator('[data-fact="db"]').textContent())) fail('database not shown healthy');
    const note = await boss.page.textContent('.admin section:nth-of-type(2) .fine');
    await until('a live refresh of the node health', async () => (await boss.page.textContent('.admin section:nth-of-type(2) .fine')) !== note, 20_000);
    await shot(boss, '04-admin-dashboard');
    await axe(boss, 'admin');
    await boss.page.emulateMedia({ colorScheme: 'dark' });
    await shot(boss, '05-admin-dark');
    await axe(boss, 'admin-dark');
  });

  await stage('a non-admin is refused', async () => {
    if (await ann.page.locator('button[aria-label="Admin dashboard"]').count()) fail('ann sees the admin button');
    await ann.page.goto(base + '/admin');
    await ann.page.waitForSelector('.refused >> text=Only administrators can see this page.');
    if (await ann.page.locator('svg.chart').count()) fail('charts drawn for a non-admin');
    const statuses = await ann.page.evaluate(async () => {
      const api = /** @type {any} */ (document.querySelector('parley-app')).api;
      const out = [];
      for (const p of ['/api/stats/messages', '/api/system/health']) {
        try {
          await api.get(p);
          out.push(200);
        } catch (e) {
          out.push(e.status);
        }
      }
      return out;
    });
    if (statuses.join() !== '403,403') fail(`non-admin got ${statuses} from the admin routes`);
    await shot(ann, '06-admin-refused');
    await axe(ann, 'admin-refused');
  });

  await stage('no canary, signal or problem left the browsers', async () => {
    const withCanary = sent.filter((s) => s.body.includes(canary));
    if (withCanary.length) fail(`plaintext canary sent: ${withCanary.map((s) => `${s.who} ${s.url}`).join(', ')}`);
    const signals = sent.filter((s) => s.url === '/api/calls/signal');
    if (!signals.some((s) => s.body.includes('"offer"')) || !signals.some((s) => s.body.includes('"answer"'))) fail('no offer or answer was signalled');
    if (problems.length) fail(problems.join('\n'));
  });
} catch (e) {
  console.error(`FAIL at "${step()}": ${e.message}`);
  for (const u of [ann, bob, bob2, boss]) if (u) await u.page.screenshot({ path: join(artifacts, `calls-failed-${u.label}.png`) }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify({ totalMs: Date.now() - started, measured, timings }));
