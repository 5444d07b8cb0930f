// Statuses: 24-hour stories (API.md §7). A strip at the top of the chat
// list shows "My status" first, then every contact whose statuses this user
// may see (GET /api/statuses/feed), each avatar in a ring that stays
// coloured until all of that user's statuses were viewed.
//
// Encryption, as for messages (README.md, "Web client"): the body
// ({"text"} or {"media", "text"}) is AES-256-GCM with a fresh key and a
// 12-byte IV; content is {"v":1,"message":b64,"iv":b64}. The raw AES key is
// wrapped (RSA-OAEP) for every device of every allowed viewer and of the
// owner; encryptedKeys[userId] is the JSON {"<deviceId>": "<wrap>"} of that
// user's devices, so the server hands each viewer only their own map.
import { ApiError } from './api.js';
import * as e2e from './e2e.js';
import { el, fill, clock, initials } from './dom.js';

/** The server's bound on one wrapped key (parley.MaxStatusKeyLen). */
const MAX_KEY_LEN = 4096;
/** The server's bound on an image or video (parley.MaxMediaBytes). */
const MAX_MEDIA = 16 << 20;
/** Background colours offered for a text status; white text on each keeps 4.5:1. */
const COLOURS = [['#075e54', 'Green'], ['#1f4e79', 'Blue'], ['#5b2a86', 'Purple'], ['#8e1b1b', 'Red'], ['#7a4100', 'Brown'], ['#202c33', 'Night']];
/** Font styles for a text status: the value sent as fontStyle, and its name. */
const FONTS = [['sans', 'Sans serif'], ['serif', 'Serif'], ['mono', 'Typewriter'], ['script', 'Handwriting']];
/** How long a text or photo status shows before the next, in ms (a video: its length). */
const SHOW_MS = 6000;
const te = new TextEncoder();
const td = new TextDecoder();

/** @typedef {import('./app.js').ParleyApp} ParleyApp */

/**
 * @typedef {{statusId: string, userId: string, type: 'text' | 'image' | 'video', content: string, mediaId: string,
 *   backgroundColor: string, fontStyle: string, createdAt: string, expiresAt: string, encryptedKey: string,
 *   viewedAt: string | null, visibleTo?: string, encryptedKeys?: Record<string, string>, viewCount?: number}} StatusView
 * @typedef {{userId: string, username: string, name: string, avatar: string, hasUnviewed: boolean,
 *   latestAt: string, statuses: StatusView[]}} FeedEntry
 */

/** The statuses of the signed-in user and their contacts: the strip, the composer and the viewer. */
export class Statuses {
  /** @param {ParleyApp} app */
  constructor(app) {
    this.app = app;
    /** @type {FeedEntry[]} other users' statuses, most recent first */
    this.feed = [];
    /** @type {StatusView[]} my own unexpired statuses, newest first */
    this.mine = [];
    /** @type {Set<string>} status ids opened in this browser (their viewedAt may not be read yet) */
    this.viewed = new Set();
    /** @type {HTMLElement | null} */
    this.stripList = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.expiryTimer = undefined;
    this.loading = Promise.resolve();
    /** @type {Viewer | null} the open viewer */
    this.viewer = null;
  }

  /** Forgets everything of the signed-out user. */
  reset() {
    if (this.viewer) this.viewer.dialog.close();
    clearTimeout(this.refreshTimer);
    clearTimeout(this.expiryTimer);
    this.feed = [];
    this.mine = [];
    this.viewed.clear();
    this.stripList = null;
  }

  /**
   * The status strip for the sidebar; it fills itself from the server.
   * @returns {HTMLElement}
   */
  strip() {
    this.stripList = el('ul', { class: 'status-list' });
    const section = el('section', { class: 'status-strip', id: 'status-strip', 'aria-labelledby': 'status-strip-title' },
      el('h2', { class: 'sr-only', id: 'status-strip-title' }, 'Status'), this.stripList);
    this.render();
    this.load();
    return section;
  }

  /** Reads my statuses and the feed again and redraws the strip. */
  load() {
    this.loading = this.loading.then(async () => {
      const me = this.app.session && this.app.session.userId;
      if (!me) return;
      const [feed, mine] = await Promise.all([
        this.app.api.get('/api/statuses/feed'),
        this.app.api.get('/api/statuses/user/' + encodeURIComponent(me)),
      ]);
      this.feed = feed || [];
      this.mine = mine || [];
      for (const f of this.feed) {
        this.app.users.set(f.userId, { ...(this.app.users.get(f.userId) || {}), userId: f.userId, username: f.username, name: f.name, avatar: f.avatar });
      }
      this.render();
    }).catch((e) => console.error('statuses', e instanceof ApiError ? e.code : e));
    return this.loading;
  }

  /** Reads the statuses again soon (many events in a row make one read). */
  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.load(), 150);
  }

  /**
   * Whether one of the entry's statuses was not viewed yet.
   * @param {FeedEntry} f
   */
  unviewed(f) {
    return f.statuses.some((s) => !s.viewedAt && !this.viewed.has(s.statusId));
  }

  /** Drops what expired and redraws the strip. */
  render() {
    if (!this.stripList) return;
    const now = Date.now();
    const live = (/** @type {StatusView} */ s) => Date.parse(s.expiresAt) > now;
    this.mine = this.mine.filter(live);
    for (const f of this.feed) f.statuses = f.statuses.filter(live);
    this.feed = this.feed.filter((f) => f.statuses.length > 0);
    const me = this.app.users.get(this.app.session.userId);
    const items = [this.myItem(me)];
    for (const f of this.feed) {
      const unviewed = this.unviewed(f);
      const name = f.name || f.username;
      const n = f.statuses.length;
      items.push(el('li', null, el('button', { class: 'status-item', 'data-status-user': f.userId, 'data-unviewed': unviewed ? 'true' : 'false',
        'data-count': String(n), onclick: () => this.openFeed(f.userId) },
      this.ring(this.app.users.get(f.userId), unviewed ? 'unviewed' : 'viewed', n),
      el('span', { class: 'status-name' }, name),
      el('span', { class: 'sr-only' }, `: ${statusCount(n)}${unviewed ? ', new' : ', viewed'}`))));
    }
    fill(this.stripList, items);
    clearTimeout(this.expiryTimer);
    const next = Math.min(...this.mine.map((s) => Date.parse(s.expiresAt)), ...this.feed.flatMap((f) => f.statuses.map((s) => Date.parse(s.expiresAt))));
    if (Number.isFinite(next)) this.expiryTimer = setTimeout(() => this.render(), Math.min(Math.max(next - now, 1000), 3600_000));
  }

  /**
   * "My status": opens my statuses when I have some; "Add status" beside it.
   * @param {import('./app.js').Profile | undefined} me
   */
  myItem(me) {
    const n = this.mine.length;
    return el('li', { class: 'status-mine' },
      el('button', { class: 'status-item', id: 'my-status', 'data-count': String(n),
        disabled: n === 0, onclick: () => this.open(this.app.session.userId, [...this.mine].reverse(), 0) },
      this.ring(me, n ? 'mine' : 'none', n),
      el('span', { class: 'status-name' }, 'My status'),
      el('span', { class: 'sr-only' }, n ? `: ${statusCount(n)}` : ': none')),
      el('button', { class: 'status-add', id: 'add-status', 'aria-label': 'Add status', title: 'Add status', onclick: () => this.compose() }, '+'));
  }

  /**
   * An avatar in a ring cut into one arc per status.
   * @param {import('./app.js').Profile | undefined} p
   * @param {'unviewed' | 'viewed' | 'mine' | 'none'} state
   * @param {number} n
   */
  ring(p, state, n) {
    const ring = el('span', { class: 'status-ring ' + state, 'data-count': String(n), 'aria-hidden': 'true' },
      p ? this.app.avatar(p, 'avatar') : el('span', { class: 'avatar' }, initials('?')));
    if (n > 0) {
      // CSSOM, not a style attribute: the CSP allows no inline style.
      const arc = 360 / Math.min(n, 30);
      const gap = n > 1 ? 4 : 0;
      const parts = [];
      for (let i = 0; i < Math.min(n, 30); i++) {
        parts.push(`var(--ring) ${i * arc}deg ${(i + 1) * arc - gap}deg`);
        if (gap) parts.push(`transparent ${(i + 1) * arc - gap}deg ${(i + 1) * arc}deg`);
      }
      ring.style.backgroundImage = `conic-gradient(${parts.join(', ')})`;
    }
    return ring;
  }

  // ---------- posting ----------

  /** Shows the form for a new status in the conversation pane. */
  async compose() {
    const app = this.app;
    /** @type {{userId: string, username: string, name: string}[]} */
    let contacts = [];
    let failed = '';
    try {
      contacts = (await app.api.get('/api/contacts')) || [];
    } catch (e) {
      failed = 'Could not read your contacts: ' + (e instanceof ApiError ? e.message : String(e));
    }
    contacts = contacts.filter((c) => !app.blocked.has(c.userId));
    const error = el('p', { class: 'form-error', role: 'alert', id: 'status-error' }, failed);
    const preview = el('p', { class: 'status-text status-preview', id: 'status-preview', 'aria-hidden': 'true' }, 'Type a status');
    const text = /** @type {HTMLTextAreaElement} */ (el('textarea', { name: 'text', id: 'status-text', rows: '4', maxlength: '700',
      placeholder: 'Type a status' }));
    const file = /** @type {HTMLInputElement} */ (el('input', { type: 'file', name: 'file', id: 'status-file',
      accept: 'image/png,image/jpeg,image/gif,image/webp,video/mp4,video/webm' }));
    const people = el('fieldset', { class: 'status-people', hidden: true },
      el('legend', null, 'Contacts'),
      contacts.length ? contacts.map((c) => el('label', { class: 'check' },
        el('input', { type: 'checkbox', name: 'people', value: c.userId, 'data-contact': c.username }), ' ', c.name || c.username, ' ',
        el('span', { class: 'fine' }, '@' + c.username)))
        : el('p', { class: 'fine' }, 'No contacts yet: start a chat with someone to add them.'));
    const form = /** @type {HTMLFormElement} */ (el('form', { class: 'status-form', id: 'status-form', novalidate: true },
      el('fieldset', { class: 'status-kind' }, el('legend', null, 'Kind'),
        el('label', { class: 'check' }, el('input', { type: 'radio', name: 'kind', value: 'text', checked: true }), ' Text'),
        el('label', { class: 'check' }, el('input', { type: 'radio', name: 'kind', value: 'media' }), ' Photo or video')),
      el('label', { class: 'field', for: 'status-text' }, el('span', { 'data-kind': 'text' }, 'Text'), el('span', { 'data-kind': 'media', hidden: true }, 'Caption (optional)'), text),
      el('div', { 'data-kind': 'text' },
        el('label', { class: 'field' }, el('span', null, 'Background'),
          el('select', { name: 'backgroundColor', id: 'status-colour' }, COLOURS.map(([v, n]) => el('option', { value: v }, n)))),
        el('label', { class: 'field' }, el('span', null, 'Font'),
          el('select', { name: 'fontStyle', id: 'status-font' }, FONTS.map(([v, n]) => el('option', { value: v }, n)))),
        preview),
      el('label', { class: 'field', 'data-kind': 'media', hidden: true }, el('span', null, 'Photo or video (at most 16 MB)'), file),
      el('fieldset', { class: 'status-audience' }, el('legend', null, 'Who can see it'),
        el('label', { class: 'check' }, el('input', { type: 'radio', name: 'visibleTo', value: 'all', checked: true }), ` My contacts (${contacts.length})`),
        el('label', { class: 'check' }, el('input', { type: 'radio', name: 'visibleTo', value: 'specific' }), ' Only share with…'),
        el('label', { class: 'check' }, el('input', { type: 'radio', name: 'visibleTo', value: 'except' }), ' My contacts except…'),
        people),
      el('label', { class: 'field' }, el('span', null, 'Disappears after'),
        el('select', { name: 'hours', id: 'status-hours' }, [24, 12, 6, 1].map((h) => el('option', { value: String(h) }, `${h} hour${h === 1 ? '' : 's'}`)))),
      el('p', { class: 'fine' }, 'Your status is end-to-end encrypted: only the contacts you choose can read it.'),
      error,
      el('div', { class: 'row' }, el('button', { class: 'primary', type: 'submit', id: 'post-status', disabled: !!failed /* a status would reach none of my contacts */ }, 'Post status'))));
    const sync = () => {
      const fd = new FormData(form);
      const media = fd.get('kind') === 'media';
      form.querySelectorAll('[data-kind]').forEach((n) => { /** @type {HTMLElement} */ (n).hidden = (n.getAttribute('data-kind') === 'media') !== media; });
      people.hidden = fd.get('visibleTo') === 'all';
      preview.textContent = text.value || 'Type a status';
      textStyle(preview, String(fd.get('backgroundColor')), String(fd.get('fontStyle')));
    };
    form.addEventListener('input', sync);
    form.addEventListener('change', sync);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
      button.disabled = true;
      error.textContent = '';
      try {
        await this.post(new FormData(form), contacts.map((c) => c.userId));
        app.closeChat(true);
      } catch (e) {
        error.textContent = e instanceof ApiError || e instanceof UserError ? e.message : 'Something went wrong: ' + (e && e.message ? e.message : String(e));
      } finally {
        button.disabled = false;
      }
    });
    app.showPane('New status', form);
    sync();
    text.focus();
  }

  /**
   * Encrypts and posts a status from the form's fields.
   * @param {FormData} fd
   * @param {string[]} contacts the ids of my contacts (blocked ones left out)
   */
  async post(fd, contacts) {
    const app = this.app;
    const me = app.session.userId;
    const visibleTo = String(fd.get('visibleTo') || 'all');
    const chosen = new Set(fd.getAll('people').map(String));
    let audience = contacts;
    if (visibleTo === 'specific') audience = contacts.filter((id) => chosen.has(id));
    if (visibleTo === 'except') audience = contacts.filter((id) => !chosen.has(id));
    if (visibleTo === 'specific' && audience.length === 0) throw new UserError('Choose at least one contact to share with.');
    const caption = String(fd.get('text') || '').trim();
    /** @type {Record<string, any>} */
    const input = { visibleTo, expiresAt: Number(fd.get('hours') || 24) };
    if (visibleTo === 'specific') input.specificUsers = audience;
    if (visibleTo === 'except') input.excludedUsers = [...chosen].filter((id) => contacts.includes(id));
    /** @type {any} */
    let body;
    if (fd.get('kind') === 'media') {
      const f = fd.get('file');
      if (!(f instanceof File) || !f.size) throw new UserError('Choose a photo or video.');
      const type = /^image\/(png|jpeg|gif|webp)$/.test(f.type) ? 'image' : /^video\/(mp4|webm)$/.test(f.type) ? 'video' : '';
      if (!type) throw new UserError('A status can be a PNG, JPEG, GIF or WebP photo, or an MP4 or WebM video.');
      if (f.size > MAX_MEDIA - 16) throw new UserError('A photo or video may be at most 16 MB.');
      const enc = await e2e.encryptFile(await f.arrayBuffer(), null);
      const meta = { fileType: type, originalName: 'encrypted', size: enc.body.byteLength, mimeType: 'application/octet-stream',
        iv: enc.iv, thumbnailIv: '', encryptedKey: '' };
      const form = new FormData();
      form.append('encryptedMetadata', JSON.stringify(meta));
      form.append('hasThumbnail', 'false');
      form.append('file', new Blob([enc.body], { type: 'application/octet-stream' }), 'file');
      const up = await app.api.call('POST', '/api/media/upload', form);
      body = { text: caption, media: { fileId: up.fileId, key: enc.key, iv: enc.iv, mime: f.type, size: f.size } };
      input.type = type;
      input.mediaId = up.fileId;
    } else {
      if (!caption) throw new UserError('Type the text of your status.');
      body = { text: caption };
      input.type = 'text';
      input.backgroundColor = colourOf(String(fd.get('backgroundColor') || ''));
      input.fontStyle = fontOf(String(fd.get('fontStyle') || ''));
    }
    // Each reader's devices, mine read fresh (key_changed does not reach my own other devices).
    const lists = await Promise.all([...audience, me].map((u) => app.keysOf(u, u === me).catch(() => /** @type {e2e.DeviceKey[]} */ ([]))));
    /** @type {Map<string, e2e.DeviceKey[]>} */
    const readers = new Map();
    [...audience, me].forEach((u, i) => readers.set(u, lists[i]));
    const { content, keys, missing } = await encryptStatus(body, readers);
    if (visibleTo === 'specific' && missing.length) {
      const names = await Promise.all(missing.map((id) => app.profile(id).then((p) => p.name || p.username).catch(() => id)));
      throw new UserError(`${names.join(', ')} cannot read encrypted statuses yet (no device key).`);
    }
    if (!keys[me]) throw new UserError('This device has no key that can read the status.');
    input.content = content;
    input.encryptedKeys = keys;
    await app.api.post('/api/statuses/create', input);
    await this.load();
  }

  // ---------- viewing ----------

  /**
   * Opens a contact's statuses at the first one not viewed yet.
   * @param {string} userId
   */
  openFeed(userId) {
    const f = this.feed.find((x) => x.userId === userId);
    if (!f) return;
    const list = [...f.statuses].reverse(); // oldest first, as they were posted
    const first = list.findIndex((s) => !s.viewedAt && !this.viewed.has(s.statusId));
    this.open(userId, list, Math.max(first, 0));
  }

  /**
   * The full-screen viewer: one progress bar per status, tap (or arrow
   * keys) for the next or previous, auto-advance, pause.
   * @param {string} userId whose statuses
   * @param {StatusView[]} list oldest first
   * @param {number} start
   */
  open(userId, list, start) {
    if (!list.length) return;
    if (this.viewer) this.viewer.dialog.close();
    const app = this.app;
    const own = userId === app.session.userId;
    const p = app.users.get(userId);
    const name = own ? 'My status' : (p && (p.name || p.username)) || 'Status';
    const bars = el('div', { class: 'status-bars', 'aria-hidden': 'true' });
    const stage = el('div', { class: 'status-stage', id: 'status-stage', 'aria-live': 'polite' });
    const when = el('time', { class: 'status-when' });
    const position = el('span', { class: 'sr-only' });
    const pause = /** @type {HTMLButtonElement} */ (el('button', { class: 'icon status-pause', id: 'status-pause', 'aria-label': 'Pause', 'aria-pressed': 'false',
      onclick: () => this.setPaused(!v.paused) }, '❚❚'));
    const footer = el('footer', { class: 'status-foot' });
    const dialog = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'status-viewer', 'aria-label': own ? 'My status' : `Status of ${name}`,
      onclose: () => this.closed(v) },
    bars,
    el('header', { class: 'status-head' },
      this.app.avatar(p, 'avatar'),
      el('span', { class: 'status-who' }, el('h2', { id: 'status-owner' }, name), when, position),
      pause,
      el('button', { class: 'icon status-close', 'aria-label': 'Close', onclick: () => dialog.close() }, '✕')),
    el('div', { class: 'status-body' },
      el('button', { class: 'status-prev', 'aria-label': 'Previous status', onclick: () => this.step(-1) }, '‹'),
      stage,
      el('button', { class: 'status-next', 'aria-label': 'Next status', onclick: () => this.step(1) }, '›')),
    footer));
    /** @type {Viewer} */
    const v = { userId, name, own, list, index: -1, dialog, bars, stage, when, position, pause, footer, paused: false, url: '', showing: 0, viewersOpen: false };
    this.viewer = v;
    dialog.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowRight') { ev.preventDefault(); this.step(1); }
      if (ev.key === 'ArrowLeft') { ev.preventDefault(); this.step(-1); }
    });
    app.append(dialog);
    dialog.showModal();
    this.show(start);
  }

  /**
   * Shows the status at index i of the open viewer (past the last one: closes it).
   * @param {number} i
   */
  async show(i) {
    const v = this.viewer;
    if (!v) return;
    if (i < 0) i = 0;
    if (i >= v.list.length) {
      v.dialog.close();
      return;
    }
    const n = ++v.showing;
    v.index = i;
    this.stopMedia(v);
    const s = v.list[i];
    fill(v.bars, v.list.map((_, j) => el('span', { class: 'status-bar' + (j < i ? ' done' : '') }, el('span', { class: 'status-fill' }))));
    v.position.textContent = `, ${i + 1} of ${v.list.length}`;
    v.when.textContent = clock(s.createdAt);
    v.when.setAttribute('datetime', s.createdAt);
    fill(v.stage, el('p', { class: 'status-note' }, 'Decrypting…'));
    this.renderFoot(v, s);
    let st = s;
    let body;
    try {
      // A viewer's read records the view (and tells the owner); the owner's records nothing.
      st = await this.app.api.get('/api/statuses/' + encodeURIComponent(s.statusId));
      if (n !== v.showing) return;
      v.list[i] = { ...s, ...st };
      this.viewed.add(s.statusId);
      this.renderFoot(v, v.list[i]);
      body = await decryptStatus(st.content, st.encryptedKey, this.app.device);
    } catch (e) {
      if (n !== v.showing) return;
      const gone = e instanceof ApiError && e.status === 404;
      fill(v.stage, el('p', { class: 'status-note', role: 'alert' }, gone ? 'This status is no longer available.' : 'This status cannot be decrypted on this device.'));
      this.run(v, SHOW_MS);
      return;
    }
    if (n !== v.showing) return;
    const caption = typeof body.text === 'string' && body.text ? body.text : '';
    if (st.type === 'text') {
      const t = el('p', { class: 'status-text status-big', 'data-status': st.statusId }, caption);
      textStyle(t, st.backgroundColor, st.fontStyle);
      fill(v.stage, t);
      this.run(v, SHOW_MS);
      return;
    }
    const m = body.media || {};
    try {
      const b = await this.app.api.bytes('/api/media/' + encodeURIComponent(m.fileId || st.mediaId) + '/content');
      const plain = await e2e.decryptFile(b, m.key, m.iv);
      if (n !== v.showing) return;
      v.url = URL.createObjectURL(new Blob([plain], { type: m.mime || (st.type === 'image' ? 'image/jpeg' : 'video/mp4') }));
    } catch {
      if (n !== v.showing) return;
      fill(v.stage, el('p', { class: 'status-note', role: 'alert' }, 'This photo or video could not be loaded.'));
      this.run(v, SHOW_MS);
      return;
    }
    const cap = caption && el('p', { class: 'status-caption' }, caption);
    if (st.type === 'image') {
      fill(v.stage, el('figure', { class: 'status-media' }, el('img', { src: v.url, alt: caption || `Photo status of ${v.name}`,
        'data-status': st.statusId }), cap));
      this.run(v, SHOW_MS);
      return;
    }
    const video = /** @type {HTMLVideoElement} */ (el('video', { src: v.url, playsinline: true, controls: true, 'data-status': st.statusId,
      'aria-label': caption || 'Video status' }));
    video.addEventListener('ended', () => { if (n === v.showing && !v.paused && !v.viewersOpen) this.step(1); });
    video.addEventListener('loadedmetadata', () => {
      if (n === v.showing) this.run(v, Number.isFinite(video.duration) && video.duration > 0 ? video.duration * 1000 : SHOW_MS, true);
    });
    fill(v.stage, el('figure', { class: 'status-media' }, video, cap));
    if (!v.paused) video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
  }

  /**
   * Starts the current status's progress bar; at its end the next status shows.
   * @param {Viewer} v
   * @param {number} ms
   * @param {boolean} [video] a video advances when it ends, not with its bar
   */
  run(v, ms, video) {
    const bar = /** @type {HTMLElement | null} */ (v.bars.children[v.index] && v.bars.children[v.index].firstElementChild);
    if (!bar) return;
    const n = v.showing;
    // CSSOM, not a style attribute: the CSP allows no inline style.
    bar.style.animationDuration = ms + 'ms';
    bar.classList.add('running');
    this.applyPause(v);
    if (!video) bar.addEventListener('animationend', () => { if (n === v.showing) this.step(1); }, { once: true });
  }

  /**
   * Pauses or resumes the open viewer.
   * @param {boolean} paused
   */
  setPaused(paused) {
    const v = this.viewer;
    if (!v) return;
    v.paused = paused;
    this.applyPause(v);
    const video = v.stage.querySelector('video');
    if (video) {
      if (paused || v.viewersOpen) video.pause();
      else video.play().catch(() => {});
    }
  }

  /** @param {Viewer} v */
  applyPause(v) {
    const stopped = v.paused || v.viewersOpen;
    v.dialog.classList.toggle('paused', stopped);
    v.pause.setAttribute('aria-pressed', v.paused ? 'true' : 'false');
    v.pause.setAttribute('aria-label', v.paused ? 'Play' : 'Pause');
    v.pause.textContent = v.paused ? '▶' : '❚❚';
  }

  /**
   * The next (1) or previous (-1) status.
   * @param {number} d
   */
  step(d) {
    const v = this.viewer;
    if (!v) return;
    if (d < 0 && v.index === 0) {
      this.show(0); // again from its start
      return;
    }
    this.show(v.index + d);
  }

  /** @param {Viewer} v */
  stopMedia(v) {
    const video = v.stage.querySelector('video');
    if (video) video.pause();
    if (v.url) URL.revokeObjectURL(v.url);
    v.url = '';
  }

  /** @param {Viewer} v */
  closed(v) {
    this.stopMedia(v);
    v.showing++;
    v.dialog.remove();
    if (this.viewer === v) this.viewer = null;
    this.render();
    this.load();
  }

  // ---------- the owner's side: who viewed, delete ----------

  /**
   * The viewer's footer: for the owner, the view count, the viewers and delete.
   * @param {Viewer} v
   * @param {StatusView} s
   */
  renderFoot(v, s) {
    if (!v.own) {
      fill(v.footer);
      return;
    }
    const list = el('ul', { class: 'status-viewers', id: 'status-viewers', 'aria-label': 'Viewed by', hidden: !v.viewersOpen });
    const count = el('button', { class: 'status-views', id: 'status-views', 'aria-expanded': v.viewersOpen ? 'true' : 'false', 'aria-controls': 'status-viewers',
      onclick: () => {
        v.viewersOpen = !v.viewersOpen;
        count.setAttribute('aria-expanded', v.viewersOpen ? 'true' : 'false');
        list.hidden = !v.viewersOpen;
        this.setPaused(v.paused);
        if (v.viewersOpen) this.loadViewers(v, s.statusId);
      } }, viewsText(s.viewCount || 0));
    const confirm = el('div', { class: 'status-confirm', hidden: true },
      el('span', null, 'Delete this status for everyone?'),
      el('button', { class: 'danger', id: 'status-delete-yes', onclick: () => this.remove(v, s.statusId) }, 'Delete'),
      el('button', { onclick: () => { confirm.hidden = true; this.setPaused(false); } }, 'Cancel'));
    fill(v.footer, el('div', { class: 'status-actions' }, count,
      el('button', { class: 'status-delete', id: 'status-delete', onclick: () => { confirm.hidden = false; this.setPaused(true); } }, 'Delete')),
    confirm, list);
    if (v.viewersOpen) this.loadViewers(v, s.statusId);
  }

  /**
   * Reads who viewed one of my statuses into the open viewer's list.
   * @param {Viewer} v
   * @param {string} statusId
   */
  async loadViewers(v, statusId) {
    let r;
    try {
      r = await this.app.api.get('/api/statuses/' + encodeURIComponent(statusId) + '/viewers');
    } catch (e) {
      r = null;
      console.error('status viewers', e instanceof ApiError ? e.code : e);
    }
    const s = v.list[v.index];
    if (this.viewer !== v || !s || s.statusId !== statusId) return;
    const list = v.footer.querySelector('.status-viewers');
    const count = v.footer.querySelector('.status-views');
    if (!list || !count) return;
    if (!r) {
      fill(list, el('li', { class: 'fine', role: 'alert' }, 'Could not read who viewed it.'));
      return;
    }
    s.viewCount = r.viewCount;
    const mine = this.mine.find((x) => x.statusId === statusId);
    if (mine) mine.viewCount = r.viewCount;
    count.textContent = viewsText(r.viewCount);
    fill(list, r.viewers.length ? r.viewers.map((/** @type {{userId: string, username: string, viewedAt: string}} */ x) => {
      const p = this.app.users.get(x.userId);
      return el('li', { class: 'status-viewer-item', 'data-viewer': x.username },
        this.app.avatar(p || { userId: x.userId, username: x.username }, 'avatar'),
        el('span', { class: 'status-viewer-name' }, (p && p.name) || x.username),
        el('time', { datetime: x.viewedAt }, clock(x.viewedAt)));
    }) : el('li', { class: 'fine' }, 'No views yet.'));
  }

  /**
   * Deletes one of my statuses and shows the next.
   * @param {Viewer} v
   * @param {string} statusId
   */
  async remove(v, statusId) {
    try {
      await this.app.api.post('/api/statuses/delete', { statusId });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        const c = v.footer.querySelector('.status-confirm span');
        if (c) c.textContent = e instanceof ApiError ? e.message : 'Could not delete it.';
        return;
      }
    }
    this.mine = this.mine.filter((x) => x.statusId !== statusId);
    if (this.viewer !== v) return;
    const i = v.list.findIndex((x) => x.statusId === statusId);
    if (i >= 0) v.list.splice(i, 1);
    this.setPaused(false);
    if (!v.list.length) v.dialog.close();
    else this.show(Math.min(Math.max(i, 0), v.list.length - 1));
  }

  /**
   * A status event, live or from /api/sync.
   * @param {string} event
   * @param {any} d
   */
  async onEvent(event, d) {
    if (event !== 'status_created' && event !== 'status_viewed') return;
    this.refreshSoon();
    const v = this.viewer;
    if (event === 'status_viewed' && v && v.own && d && v.list[v.index] && v.list[v.index].statusId === d.statusId) {
      if (v.viewersOpen) await this.loadViewers(v, d.statusId);
      else {
        const s = v.list[v.index];
        s.viewCount = (s.viewCount || 0) + 1;
        const count = v.footer.querySelector('.status-views');
        if (count) count.textContent = viewsText(s.viewCount);
      }
    }
  }
}

/**
 * @typedef {{userId: string, name: string, own: boolean, list: StatusView[], index: number, dialog: HTMLDialogElement, bars: HTMLElement,
 *   stage: HTMLElement, when: HTMLElement, position: HTMLElement, pause: HTMLButtonElement, footer: HTMLElement,
 *   paused: boolean, url: string, showing: number, viewersOpen: boolean}} Viewer
 */

/** @param {number} n */
function statusCount(n) {
  return n === 1 ? '1 status' : `${n} statuses`;
}

/** @param {number} n */
function viewsText(n) {
  return n === 1 ? '1 view' : `${n} views`;
}

/** An error to show as it is (a choice in the form to correct). */
class UserError extends Error {}

/**
 * A background colour the client draws with: a #rrggbb, else the first of COLOURS.
 * @param {string} c
 */
function colourOf(c) {
  return /^#[0-9a-f]{6}$/i.test(c) ? c.toLowerCase() : COLOURS[0][0];
}

/**
 * A known font style, else sans.
 * @param {string} f
 */
function fontOf(f) {
  return FONTS.some(([v]) => v === f) ? f : 'sans';
}

/**
 * Draws a text status's colour and font on an element: white or black text,
 * whichever reads better on the colour (another client may choose any).
 * @param {HTMLElement} node
 * @param {string} colour
 * @param {string} font
 */
function textStyle(node, colour, font) {
  const c = colourOf(colour);
  const lum = [1, 3, 5].map((i) => {
    const v = parseInt(c.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  const l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
  // CSSOM, not a style attribute: the CSP allows no inline style.
  node.style.backgroundColor = c;
  node.style.color = (1.05 / (l + 0.05)) >= ((l + 0.05) / 0.05) ? '#ffffff' : '#000000';
  for (const [v] of FONTS) node.classList.toggle('font-' + v, v === fontOf(font));
}

/** @type {Map<string, Promise<CryptoKey>>} */
const publicKeys = new Map();

/** @param {string} pem */
function importPublic(pem) {
  let k = publicKeys.get(pem);
  if (!k) {
    const spki = e2e.unb64(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
    k = crypto.subtle.importKey('spki', spki, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
    publicKeys.set(pem, k);
  }
  return k;
}

/**
 * Encrypts a status body with a fresh AES-256-GCM key wrapped for each
 * reader's devices (see the top of this file).
 * @param {any} body
 * @param {Map<string, e2e.DeviceKey[]>} readers by user id, the owner included
 * @returns {Promise<{content: string, keys: Record<string, string>, missing: string[]}>} missing: readers with no device that can read it
 */
export async function encryptStatus(body, readers) {
  const aes = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
  const raw = await crypto.subtle.exportKey('raw', aes);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aes, te.encode(JSON.stringify(body)));
  /** @type {Record<string, string>} */
  const keys = {};
  const missing = [];
  for (const [userId, devices] of readers) {
    /** @type {Record<string, string>} */
    const wraps = {};
    for (const d of devices || []) {
      if (!d.publicKey || wraps[d.deviceId]) continue;
      let w;
      try {
        w = e2e.b64(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, await importPublic(d.publicKey), raw));
      } catch {
        continue; // a device whose key is not an RSA-OAEP SPKI cannot read web statuses
      }
      // The server keeps at most MAX_KEY_LEN per user: the devices past it go without.
      if (JSON.stringify({ ...wraps, [d.deviceId]: w }).length > MAX_KEY_LEN) break;
      wraps[d.deviceId] = w;
    }
    if (Object.keys(wraps).length) keys[userId] = JSON.stringify(wraps);
    else missing.push(userId);
  }
  return { content: JSON.stringify({ v: 1, message: e2e.b64(ct), iv: e2e.b64(iv) }), keys, missing };
}

/**
 * Decrypts a status's content with the key wrapped for this device.
 * @param {string} content
 * @param {string} encryptedKey the caller's own entry of encryptedKeys
 * @param {e2e.DeviceKeys} me
 * @returns {Promise<any>} the body; throws when this device cannot read it
 */
export async function decryptStatus(content, encryptedKey, me) {
  const wraps = JSON.parse(encryptedKey || '{}');
  const wrapped = wraps && typeof wraps === 'object' ? wraps[me.deviceId] : '';
  if (typeof wrapped !== 'string' || !wrapped) throw new Error('not encrypted for this device');
  const raw = await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, me.privateKey, e2e.unb64(wrapped));
  const aes = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
  const env = JSON.parse(content);
  const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: e2e.unb64(env.iv) }, aes, e2e.unb64(env.message));
  return JSON.parse(td.decode(pt));
}
