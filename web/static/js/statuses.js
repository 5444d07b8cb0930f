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
import { el, fill, initials } from './dom.js';

/** @typedef {import('./app.js').ParleyApp} ParleyApp */

/**
 * @typedef {{statusId: string, userId: string, type: 'text' | 'image' | 'video', content: string, mediaId: string,
 *   backgroundColor: string, fontStyle: string, createdAt: string, expiresAt: string, encryptedKey: string,
 *   viewedAt: string | null, visibleTo?: string, encryptedKeys?: Record<string, string>, viewCount?: number}} StatusView
 * @typedef {{userId: string, username: string, name: string, avatar: string, hasUnviewed: boolean,
 *   latestAt: string, statuses: StatusView[]}} FeedEntry
 */

export class Statuses {
  /** @param {ParleyApp} app */
  constructor(app) {
    this.app = app;
    /** @type {FeedEntry[]} other users' statuses, most recent first */
    this.feed = [];
    /** @type {StatusView[]} my own unexpired statuses, newest first */
    this.mine = [];
    /** @type {Set<string>} status ids viewed in this browser since the feed was read */
    this.viewed = new Set();
    /** @type {HTMLElement | null} */
    this.stripList = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.expiryTimer = undefined;
    this.loading = Promise.resolve();
  }

  /** Forgets everything of the signed-out user. */
  reset() {
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
        'aria-label': `${name}: ${n} status${n === 1 ? '' : 'es'}${unviewed ? ', new' : ', viewed'}` },
      this.ring(this.app.users.get(f.userId), unviewed ? 'unviewed' : 'viewed', n),
      el('span', { class: 'status-name', 'aria-hidden': 'true' }, name))));
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
      el('button', { class: 'status-item', id: 'my-status', 'aria-label': n ? `My status: ${n} status${n === 1 ? '' : 'es'}` : 'My status: none',
        disabled: n === 0 },
      this.ring(me, n ? 'mine' : 'none', n),
      el('span', { class: 'status-name', 'aria-hidden': 'true' }, 'My status')),
      el('button', { class: 'status-add', id: 'add-status', 'aria-label': 'Add status', title: 'Add status' }, '+'));
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
    return ring;
  }

  /**
   * A status event, live or from /api/sync.
   * @param {string} event
   */
  async onEvent(event) {
    if (event === 'status_created' || event === 'status_viewed') this.refreshSoon();
  }
}
