// The web client's browser suite: real Chromium (Debian's /usr/bin/chromium,
// never a downloaded one) driven by playwright-core against a running
// Parley server. Run by web/browser_test.go:
//   node scenario.mjs BASE_URL ARTIFACTS_DIR CANARY
// It exits non-zero with the failed step on stderr. Every request body and
// every WebSocket frame the pages send is captured, to prove the plaintext
// canary never leaves the browser.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const [base, artifacts, canary, mailDir] = process.argv.slice(2);
if (!base || !artifacts || !canary || !mailDir) {
  console.error('usage: node scenario.mjs BASE_URL ARTIFACTS_DIR CANARY MAIL_DIR');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const T = 45_000; // the longest wait of any one step (a loaded 2-core machine is slow)

const started = Date.now();
const timings = {};
let step = '';
/** @param {string} name @param {() => Promise<void>} fn */
async function stage(name, fn) {
  step = name;
  const t0 = Date.now();
  await fn();
  timings[name] = Date.now() - t0;
  console.log(`ok  ${name} (${timings[name]} ms)`);
}
function fail(msg) { throw new Error(msg); }

const browser = await chromium.launch({
  executablePath: process.env.PARLEY_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});

/** Everything the pages sent: request bodies and socket frames. */
const sent = [];
const problems = [];
const origin = new URL(base).origin;

async function newUser(label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  context.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(origin + '/') && !url.startsWith('blob:') && !url.startsWith('data:')) problems.push(`${label}: third-party request ${url}`);
    const u = new URL(url, origin);
    if (u.searchParams.has('token')) problems.push(`${label}: a token in a URL: ${u.pathname}`);
    const body = req.postDataBuffer();
    if (body) sent.push({ who: label, url: u.pathname, body: body.toString('latin1') });
  });
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => sent.push({ who: label, url: 'ws', body: String(f.payload) }));
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(`${label}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${label}: page error ${err.message}`));
  return { label, context, page };
}

async function register(u, username) {
  await u.page.goto(base + '/register');
  await u.page.fill('input[name=username]', username);
  await u.page.fill('input[name=email]', username + '@example.test');
  await u.page.fill('input[name=name]', username[0].toUpperCase() + username.slice(1, 5));
  await u.page.fill('input[name=password]', 'correct horse ' + username);
  await u.page.click('button[type=submit]');
  await u.page.waitForSelector('#chat-list');
  u.username = username;
}

async function login(u, username, password = 'correct horse ' + username) {
  await u.page.goto(base + '/login');
  await u.page.fill('input[name=username]', username);
  await u.page.fill('input[name=password]', password);
  await u.page.click('button[type=submit]');
  await u.page.waitForSelector('#chat-list');
  u.username = username;
}

async function openChatWith(u, username) {
  await u.page.fill('#search', username.slice(0, 6));
  await u.page.click(`[data-user="${username}"]`);
  await u.page.waitForSelector('#composer');
}

async function openChatNamed(u, title) {
  await u.page.locator('#chat-list .chat-item', { hasText: title }).first().click();
  await u.page.waitForSelector('#composer');
}

async function send(u, text) {
  await u.page.fill('#composer', text);
  await u.page.press('#composer', 'Enter');
}

/** The messages whose text is exactly text. */
function bubble(u, text) {
  const exact = new RegExp('^' + text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$');
  return u.page.locator('li.msg', { has: u.page.locator('.text', { hasText: exact }) });
}

/** Opens a message's action menu and picks an item. */
async function action(u, text, item) {
  await bubble(u, text).locator('button[aria-label="Message actions"]').click();
  await u.page.locator('[role=menuitem]', { hasText: item }).click();
}

async function waitStatus(u, text, status) {
  await u.page.waitForSelector(`li.msg.out[data-status="${status}"] >> text=${text}`);
}

async function axe(u, screen) {
  await u.page.evaluate(axeSource); // through the DevTools protocol: the page's CSP stays on
  const res = await u.page.evaluate(async () => {
    // @ts-ignore
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  writeFileSync(join(artifacts, `axe-${screen}.json`), JSON.stringify(res, null, 2));
  if (bad.length) fail(`accessibility (${screen}): ${JSON.stringify(bad)}`);
}

async function shot(u, name) {
  await u.page.screenshot({ path: join(artifacts, name + '.png') });
}

/** A small real PNG (a gradient), made here so no binary is committed. */
function png(w, h) {
  const crc = (buf) => {
    let c, crcTable = [];
    for (let n = 0; n < 256; n++) { c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; crcTable[n] = c >>> 0; }
    let x = 0xffffffff;
    for (const b of buf) x = crcTable[(x ^ b) & 0xff] ^ (x >>> 8);
    return (x ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const i = y * (w * 3 + 1) + 1 + x * 3;
      raw[i] = (x * 255) / w; raw[i + 1] = (y * 255) / h; raw[i + 2] = 160;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const suffix = Date.now().toString(36).slice(-5);
const names = { ann: 'ann' + suffix, bob: 'bob' + suffix, carol: 'carol' + suffix };
let ann, bob, bob2, carol;
try {
  await stage('register three users', async () => {
    ann = await newUser('ann');
    bob = await newUser('bob');
    carol = await newUser('carol');
    await ann.page.goto(base + '/');
    await ann.page.waitForSelector('input[name=username]');
    await shot(ann, '01-sign-in');
    await axe(ann, 'sign-in');
    await register(ann, names.ann);
    await register(bob, names.bob);
    await register(carol, names.carol);
  });

  const first = `${canary} hello from ann`;
  await stage('direct message: sent, delivered, seen', async () => {
    await openChatWith(ann, names.bob);
    await send(ann, first);
    // Bob is online but has not opened the chat: delivered, not seen.
    await waitStatus(ann, first, 'delivered');
    if (await ann.page.locator(`li.msg.out[data-status="seen"]`).count()) fail('seen before bob opened the chat');
    await bob.page.waitForSelector(`#chat-list .chat-item >> text=${first}`);
    await openChatNamed(bob, 'Ann');
    await bob.page.waitForSelector(`li.msg.in >> text=${first}`);
    await waitStatus(ann, first, 'seen');
    await ann.page.waitForSelector('.subtitle >> text=online');
  });

  await stage('typing and a reply', async () => {
    await bob.page.fill('#composer', 'hi ann, typ');
    await bob.page.type('#composer', 'ing');
    await ann.page.waitForSelector('.subtitle[data-typing]');
    await bob.page.press('#composer', 'Enter');
    await ann.page.waitForSelector('li.msg.in >> text=hi ann, typing');
    await waitStatus(bob, 'hi ann, typing', 'seen');
    await shot(ann, '02-conversation-light');
    await axe(ann, 'conversation');
  });

  await stage('reload keeps history (decrypted from the server)', async () => {
    await ann.page.reload();
    await ann.page.waitForSelector('#chat-list');
    await openChatNamed(ann, 'Bob');
    await ann.page.waitForSelector(`li.msg.out >> text=${first}`);
    await ann.page.waitForSelector('li.msg.in >> text=hi ann, typing');
    if ((await ann.page.locator('li.msg', { hasText: 'This message was not encrypted' }).count()) > 0) fail('undecryptable message after reload');
  });

  await stage('safety codes match', async () => {
    await ann.page.click('button[aria-label="Details"]');
    await bob.page.click('button[aria-label="Details"]');
    const a = (await ann.page.textContent('#safety-code')).trim();
    const b = (await bob.page.textContent('#safety-code')).trim();
    if (!/^(\d{5} ){11}\d{5}$/.test(a) || a !== b) fail(`safety codes differ: ${a} / ${b}`);
    await shot(ann, '03-details-safety-code');
    await axe(ann, 'details');
    await ann.page.keyboard.press('Escape');
    await bob.page.keyboard.press('Escape');
  });

  await stage('a second device of bob reads new messages', async () => {
    bob2 = await newUser('bob2');
    await login(bob2, names.bob);
    // Ann's client learns of the new key (key_changed) and says so.
    await ann.page.waitForSelector('li.key-changed');
    const text = 'for both of your devices';
    await send(ann, text);
    await bob.page.waitForSelector(`li.msg.in >> text=${text}`);
    await openChatNamed(bob2, 'Ann');
    await bob2.page.waitForSelector(`li.msg.in >> text=${text}`);
    // What bob sends from one device shows on the other, once.
    await send(bob2, 'sent from my second device');
    await bob.page.waitForSelector('li.msg.out >> text=sent from my second device');
    await ann.page.waitForSelector('li.msg.in >> text=sent from my second device');
  });

  await stage('offline then online: missed messages once', async () => {
    await bob.context.setOffline(true);
    await bob.page.waitForSelector('.conn[data-state="offline"], .conn[data-state="connecting"]');
    const missed = ['missed one', 'missed two', 'missed three'];
    for (const m of missed) await send(ann, m);
    // bob2 is still online (with the chat open): delivered there, or seen.
    for (const m of missed) await ann.page.locator('li.msg.out:is([data-status="delivered"], [data-status="seen"])', { hasText: m }).waitFor();
    await bob.context.setOffline(false);
    for (const m of missed) await bob.page.waitForSelector(`li.msg.in >> text=${m}`);
    await bob.page.waitForSelector('.conn[data-state="online"]', { state: 'attached' });
    for (const m of [...missed, first]) {
      const n = await bubble(bob, m).count();
      if (n !== 1) fail(`"${m}" shown ${n} times after reconnect`);
    }
  });

  await stage('reply, react, edit, delete for everyone', async () => {
    await action(bob, 'missed one', 'Reply');
    await send(bob, 'answering the first');
    await ann.page.locator('li.msg.in', { hasText: 'answering the first' }).locator('blockquote', { hasText: 'missed one' }).waitFor();
    await action(ann, 'answering the first', 'React 👍');
    await bob.page.locator('li.msg.out', { hasText: 'answering the first' }).locator('.reactions', { hasText: '👍' }).waitFor();
    await action(ann, 'missed two', 'Edit');
    await ann.page.fill('#composer', 'missed two, corrected');
    await ann.page.press('#composer', 'Enter');
    await bob.page.locator('li.msg.in', { hasText: 'missed two, corrected' }).locator('.edited').waitFor();
    await action(ann, 'missed three', 'Delete for everyone');
    await bob.page.waitForSelector('li.msg.in >> text=This message was deleted');
    if (await bubble(bob, 'missed three').count()) fail('a message deleted for everyone is still shown');
  });

  await stage('block: a refused send keeps a Retry that resends once', async () => {
    await bob.page.click('button[aria-label="Details"]');
    await bob.page.click('.details button:has-text("Block")');
    await bob.page.waitForSelector('.details button:has-text("Unblock")');
    await send(ann, 'while blocked');
    await ann.page.waitForSelector('li.msg.out[data-status="failed"] >> text=while blocked');
    await ann.page.waitForSelector('.composer .form-error:not(:empty)');
    await bob.page.click('.details button:has-text("Unblock")');
    await bob.page.waitForSelector('.details button:has-text("Block")');
    await bob.page.click('.details button:has-text("Mute notifications")');
    await bob.page.waitForSelector('.details button:has-text("Unmute notifications")');
    await bob.page.waitForSelector('#chat-list .muted-icon');
    await bob.page.keyboard.press('Escape');
    await bubble(ann, 'while blocked').locator('button.retry').click();
    await bob.page.waitForSelector('li.msg.in >> text=while blocked');
    await ann.page.locator('li.msg.out:is([data-status="delivered"], [data-status="seen"])', { hasText: 'while blocked' }).waitFor();
    if ((await bubble(ann, 'while blocked').count()) !== 1 || (await bubble(bob, 'while blocked').count()) !== 1) fail('the retried message is shown twice');
  });

  await stage('history loads as you scroll up', async () => {
    const t0 = Date.now();
    // 32 more messages (a history page holds 30) from ann's page, through the client's own send path.
    await ann.page.evaluate(async () => {
      const app = /** @type {any} */ (document.querySelector('parley-app'));
      const chat = app.chats.get(app.current);
      for (let i = 0; i < 32; i += 8) {
        await Promise.all(Array.from({ length: 8 }, (_, j) => app.send(chat, { text: `bulk ${i + j}` }, 'text', '', '')));
      }
    });
    console.log(`    sent in ${Date.now() - t0} ms`);
    await bob.page.waitForSelector('li.msg.in >> text=bulk 31');
    console.log(`    received in ${Date.now() - t0} ms`);
    await bob.page.reload();
    await openChatNamed(bob, 'Ann');
    await bob.page.waitForSelector('li.msg.in >> text=bulk 31');
    console.log(`    reloaded in ${Date.now() - t0} ms`);
    if (await bubble(bob, first).count()) fail('the whole history loaded at once');
    for (let i = 0; i < 5 && !(await bubble(bob, first).count()); i++) {
      await bob.page.locator('.messages').evaluate((e) => { e.scrollTop = 0; });
      await bob.page.waitForTimeout(300);
    }
    await bob.page.waitForSelector(`li.msg.in >> text=${first}`);
    for (const m of ['bulk 0', 'bulk 15', 'bulk 31', first]) {
      if ((await bubble(bob, m).count()) !== 1) fail(`"${m}" not shown exactly once after paging`);
    }
  });

  await stage('a scheduled message is listed and cancelled', async () => {
    const at = new Date(Date.now() + 3600_000);
    const pad = (n) => String(n).padStart(2, '0');
    const local = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
    await ann.page.click('button[aria-label="Schedule"]');
    await ann.page.fill('input[aria-label="Send at"]', local);
    await ann.page.fill('#composer', 'see you in an hour');
    await ann.page.click('button[aria-label="Send"]');
    await ann.page.waitForSelector('.composer .form-error >> text=Scheduled for');
    await ann.page.click('button[aria-label="Settings"]');
    const row = ann.page.locator('.pane li', { hasText: 'To Bob' });
    await row.waitFor();
    await row.locator('button', { hasText: 'Cancel' }).click();
    await ann.page.waitForSelector('.pane li >> text=None.');
    await openChatNamed(ann, 'Bob');
  });

  await stage('profile name reaches the contact', async () => {
    await ann.page.click('button[aria-label="Your profile"]');
    await ann.page.fill('input[name=name]', 'Ann Renamed');
    await ann.page.setInputFiles('input[aria-label="Profile photo"]', { name: 'me.png', mimeType: 'image/png', buffer: png(200, 200) });
    await ann.page.click('.pane button[type=submit]');
    await ann.page.waitForSelector('.pane [role=status] >> text=Saved.');
    await bob.page.waitForSelector('#chat-list .chat-title >> text=Ann Renamed');
    await bob.page.reload();
    await bob.page.locator('#chat-list .chat-item', { hasText: 'Ann Renamed' }).locator('.avatar img').waitFor();
    await ann.page.keyboard.press('Escape');
  });

  await stage('group of three with an encrypted image', async () => {
    await ann.page.click('button[aria-label="New group"]');
    await ann.page.fill('dialog input[aria-label="Group name"]', 'Trio');
    for (const n of [names.bob, names.carol]) {
      await ann.page.fill('dialog input[aria-label="Add a member by username"]', n);
      await ann.page.press('dialog input[aria-label="Add a member by username"]', 'Enter');
      await ann.page.waitForSelector(`dialog .chips >> text=${n.slice(0, 5)}`);
    }
    await ann.page.click('dialog button[type=submit]');
    await ann.page.waitForSelector('#conv-title >> text=Trio');
    await send(ann, 'welcome to the trio');
    await ann.page.setInputFiles('#file-input', { name: 'gradient.png', mimeType: 'image/png', buffer: png(480, 320) });
    for (const u of [bob, carol]) {
      await u.page.waitForSelector('#chat-list .chat-item >> text=Trio');
      await openChatNamed(u, 'Trio');
      await u.page.waitForSelector('li.msg.in >> text=welcome to the trio');
      await u.page.waitForSelector('img.photo[data-state="decrypted"]');
      const w = await u.page.locator('img.photo[data-state="decrypted"]').evaluate((img) => img.naturalWidth);
      if (!(w > 0)) fail(`${u.label}: the image did not decode`);
    }
    await send(carol, 'nice picture');
    await ann.page.waitForSelector('li.msg.in >> text=nice picture');
    // Per-member receipts of ann's group message.
    await action(ann, 'welcome to the trio', 'Info');
    await ann.page.locator('.details section', { hasText: 'Seen by' }).locator('li', { hasText: 'Carol' }).waitFor();
    await ann.page.keyboard.press('Escape');
    await ann.page.waitForSelector('img.photo[data-state="decrypted"]');
    // Roles: ann makes bob an admin; bob's details show it.
    await ann.page.click('button[aria-label="Details"]');
    await ann.page.locator('.members li', { hasText: 'Bob' }).locator('button', { hasText: 'Make admin' }).click();
    await ann.page.locator('.members li', { hasText: 'Bob' }).locator('button', { hasText: 'Make member' }).waitFor();
    await ann.page.keyboard.press('Escape');
    await bob.page.click('button[aria-label="Details"]');
    await bob.page.locator('.members li', { hasText: 'You' }).locator('.role', { hasText: 'admin' }).waitFor();
    await bob.page.keyboard.press('Escape');
    await shot(bob, '04-group-image');
    await axe(bob, 'group');
  });

  await stage('settings, dark theme and a phone', async () => {
    await carol.page.emulateMedia({ colorScheme: 'dark' });
    await shot(carol, '06-group-dark');
    await axe(carol, 'conversation-dark');
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    p.setDefaultTimeout(T);
    const u = { label: 'phone', context: phone, page: p };
    await login(u, names.carol);
    await shot(u, '07-phone-chat-list');
    await openChatNamed(u, 'Trio');
    // A new device cannot read what was sent before it existed...
    await p.waitForSelector('li.msg >> text=not encrypted for this device');
    // ...and reads what is sent after (ann's client learned of its key).
    await send(ann, 'hello to the new phone');
    await p.waitForSelector('li.msg.in >> text=hello to the new phone');
    if (await p.locator('.sidebar').isVisible()) fail('phone: the chat list stays visible beside the conversation');
    await shot(u, '08-phone-conversation');
    await axe(u, 'phone');
    await ann.page.click('button[aria-label="Settings"]');
    await ann.page.waitForSelector('select[name=lastSeenVisibility]');
    await shot(ann, '05-settings');
    await axe(ann, 'settings');
  });

  await stage('forgot and reset password, sign in with the new one', async () => {
    const u = await newUser('reset');
    await u.page.goto(base + '/forgot');
    await u.page.fill('input[name=email]', names.carol + '@example.test');
    await u.page.click('button[type=submit]');
    await u.page.waitForSelector('#auth-error >> text=reset code is on its way');
    let token = '';
    for (let i = 0; i < 100 && !token; i++) {
      for (const f of readdirSync(mailDir).sort().reverse()) {
        const mail = readFileSync(join(mailDir, f), 'utf8').replace(/=\r?\n/g, '');
        const m = /Reset your Parley password[\s\S]*?reset token[^\n]*\n\s*\n\s*(\S+)/.exec(mail);
        if (m && mail.includes(names.carol + '@example.test')) { token = m[1]; break; }
      }
      if (!token) await new Promise((r) => setTimeout(r, 100));
    }
    if (!token) fail('no reset e-mail in ' + mailDir);
    await u.page.click('a:has-text("I have a reset code")');
    await u.page.fill('input[name=token]', token);
    await u.page.fill('input[name=newPassword]', 'a brand new password');
    await u.page.click('button[type=submit]');
    await u.page.waitForSelector('#auth-error >> text=Password changed');
    await login(u, names.carol, 'a brand new password');
    // The reset signed carol's other sessions out.
    await carol.page.reload();
    await carol.page.waitForSelector('input[name=username]');
  });

  await stage('the canary never left the browser in clear', async () => {
    const withCanary = sent.filter((s) => s.body.includes(canary));
    if (withCanary.length) fail(`plaintext canary sent: ${withCanary.map((s) => `${s.who} ${s.url}`).join(', ')}`);
    const sends = sent.filter((s) => s.url === '/api/messages/send' && s.body.includes('encryptedContent'));
    if (sends.length < 3) fail(`captured only ${sends.length} message sends: the capture does not work`);
    if (problems.length) fail(problems.join('\n'));
  });
} catch (e) {
  console.error(`FAIL at "${step}": ${e.message}`);
  for (const u of [ann, bob, bob2, carol]) if (u) await u.page.screenshot({ path: join(artifacts, `failed-${u.label}.png`) }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify({ totalMs: Date.now() - started, requestsCaptured: sent.length, timings }));
