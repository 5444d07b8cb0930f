// The web client's statuses in a real browser: Debian's Chromium (never a
// downloaded one) driven by playwright-core against a running Parley
// server. Run by web/browser_statuses_test.go:
//   node statuses.mjs BASE_URL ARTIFACTS_DIR CANARY
// It exits non-zero with the failed step on stderr.
//
// Three users: ann adds bob and carol as contacts (what "all" means for a
// status) and posts a text status with the canary in it; bob sees ann's
// ring unviewed, opens it and reads the decrypted text; ann's viewers list
// shows bob only, then carol too, live, when carol opens it. A photo
// status for all her contacts except carol reaches bob (decrypted), not
// carol; ann deletes it. A video status plays for bob; a status shared only
// with carol reaches her and not bob; bob's viewer goes through ann's
// statuses by itself. Neither the canary nor the photo's bytes are in
// any request body or socket frame, and axe-core finds no serious or
// critical violation on the strip, the composer or the viewer.
import { T, launch, fail, steps, axeScan, registerIn, until } from './harness.mjs';
import { readFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, artifacts, canary] = process.argv.slice(2);
if (!base || !artifacts || !canary) {
  console.error('usage: node statuses.mjs BASE_URL ARTIFACTS_DIR CANARY');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
// A real PNG of the client's own, so no binary is committed for the test.
const photo = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'icon-192.png'));
const origin = new URL(base).origin;

const started = Date.now();
const { timings, step, run: stage } = steps();

const browser = await launch();

const problems = [];
/** Every request body and socket frame the pages sent. */
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
  const u = { label, context, page, console: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(`${label}: ${msg.text()}`);
    if (msg.type() === 'error' || msg.type() === 'warning') u.console.push(msg.text()); // printed when a step fails
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error ${err.message}`));
  return u;
}

async function register(u, username, name) {
  await registerIn(u.page, base, username, name);
  u.username = username;
  u.id = await u.page.evaluate(() => /** @type {any} */ (document.querySelector('parley-app')).session.userId);
}

/** Calls the API in the page with its session; answers the HTTP status of an error. */
async function api(u, method, path, body) {
  return u.page.evaluate(async ([m, p, b]) => {
    const app = /** @type {any} */ (document.querySelector('parley-app'));
    try {
      return { ok: true, data: await app.api.call(m, p, b === null ? undefined : b) };
    } catch (e) {
      return { ok: false, status: e.status };
    }
  }, [method, path, body === undefined ? null : body]);
}

async function axe(u, screen) {
  await axeScan(u.page, artifacts, `axe-statuses-${screen}.json`, screen);
}

async function shot(u, name) {
  await u.page.screenshot({ path: join(artifacts, `statuses-${name}.png`) });
}

/** Opens the status viewer from the strip item sel and pauses it at once. */
async function openViewer(u, sel) {
  await u.page.click(sel);
  await u.page.waitForSelector('dialog.status-viewer[open]');
  await u.page.click('#status-pause');
  await u.page.waitForSelector('#status-pause[aria-pressed="true"]');
}

async function closeViewer(u) {
  await u.page.keyboard.press('Escape');
  await u.page.waitForSelector('dialog.status-viewer', { state: 'detached' });
}

const suffix = Date.now().toString(36).slice(-5);
const text = `Sunny at the lake ${canary}`;
const caption = `The lake ${canary} at noon`;
let ann, bob, carol;
let statusId = '';
try {
  await stage('register three users; ann adds bob and carol as contacts', async () => {
    ann = await newUser('ann');
    bob = await newUser('bob');
    carol = await newUser('carol');
    await register(ann, 'ann' + suffix, 'Ann');
    await register(bob, 'bob' + suffix, 'Bob');
    await register(carol, 'carol' + suffix, 'Carol');
    for (const peer of [bob, carol]) {
      await ann.page.fill('#search', peer.username.slice(0, 7));
      await ann.page.click(`[data-user="${peer.username}"]`);
      await ann.page.waitForSelector('#composer');
    }
    await until('ann\'s two contacts', async () => {
      const r = await api(ann, 'GET', '/api/contacts');
      return r.ok && r.data.length === 2;
    });
    await ann.page.waitForSelector('#my-status[data-count="0"]');
    await axe(ann, 'strip-empty');
  });

  await stage('ann posts an encrypted text status to all her contacts', async () => {
    await ann.page.click('#add-status');
    await ann.page.waitForSelector('#status-form >> text=My contacts (2)');
    await ann.page.fill('#status-text', text);
    await ann.page.selectOption('#status-colour', '#1f4e79');
    await ann.page.selectOption('#status-font', 'serif');
    await ann.page.waitForSelector(`#status-preview.font-serif >> text=${text}`);
    await shot(ann, '01-compose');
    await axe(ann, 'compose');
    await ann.page.click('#post-status');
    await ann.page.waitForSelector('#my-status[data-count="1"]');
    const create = sent.find((s) => s.url === '/api/statuses/create');
    if (!create) fail('no POST /api/statuses/create was sent');
    const body = JSON.parse(create.body);
    const keys = Object.keys(body.encryptedKeys || {}).sort();
    const want = [ann.id, bob.id, carol.id].sort();
    if (keys.join() !== want.join()) fail(`encryptedKeys for ${keys}, want ann, bob and carol ${want}`);
    if (body.type !== 'text' || body.visibleTo !== 'all' || body.backgroundColor !== '#1f4e79' || body.fontStyle !== 'serif') {
      fail(`create body fields ${body.type} ${body.visibleTo} ${body.backgroundColor} ${body.fontStyle}`);
    }
    const env = JSON.parse(body.content);
    if (!env.message || !env.iv) fail('content is not the encrypted envelope');
    // The key wrapped for bob is a map of his devices' wraps, not the key itself.
    const bobKeys = JSON.parse(body.encryptedKeys[bob.id]);
    if (Object.keys(bobKeys).length !== 1 || !Object.keys(bobKeys)[0].startsWith('web_')) fail(`bob's key entry ${Object.keys(bobKeys)}`);
    statusId = (await api(ann, 'GET', '/api/statuses/user/' + ann.id)).data[0].statusId;
  });

  await stage('bob sees ann\'s ring unviewed, opens it and reads the decrypted text', async () => {
    const ring = `#status-strip [data-status-user="${ann.id}"]`;
    await bob.page.waitForSelector(`${ring}[data-unviewed="true"] .status-ring.unviewed`);
    await shot(bob, '02-strip-unviewed');
    await axe(bob, 'strip');
    await bob.page.emulateMedia({ colorScheme: 'dark' });
    await axe(bob, 'strip-dark');
    await bob.page.emulateMedia({ colorScheme: 'light' });
    await openViewer(bob, ring);
    const shown = bob.page.locator(`.status-big[data-status="${statusId}"]`);
    await shown.waitFor();
    if ((await shown.textContent()) !== text) fail(`bob reads ${await shown.textContent()}`);
    const look = await shown.evaluate((n) => ({ bg: getComputedStyle(n).backgroundColor, serif: n.classList.contains('font-serif') }));
    if (look.bg !== 'rgb(31, 78, 121)' || !look.serif) fail(`text status drawn with ${JSON.stringify(look)}`);
    if (await bob.page.locator('#status-views, #status-delete').count()) fail('a viewer is offered the owner\'s views or delete');
    await shot(bob, '03-viewer');
    await axe(bob, 'viewer');
    await closeViewer(bob);
    await bob.page.waitForSelector(`${ring}[data-unviewed="false"] .status-ring.viewed`);
  });

  await stage('ann\'s viewers list shows bob only, then carol too, live', async () => {
    await openViewer(ann, '#my-status');
    await ann.page.waitForSelector(`.status-big[data-status="${statusId}"] >> text=${text}`);
    await ann.page.click('#status-views');
    await ann.page.waitForSelector(`#status-viewers [data-viewer="${bob.username}"]`);
    const first = await ann.page.$$eval('#status-viewers [data-viewer]', (ns) => ns.map((n) => n.getAttribute('data-viewer')));
    if (first.join() !== bob.username) fail(`viewers ${first}, want only ${bob.username}`);
    await ann.page.waitForSelector('#status-views >> text=1 view');
    await axe(ann, 'viewers');
    // Carol opens it while ann's list is open: status_viewed updates it.
    await openViewer(carol, `#status-strip [data-status-user="${ann.id}"]`);
    await carol.page.waitForSelector(`.status-big[data-status="${statusId}"] >> text=${text}`);
    await closeViewer(carol);
    await ann.page.waitForSelector(`#status-viewers [data-viewer="${carol.username}"]`);
    const both = await ann.page.$$eval('#status-viewers [data-viewer]', (ns) => ns.map((n) => n.getAttribute('data-viewer')));
    if (both.join() !== [bob.username, carol.username].join()) fail(`viewers ${both}, want bob then carol`);
    await ann.page.waitForSelector('#status-views >> text=2 views');
    await shot(ann, '04-viewers');
    await closeViewer(ann);
  });

  await stage('a photo status for all except carol reaches bob, not carol; ann deletes it', async () => {
    await ann.page.click('#add-status');
    await ann.page.check('input[name=kind][value=media]');
    await ann.page.setInputFiles('#status-file', { name: 'lake.png', mimeType: 'image/png', buffer: photo });
    await ann.page.fill('#status-text', caption);
    await ann.page.check('input[name=visibleTo][value=except]');
    await ann.page.check(`input[data-contact="${carol.username}"]`);
    await ann.page.click('#post-status');
    await ann.page.waitForSelector('#my-status[data-count="2"]');
    const mine = (await api(ann, 'GET', '/api/statuses/user/' + ann.id)).data;
    const pic = mine.find((s) => s.type === 'image');
    if (!pic || pic.visibleTo !== 'except' || Object.keys(pic.encryptedKeys).sort().join() !== [ann.id, bob.id].sort().join()) {
      fail(`photo status ${JSON.stringify(pic && { visibleTo: pic.visibleTo, keys: Object.keys(pic.encryptedKeys) })}`);
    }
    // What the server stored and serves is ciphertext: the photo's length plus the GCM tag, not a PNG.
    const stored = await ann.page.evaluate(async (id) => {
      const b = new Uint8Array(await /** @type {any} */ (document.querySelector('parley-app')).api.bytes('/api/media/' + id + '/content'));
      return { length: b.length, head: Array.from(b.subarray(0, 8)) };
    }, pic.mediaId);
    if (stored.length !== photo.length + 16 || Buffer.from(stored.head).equals(photo.subarray(0, 8))) fail(`stored photo ${JSON.stringify(stored)}`);
    const ring = `#status-strip [data-status-user="${ann.id}"]`;
    await bob.page.waitForSelector(`${ring}[data-unviewed="true"][data-count="2"]`);
    await openViewer(bob, ring);
    const img = bob.page.locator(`.status-media img[data-status="${pic.statusId}"]`);
    await img.waitFor();
    await until('the photo decoded', () => img.evaluate((n) => /** @type {HTMLImageElement} */ (n).complete && /** @type {HTMLImageElement} */ (n).naturalWidth === 192));
    const cap = await bob.page.textContent('.status-caption');
    if (cap !== caption) fail(`caption ${cap}`);
    await shot(bob, '05-photo');
    await axe(bob, 'viewer-photo');
    // The previous one (the text) with the left arrow, then back.
    await bob.page.keyboard.press('ArrowLeft');
    await bob.page.waitForSelector(`.status-big[data-status="${statusId}"]`);
    await closeViewer(bob);
    // Carol, excluded, is not sent it.
    await carol.page.reload();
    await carol.page.waitForSelector(`#status-strip [data-status-user="${ann.id}"][data-count="1"]`);
    const r = await api(carol, 'GET', '/api/statuses/' + pic.statusId);
    if (r.ok || r.status !== 404) fail(`carol reads the photo status: ${r.ok ? 'ok' : r.status}`);
    // Ann deletes it from her viewer.
    await openViewer(ann, '#my-status');
    await ann.page.waitForSelector(`.status-big[data-status="${statusId}"]`); // the oldest first
    await ann.page.keyboard.press('ArrowRight');
    await ann.page.waitForSelector(`.status-media img[data-status="${pic.statusId}"]`);
    await ann.page.click('#status-delete');
    await ann.page.click('#status-delete-yes');
    await ann.page.waitForSelector(`.status-big[data-status="${statusId}"]`);
    await closeViewer(ann);
    await ann.page.waitForSelector('#my-status[data-count="1"]');
    const gone = await api(bob, 'GET', '/api/statuses/' + pic.statusId);
    if (gone.ok || gone.status !== 404) fail(`bob still reads the deleted status: ${gone.ok ? 'ok' : gone.status}`);
  });

  await stage('a video status plays for bob', async () => {
    // A one-second WebM made in ann's page (canvas + MediaRecorder), so no binary is committed.
    const clip = Buffer.from(await ann.page.evaluate(async () => {
      const c = document.createElement('canvas');
      c.width = 160;
      c.height = 120;
      const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
      const rec = new MediaRecorder(c.captureStream(15), { mimeType: 'video/webm' });
      const chunks = [];
      rec.ondataavailable = (e) => chunks.push(e.data);
      const stopped = new Promise((r) => { rec.onstop = r; });
      let f = 0;
      const paint = () => { ctx.fillStyle = `hsl(${(f++ * 24) % 360} 80% 45%)`; ctx.fillRect(0, 0, 160, 120); };
      paint();
      rec.start(100);
      const timer = setInterval(paint, 66);
      await new Promise((r) => setTimeout(r, 1000)); // the clip's length
      rec.stop();
      clearInterval(timer);
      await stopped;
      const b = new Uint8Array(await new Blob(chunks).arrayBuffer());
      let bin = '';
      for (const x of b) bin += String.fromCharCode(x);
      return btoa(bin);
    }), 'base64');
    if (clip.length < 100) fail(`a ${clip.length}-byte clip was recorded`);
    await ann.page.click('#add-status');
    await ann.page.check('input[name=kind][value=media]');
    await ann.page.setInputFiles('#status-file', { name: 'clip.webm', mimeType: 'video/webm', buffer: clip });
    await ann.page.click('#post-status');
    await ann.page.waitForSelector('#my-status[data-count="2"]');
    const ring = `#status-strip [data-status-user="${ann.id}"]`;
    await bob.page.waitForSelector(`${ring}[data-unviewed="true"][data-count="2"]`);
    await openViewer(bob, ring);
    const video = bob.page.locator('.status-media video[data-status]');
    await video.waitFor();
    await until('the video decoded', () => video.evaluate((n) => /** @type {HTMLVideoElement} */ (n).videoWidth === 160)).catch(async (e) => {
      fail(`${e.message}: ${await video.evaluate((n) => { const x = /** @type {HTMLVideoElement} */ (n); return x.error ? x.error.message : `readyState ${x.readyState}`; })}`);
    });
    await shot(bob, '06-video');
    await closeViewer(bob);
  });

  await stage('a status shared only with carol reaches carol, not bob', async () => {
    await ann.page.click('#add-status');
    await ann.page.fill('#status-text', `Only for carol ${canary}`);
    await ann.page.check('input[name=visibleTo][value=specific]');
    await ann.page.check(`input[data-contact="${carol.username}"]`);
    await ann.page.click('#post-status');
    await ann.page.waitForSelector('#my-status[data-count="3"]');
    const mine = (await api(ann, 'GET', '/api/statuses/user/' + ann.id)).data;
    const only = mine.find((s) => s.visibleTo === 'specific');
    if (!only || Object.keys(only.encryptedKeys).sort().join() !== [ann.id, carol.id].sort().join()) fail('the specific status is not for ann and carol only');
    // Carol's strip: the text status (viewed), the video and this one.
    await carol.page.waitForSelector(`#status-strip [data-status-user="${ann.id}"][data-unviewed="true"][data-count="3"]`);
    const carolFeed = (await api(carol, 'GET', '/api/statuses/feed')).data.find((f) => f.userId === ann.id);
    if (!carolFeed || !carolFeed.statuses.some((x) => x.statusId === only.statusId)) fail('carol\'s feed lacks the status shared with her');
    const r = await api(bob, 'GET', '/api/statuses/' + only.statusId);
    if (r.ok || r.status !== 404) fail(`bob reads carol's status: ${r.ok ? 'ok' : r.status}`);
    const feed = (await api(bob, 'GET', '/api/statuses/feed')).data;
    const ofAnn = feed.find((f) => f.userId === ann.id);
    if (!ofAnn || ofAnn.statuses.length !== 2) fail(`bob's feed has ${ofAnn ? ofAnn.statuses.length : 0} of ann's statuses, want 2`);
  });

  await stage('the viewer advances by itself to its end', async () => {
    // Bob's viewer, not paused: the text status shows, then the video plays to its
    // end, then the viewer closes.
    await bob.page.click(`#status-strip [data-status-user="${ann.id}"]`);
    await bob.page.waitForSelector(`.status-big[data-status="${statusId}"]`);
    await bob.page.waitForSelector('dialog.status-viewer', { state: 'detached' });
  });

  await stage('no plaintext left the browsers', async () => {
    const withCanary = sent.filter((s) => s.body.includes(canary));
    if (withCanary.length) fail(`plaintext canary sent: ${withCanary.map((s) => `${s.who} ${s.url}`).join(', ')}`);
    // A piece of the photo (past its PNG header) is in no body. (The DevTools
    // protocol does not show a multipart body made of blobs: the upload is
    // checked by what the server stored, above, and by the Go test.)
    const piece = photo.subarray(64, 160).toString('latin1');
    if (sent.some((s) => s.body.includes(piece)) || sent.some((s) => s.body.includes('\x89PNG'))) fail('the photo was sent unencrypted');
    if (problems.length) fail(problems.join('\n'));
  });
} catch (e) {
  console.error(`FAIL at "${step()}": ${e.message}`);
  for (const u of [ann, bob, carol]) {
    if (!u) continue;
    await u.page.screenshot({ path: join(artifacts, `statuses-failed-${u.label}.png`) }).catch(() => {});
    const strip = await u.page.evaluate(() => { const n = document.querySelector('#status-strip'); return n ? n.outerHTML : 'no strip'; }).catch(() => '');
    console.error(`${u.label}: console ${JSON.stringify(u.console)}\n${u.label}: ${strip}`);
  }
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify({ totalMs: Date.now() - started, timings }));
