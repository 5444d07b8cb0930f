// <parley-app>: the whole client. Three panes like WhatsApp Web (chat list,
// conversation, details); on a phone's width one pane at a time.
import { Api, ApiError } from './api.js';
import * as e2e from './e2e.js';
import { Live } from './live.js';
import { el, fill, clock, initials, randomId, icon } from './dom.js';
import { Calls, phoneIcon } from './calls.js';
import { Push } from './push.js';
import { Admin, chartIcon } from './admin.js';
import { Statuses } from './statuses.js';
import { Communities, communitiesIcon } from './communities.js';

/**
 * @typedef {{userId: string, username: string, name?: string, about?: string, avatar?: string, devices?: e2e.DeviceKey[], isAdmin?: boolean}} Profile
 * @typedef {{key: string, kind: 'direct' | 'group', conversationId: string, peerId: string, groupId: string,
 *   title: string, last: string, lastAt: string, unread: number, muted: boolean,
 *   messages: Msg[], loaded: boolean, complete: boolean, typingUntil: number, typingWho: string,
 *   notices: {at: string, text: string}[], group?: any, loading?: boolean, olderRequested?: boolean, seenUpTo?: string,
 *   typingTimer?: ReturnType<typeof setTimeout>, readOnly?: boolean, countedSeq?: number}} Chat
 * @typedef {{id: string, clientMessageId: string, seq: number, senderId: string, sentAt: string, status: string,
 *   text: string, media: any, replyToId: string, reactions: {userId: string, reaction: string}[], editedAt: string,
 *   deleted: boolean, pending: boolean, failed: boolean, undecryptable: boolean, type: string,
 *   encrypted?: string, mediaId?: string}} Msg
 */

const STATUS_RANK = { pending: 0, sent: 1, delivered: 2, seen: 3 };
/** Messages per history page: a screenful or two; scrolling up loads the next. */
const PAGE = 30;

/** @param {any} e */
function errorText(e) {
  return e instanceof ApiError ? e.message : 'Something went wrong: ' + (e && e.message ? e.message : String(e));
}

export class ParleyApp extends HTMLElement {
  constructor() {
    super();
    this.api = new Api();
    /** @type {{userId: string, username: string, deviceId: string, token: string} | null} */
    this.session = null;
    /** @type {e2e.DeviceKeys | null} */
    this.device = null;
    /** @type {Map<string, Chat>} by peer user id (direct) or group id */
    this.chats = new Map();
    /** @type {Map<string, string>} conversationId -> chat key */
    this.convToKey = new Map();
    /** @type {Map<string, Profile>} */
    this.users = new Map();
    /** @type {Map<string, Promise<e2e.DeviceKey[]>>} */
    this.keyCache = new Map();
    /** @type {Map<string, {m: Msg, status: 'delivered' | 'seen'}>} receipts about to be sent, by chat and sender */
    this.receipts = new Map();
    /** @type {Map<string, Promise<string>>} fileId -> object URL of the decrypted image (thumbnail) */
    this.mediaURLs = new Map();
    /** @type {Map<string, {online: boolean, lastSeen: string}>} */
    this.presence = new Map();
    /** @type {Set<string>} message ids already shown, to drop duplicates from sync and socket */
    this.seen = new Set();
    this.current = '';
    /** @type {Msg | null} */
    this.replyTo = null;
    /** @type {Msg | null} */
    this.editing = null;
    /** @type {Live | null} */
    this.live = null;
    this.lastTypingSent = 0;
    this.settings = null;
    this.blocked = new Set();
    this.api.onUnauthorized = () => this.signedOut('Your session ended. Please sign in again.');
    this.calls = new Calls(this);
    this.push = new Push(this);
    this.admin = new Admin(this);
    this.statuses = new Statuses(this);
    this.communities = new Communities(this);
  }

  async connectedCallback() {
    this.setAttribute('role', 'application');
    addEventListener('popstate', () => this.route());
    document.addEventListener('visibilitychange', () => this.markSeen());
    addEventListener('keydown', (ev) => this.onKey(ev));
    const s = await e2e.kvGet('session');
    if (s && s.token) {
      this.api.token = s.token;
      this.session = s;
      this.device = (await e2e.loadDevice(s.username)) || null;
      if (this.device && this.device.deviceId === s.deviceId) {
        try {
          await this.enter();
          return;
        } catch (e) {
          if (!(e instanceof ApiError) || e.status !== 401) {
            this.renderAuth('login', errorText(e));
            return;
          }
        }
      }
      await e2e.kvDelete('session');
      this.session = null;
      this.api.token = '';
    }
    this.route();
  }

  // ---------- routing ----------

  route() {
    const p = location.pathname;
    if (!this.session) {
      const mode = { '/register': 'register', '/forgot': 'forgot', '/reset': 'reset' }[p] || 'login';
      this.renderAuth(mode, '');
      return;
    }
    if (p.startsWith('/chat/')) this.openChat(decodeURIComponent(p.slice(6)), false);
    else if (p === '/settings') this.showSettings(false);
    else if (p === '/profile') this.showProfile(false);
    else if (p === '/calls') this.calls.showHistory(false);
    else if (p === '/admin') this.admin.show(false);
    else if (this.communities.route(p)) return;
    else this.closeChat(false);
  }

  /** @param {string} path */
  go(path) {
    if (location.pathname !== path) history.pushState(null, '', path);
  }

  // ---------- sign in / register / forgot / reset ----------

  /**
   * @param {'login' | 'register' | 'forgot' | 'reset'} mode
   * @param {string} error
   */
  renderAuth(mode, error) {
    const status = el('p', { class: 'form-error', role: 'alert', id: 'auth-error' }, error);
    const field = (/** @type {string} */ label, /** @type {string} */ name, /** @type {string} */ type, /** @type {any} */ extra = {}) =>
      el('label', { class: 'field' }, el('span', null, label), el('input', { name, type, required: true, ...extra }));
    /** @type {Record<string, HTMLElement[]>} */
    const fields = {
      login: [field('Username', 'username', 'text', { autocomplete: 'username', autofocus: true }),
        field('Password', 'password', 'password', { autocomplete: 'current-password' })],
      register: [field('Username', 'username', 'text', { autocomplete: 'username', autofocus: true, minlength: 3, maxlength: 32, pattern: '[A-Za-z0-9_.\\-]+' }),
        field('Display name', 'name', 'text', { autocomplete: 'name', required: false }),
        field('E-mail (for password resets)', 'email', 'email', { autocomplete: 'email', required: false }),
        field('Password', 'password', 'password', { autocomplete: 'new-password', minlength: 8 })],
      forgot: [field('E-mail', 'email', 'email', { autocomplete: 'email', autofocus: true })],
      reset: [field('Reset code from the e-mail', 'token', 'text', { autofocus: true, value: new URLSearchParams(location.hash.slice(1)).get('token') || '' }),
        field('New password', 'newPassword', 'password', { autocomplete: 'new-password', minlength: 8 })],
    };
    const titles = { login: 'Sign in to Parley', register: 'Create your account', forgot: 'Reset your password', reset: 'Choose a new password' };
    const buttons = { login: 'Sign in', register: 'Create account', forgot: 'Send reset e-mail', reset: 'Set password' };
    const form = el('form', { class: 'auth-form', novalidate: false, onsubmit: (/** @type {SubmitEvent} */ ev) => {
      ev.preventDefault();
      const data = Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ (ev.target)));
      const btn = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
      btn.disabled = true;
      status.textContent = '';
      this.submitAuth(mode, /** @type {Record<string, string>} */ (data)).catch((e) => {
        status.textContent = errorText(e);
      }).finally(() => { btn.disabled = false; });
    } }, fields[mode], status, el('button', { type: 'submit', class: 'primary' }, buttons[mode]));
    const link = (/** @type {string} */ to, /** @type {string} */ text) => el('a', { href: to, onclick: (/** @type {Event} */ ev) => {
      ev.preventDefault();
      this.go(to);
      this.route();
    } }, text);
    fill(this, el('main', { class: 'auth' },
      el('div', { class: 'auth-card' },
        el('div', { class: 'brand', 'aria-hidden': 'true' }, 'Parley'),
        el('h1', null, titles[mode]),
        form,
        el('nav', { class: 'auth-links', 'aria-label': 'Account' },
          mode !== 'login' && link('/login', 'Sign in'),
          mode !== 'register' && link('/register', 'Create an account'),
          mode !== 'forgot' && link('/forgot', 'Forgot password?'),
          mode === 'forgot' && link('/reset', 'I have a reset code')),
        el('p', { class: 'fine' }, 'Messages are end-to-end encrypted: the keys that read them never leave this browser.'))));
    const first = /** @type {HTMLInputElement | null} */ (this.querySelector('input'));
    if (first) first.focus();
  }

  /**
   * @param {string} mode
   * @param {Record<string, string>} f
   */
  async submitAuth(mode, f) {
    const status = /** @type {HTMLElement} */ (this.querySelector('#auth-error'));
    if (mode === 'forgot') {
      await this.api.post('/api/auth/password/forgot', { email: f.email });
      status.textContent = 'If that address belongs to an account, a reset code is on its way.';
      return;
    }
    if (mode === 'reset') {
      await this.api.post('/api/auth/password/reset', { token: f.token.trim(), newPassword: f.newPassword });
      history.replaceState(null, '', '/login');
      this.renderAuth('login', 'Password changed. Sign in with the new one.');
      return;
    }
    const username = f.username.trim();
    let device = mode === 'login' ? await e2e.loadDevice(username) : undefined;
    const fresh = !device;
    if (!device) device = await e2e.newDevice(username);
    let res;
    if (mode === 'register') {
      /** @type {Record<string, string>} */
      const body = { username, password: f.password, deviceId: device.deviceId, publicKey: device.publicKeyPem };
      if (f.name) body.name = f.name;
      if (f.email) body.email = f.email;
      res = await this.api.post('/api/users/register', body);
    } else {
      res = await this.api.post('/api/auth/login', { username, password: f.password, deviceId: device.deviceId, publicKey: device.publicKeyPem });
    }
    if (fresh) await e2e.saveDevice(device);
    this.device = device;
    this.session = { userId: res.userId, username: res.username || username, deviceId: device.deviceId, token: res.token };
    this.api.token = res.token;
    await e2e.kvSet('session', this.session);
    await this.enter();
  }

  async logout() {
    try {
      await this.api.post('/api/auth/logout');
    } catch {
      // signed out locally either way
    }
    this.signedOut('');
  }

  /** @param {string} why */
  async signedOut(why) {
    this.calls.reset();
    this.statuses.reset();
    this.communities.reset();
    this.push.stop();
    if (this.live) this.live.stop();
    this.live = null;
    this.session = null;
    this.api.token = '';
    this.chats.clear();
    this.convToKey.clear();
    this.seen.clear();
    this.current = '';
    await e2e.kvDelete('session');
    history.replaceState(null, '', '/login');
    this.renderAuth('login', why);
  }

  // ---------- the main screen ----------

  async enter() {
    const me = await this.api.get('/api/users/me');
    this.users.set(me.userId, me);
    this.settings = me.settings;
    this.renderShell();
    await this.loadChats();
    this.push.openFromURL(); // a notification's link: /?chat=<conversationId>
    const blocked = await this.api.get('/api/users/blocked').catch(() => []);
    this.blocked = new Set((blocked || []).map((/** @type {any} */ b) => typeof b === 'string' ? b : b.userId));
    const cursor = (await e2e.kvGet('cursor:' + this.session.userId + ':' + this.session.deviceId)) || '';
    this.live = new Live(this.api, (ev, data, fromSync) => this.onEvent(ev, data, fromSync),
      (c) => { e2e.kvSet('cursor:' + this.session.userId + ':' + this.session.deviceId, c); },
      (state) => this.setConnState(state));
    this.live.start(cursor);
    this.push.start();
    if (location.pathname === '/' || location.pathname === '/login' || location.pathname === '/register') history.replaceState(null, '', '/');
    this.route();
  }

  renderShell() {
    const me = this.users.get(this.session.userId);
    this.search = /** @type {HTMLInputElement} */ (el('input', { type: 'search', id: 'search', placeholder: 'Search or start a new chat',
      'aria-label': 'Search people and chats', autocomplete: 'off', oninput: () => this.onSearch() }));
    this.chatList = el('ul', { class: 'chat-list', id: 'chat-list', 'aria-label': 'Chats' });
    this.searchResults = el('ul', { class: 'chat-list search-results', 'aria-label': 'People', hidden: true });
    this.conn = el('div', { class: 'conn', role: 'status', 'aria-live': 'polite' });
    this.sidebar = el('aside', { class: 'sidebar', 'aria-label': 'Chats' },
      el('header', { class: 'bar' },
        el('button', { class: 'avatar-btn', 'aria-label': 'Your profile', onclick: () => this.showProfile(true) }, this.avatar(me, 'avatar')),
        el('span', { class: 'bar-title' }, me.name || me.username),
        el('button', { class: 'icon', 'aria-label': 'New group', title: 'New group', onclick: () => this.showNewGroup() }, icon('group')),
        el('button', { class: 'icon', 'aria-label': 'Calls', title: 'Calls', onclick: () => this.calls.showHistory(true) }, phoneIcon()),
        el('button', { class: 'icon', 'aria-label': 'Communities', title: 'Communities', onclick: () => this.communities.showHome(true) }, communitiesIcon()),
        me.isAdmin && el('button', { class: 'icon', 'aria-label': 'Admin dashboard', title: 'Admin dashboard', onclick: () => this.admin.show(true) }, chartIcon()),
        el('button', { class: 'icon', 'aria-label': 'Settings', title: 'Settings', onclick: () => this.showSettings(true) }, icon('settings')),
        el('button', { class: 'icon', 'aria-label': 'Log out', title: 'Log out', onclick: () => this.logout() }, icon('logout'))),
      this.conn,
      el('div', { class: 'search-box' }, this.search),
      this.searchResults,
      this.statuses.strip(),
      this.chatList);
    this.main = el('main', { class: 'conversation', id: 'conversation', 'aria-label': 'Conversation' },
      el('div', { class: 'empty-state' }, el('h2', null, 'Parley'), el('p', null, 'Pick a chat, or search for someone to start one. Messages are end-to-end encrypted.')));
    this.details = el('aside', { class: 'details', id: 'details', 'aria-label': 'Details', hidden: true });
    this.shell = el('div', { class: 'shell' }, this.sidebar, this.main, this.details);
    fill(this, this.shell);
  }

  /** @param {'online' | 'connecting' | 'offline'} state */
  setConnState(state) {
    if (!this.conn) return;
    this.conn.dataset.state = state;
    this.conn.textContent = state === 'online' ? '' : state === 'connecting' ? 'Connecting…' : 'Offline: reconnecting…';
  }

  /**
   * @param {Profile | undefined} p
   * @param {string} cls
   */
  avatar(p, cls) {
    const name = p ? p.name || p.username : '?';
    const a = el('span', { class: cls, 'aria-hidden': 'true' }, initials(name));
    // An avatar that is a file id is fetched with the token; a URL (another
    // client's choice) would be a third-party request, which the CSP refuses.
    if (p && p.avatar && /^[A-Za-z0-9_-]{1,128}$/.test(p.avatar)) {
      let url = this.mediaURLs.get(p.avatar);
      if (!url) {
        // Fetched once per photo, not on every render of the chat list.
        url = this.api.bytes('/api/media/' + encodeURIComponent(p.avatar) + '/content').then((b) => URL.createObjectURL(new Blob([b])));
        url.catch(() => this.mediaURLs.delete(p.avatar));
        this.mediaURLs.set(p.avatar, url);
      }
      url.then((u) => fill(a, el('img', { src: u, alt: '' }))).catch(() => {});
    }
    return a;
  }

  // ---------- chats ----------

  async loadChats() {
    const list = await this.api.get('/api/chats?limit=200');
    for (const c of list) {
      if (c.type !== 'direct' && c.type !== 'group') continue;
      const chat = this.ensureChat(c.type, c.type === 'direct' ? c.peer.userId : c.group.groupId, c.conversationId);
      if (c.type === 'direct') {
        this.users.set(c.peer.userId, { ...(this.users.get(c.peer.userId) || {}), ...c.peer });
        this.presence.set(c.peer.userId, { online: c.peer.online, lastSeen: c.peer.lastSeen });
        chat.title = c.peer.name || c.peer.username;
      } else {
        chat.title = c.group.name;
        chat.group = c.group;
      }
      chat.unread = c.unreadCount || 0;
      chat.muted = !!c.muted;
      chat.lastAt = c.lastActivityAt || (c.lastMessage && c.lastMessage.sentAt) || '';
      if (c.lastMessage) {
        // unreadCount already counts what came before: sync must not count it again.
        chat.countedSeq = c.lastMessage.seq;
        const m = await this.toMsg(c.lastMessage);
        chat.last = this.preview(m);
      }
    }
    this.renderChatList();
  }

  /**
   * @param {'direct' | 'group'} kind
   * @param {string} key peer user id or group id
   * @param {string} [conversationId]
   * @returns {Chat}
   */
  ensureChat(kind, key, conversationId) {
    let chat = this.chats.get(key);
    if (!chat) {
      chat = { key, kind, conversationId: conversationId || '', peerId: kind === 'direct' ? key : '', groupId: kind === 'group' ? key : '',
        title: '', last: '', lastAt: '', unread: 0, muted: false, messages: [], loaded: false, complete: false, typingUntil: 0, typingWho: '', notices: [] };
      this.chats.set(key, chat);
    }
    if (conversationId && !chat.conversationId) chat.conversationId = conversationId;
    if (chat.conversationId) this.convToKey.set(chat.conversationId, key);
    return chat;
  }

  /** @param {Msg} m */
  preview(m) {
    if (m.deleted) return 'This message was deleted';
    if (m.undecryptable) return 'Encrypted message';
    if (m.media) return (m.type === 'image' ? '📷 ' : '📎 ') + (m.text || (m.type === 'image' ? 'Photo' : m.media.name || 'File'));
    return m.text;
  }

  renderChatList() {
    if (!this.chatList) return;
    const chats = [...this.chats.values()].filter((c) => c.lastAt || c.key === this.current)
      .sort((a, b) => (b.lastAt || '').localeCompare(a.lastAt || ''));
    fill(this.chatList, chats.map((c) => {
      const typing = c.typingUntil > Date.now();
      const peer = c.kind === 'direct' ? this.users.get(c.peerId) : undefined;
      return el('li', null, el('button', { class: 'chat-item' + (c.key === this.current ? ' active' : ''),
        'aria-current': c.key === this.current ? 'true' : false, 'data-chat': c.key, onclick: () => this.openChat(c.key, true) },
      c.kind === 'group' ? el('span', { class: 'avatar group', 'aria-hidden': 'true' }, initials(c.title)) : this.avatar(peer, 'avatar'),
      el('span', { class: 'chat-main' },
        el('span', { class: 'chat-top' }, el('span', { class: 'chat-title' }, c.title || '…'), el('time', null, clock(c.lastAt))),
        el('span', { class: 'chat-bottom' },
          el('span', { class: 'chat-last' + (typing ? ' typing' : '') }, typing ? 'typing…' : c.last),
          c.muted && el('span', { class: 'muted-icon', title: 'Muted' }, icon('muted'), el('span', { class: 'sr-only' }, 'muted')),
          c.unread > 0 && el('span', { class: 'badge' }, String(c.unread), el('span', { class: 'sr-only' }, ' unread'))))));
    }));
  }

  // ---------- search and new chats ----------

  onSearch() {
    clearTimeout(this.searchTimer);
    const q = this.search.value.trim();
    if (!q) {
      this.searchResults.hidden = true;
      return;
    }
    this.searchTimer = setTimeout(async () => {
      let people = [];
      try {
        people = await this.api.get('/api/users/search?q=' + encodeURIComponent(q));
      } catch (e) {
        fill(this.searchResults, el('li', { class: 'hint', role: 'alert' }, errorText(e)));
        this.searchResults.hidden = false;
        return;
      }
      if (this.search.value.trim() !== q) return;
      people = people.filter((/** @type {Profile} */ p) => p.userId !== this.session.userId);
      fill(this.searchResults, people.length ? people.map((/** @type {Profile} */ p) => {
        this.users.set(p.userId, { ...(this.users.get(p.userId) || {}), ...p });
        return el('li', null, el('button', { class: 'chat-item', 'data-user': p.username, onclick: () => this.startChat(p) },
          this.avatar(p, 'avatar'),
          el('span', { class: 'chat-main' }, el('span', { class: 'chat-title' }, p.name || p.username), el('span', { class: 'chat-last' }, '@' + p.username))));
      }) : el('li', { class: 'hint' }, 'No one found.'));
      this.searchResults.hidden = false;
    }, 200);
  }

  /** @param {Profile} p */
  async startChat(p) {
    const chat = this.ensureChat('direct', p.userId);
    chat.title = p.name || p.username;
    this.search.value = '';
    this.searchResults.hidden = true;
    this.api.post('/api/contacts', { contactId: p.userId }).catch(() => {});
    await this.openChat(p.userId, true);
  }

  // ---------- a conversation ----------

  /**
   * @param {string} key
   * @param {boolean} push
   */
  async openChat(key, push) {
    this.communities.leaveView();
    let chat = this.chats.get(key);
    if (!chat) {
      // A link to a chat not in the list yet: a user id or a group id.
      try {
        if (key.startsWith('group_')) {
          const g = await this.api.get('/api/groups/' + encodeURIComponent(key));
          chat = this.ensureChat('group', key);
          chat.title = g.name;
          chat.group = g;
        } else {
          const p = await this.profile(key);
          chat = this.ensureChat('direct', key);
          chat.title = p.name || p.username;
        }
      } catch {
        this.closeChat(true);
        return;
      }
    }
    if (push) this.go('/chat/' + encodeURIComponent(key));
    this.current = key;
    this.replyTo = null;
    this.editing = null;
    this.shell.classList.add('has-chat');
    this.renderConversation();
    this.renderChatList();
    if (!chat.loaded) await this.loadHistory(chat);
    if (chat.kind === 'direct') this.refreshPresence(chat.peerId);
    this.markSeen();
    if (this.composer) this.composer.focus();
  }

  /** @param {boolean} push */
  closeChat(push) {
    this.communities.leaveView();
    if (push) this.go('/');
    this.current = '';
    if (!this.shell) return;
    this.shell.classList.remove('has-chat');
    this.details.hidden = true;
    fill(this.main, el('div', { class: 'empty-state' }, el('h2', null, 'Parley'), el('p', null, 'Pick a chat, or search for someone to start one. Messages are end-to-end encrypted.')));
    this.renderChatList();
  }

  renderConversation() {
    const chat = this.chats.get(this.current);
    if (!chat) return;
    this.subtitle = el('span', { class: 'subtitle', 'aria-live': 'polite' });
    this.list = el('ol', { class: 'msg-list' });
    this.log = el('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: '0' }, this.list);
    this.log.addEventListener('scroll', () => {
      if (this.log.scrollTop < 80) this.loadOlder();
    });
    this.composer = /** @type {HTMLTextAreaElement} */ (el('textarea', { id: 'composer', rows: 1, placeholder: 'Type a message',
      'aria-label': 'Message', maxlength: 20000, onkeydown: (/** @type {KeyboardEvent} */ ev) => {
        if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          this.sendFromComposer();
        }
      }, oninput: () => this.typed() }));
    this.replyBar = el('div', { class: 'reply-bar', hidden: true });
    this.sendError = el('p', { class: 'form-error', role: 'alert' });
    const file = /** @type {HTMLInputElement} */ (el('input', { type: 'file', id: 'file-input', hidden: true, onchange: () => {
      const f = file.files && file.files[0];
      file.value = '';
      if (f) this.sendFile(f);
    } }));
    const schedule = /** @type {HTMLInputElement} */ (el('input', { type: 'datetime-local', 'aria-label': 'Send at', class: 'schedule-at', hidden: true }));
    const peer = chat.kind === 'direct' ? this.users.get(chat.peerId) : undefined;
    fill(this.main,
      el('header', { class: 'bar conv-bar' },
        el('button', { class: 'icon back', 'aria-label': 'Back to chats', onclick: () => this.closeChat(true) }, '←'),
        chat.kind === 'group' ? el('span', { class: 'avatar group', 'aria-hidden': 'true' }, initials(chat.title)) : this.avatar(peer, 'avatar'),
        el('button', { class: 'conv-title', onclick: () => this.showDetails() },
          el('h2', { id: 'conv-title' }, chat.title), this.subtitle),
        chat.kind === 'direct' && this.calls.buttons(chat.peerId),
        el('button', { class: 'icon', 'aria-label': 'Details', title: 'Details', onclick: () => this.showDetails() }, icon('info'))),
      this.log,
      el('footer', { class: 'composer' },
        this.replyBar, this.sendError,
        el('div', { class: 'composer-row' },
          el('button', { class: 'icon', 'aria-label': 'Attach a file', title: 'Attach', onclick: () => file.click() }, icon('attach')), file,
          this.composer,
          chat.kind === 'direct' && el('button', { class: 'icon', 'aria-label': 'Schedule', title: 'Send later', onclick: () => {
            schedule.hidden = !schedule.hidden;
            if (!schedule.hidden) schedule.focus();
          } }, icon('clock')),
          schedule,
          el('button', { class: 'send primary', 'aria-label': 'Send', onclick: () => {
            if (!schedule.hidden && schedule.value) {
              this.scheduleFromComposer(new Date(schedule.value));
              schedule.value = '';
              schedule.hidden = true;
            } else this.sendFromComposer();
          } }, '➤'))));
    this.renderMessages(true);
    this.renderSubtitle();
    if (!this.details.hidden) this.showDetails();
  }

  /** @param {string} userId */
  async refreshPresence(userId) {
    try {
      const p = await this.api.get('/api/users/' + encodeURIComponent(userId) + '/presence');
      this.presence.set(userId, p);
      this.renderSubtitle();
    } catch {
      // presence is best effort
    }
  }

  renderSubtitle() {
    const chat = this.chats.get(this.current);
    if (!chat || !this.subtitle) return;
    if (chat.typingUntil > Date.now()) {
      this.subtitle.textContent = chat.kind === 'group' ? `${chat.typingWho} is typing…` : 'typing…';
      this.subtitle.dataset.typing = 'true';
      return;
    }
    delete this.subtitle.dataset.typing;
    if (chat.kind === 'group') {
      const g = chat.group;
      this.subtitle.textContent = g && g.members ? g.members.map((/** @type {any} */ m) => this.nameOf(m.userId)).join(', ') : '';
      return;
    }
    const p = this.presence.get(chat.peerId);
    this.subtitle.textContent = !p ? '' : p.online ? 'online' : p.lastSeen ? 'last seen ' + new Date(p.lastSeen).toLocaleString() : '';
  }

  /** @param {string} userId */
  nameOf(userId) {
    if (this.session && userId === this.session.userId) return 'You';
    const p = this.users.get(userId);
    return p ? p.name || p.username : 'Someone';
  }

  /** @param {Chat} chat */
  async loadHistory(chat) {
    if (chat.loading) return;
    chat.loading = true;
    try {
      const oldest = chat.messages.find((m) => m.seq > 0);
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (chat.loaded && oldest) q.set('beforeSeq', String(oldest.seq));
      const path = chat.kind === 'direct'
        ? `/api/messages/${encodeURIComponent(this.session.userId)}/${encodeURIComponent(chat.peerId)}?${q}`
        : `/api/group-messages/${encodeURIComponent(chat.groupId)}?${q}`;
      const page = await this.api.get(path);
      for (const raw of page) {
        if (raw.conversationId) this.ensureChat(chat.kind, chat.key, raw.conversationId);
        await this.addMessage(chat, raw, false);
      }
      if (page.length < PAGE) chat.complete = true;
      chat.loaded = true;
      if (chat.kind === 'group' && !(chat.group && chat.group.members)) {
        chat.group = await this.api.get('/api/groups/' + encodeURIComponent(chat.groupId));
      }
      if (chat.kind === 'group') {
        // Names for the header and the senders.
        await Promise.all(chat.group.members.filter((/** @type {any} */ x) => !this.users.has(x.userId))
          .map((/** @type {any} */ x) => this.profile(x.userId).catch(() => {})));
      }
    } catch (e) {
      if (this.sendError && this.current === chat.key) this.sendError.textContent = errorText(e);
    } finally {
      chat.loading = false;
    }
    if (this.current === chat.key) {
      this.renderMessages(!chat.olderRequested);
      this.renderSubtitle();
    }
  }

  async loadOlder() {
    const chat = this.chats.get(this.current);
    if (!chat || !chat.loaded || chat.complete || chat.loading) return;
    chat.olderRequested = true;
    const before = this.log.scrollHeight;
    await this.loadHistory(chat);
    this.log.scrollTop = this.log.scrollHeight - before;
  }

  /**
   * Decrypts a server message into what the screen shows.
   * @param {any} raw
   * @returns {Promise<Msg>}
   */
  async toMsg(raw) {
    /** @type {Msg} */
    const m = { id: raw.messageId, clientMessageId: raw.clientMessageId || '', seq: raw.seq || 0, senderId: raw.senderId,
      sentAt: raw.sentAt, status: raw.status || 'sent', text: '', media: null, replyToId: raw.replyToId || '', reactions: raw.reactions || [],
      editedAt: raw.editedAt || '', deleted: !!raw.deletedForEveryone, pending: false, failed: false, undecryptable: false, type: raw.type || 'text' };
    if (!m.deleted && raw.content) {
      try {
        const body = await e2e.decryptMessage(raw.content, this.device);
        m.text = typeof body.text === 'string' ? body.text : '';
        m.media = body.media || null;
      } catch {
        m.undecryptable = true;
      }
    }
    return m;
  }

  /**
   * Adds a server message to a chat unless it is there already.
   * @param {Chat} chat
   * @param {any} raw
   * @param {boolean} live it arrived now (socket or sync), not from history
   */
  async addMessage(chat, raw, live) {
    if (this.seen.has(raw.messageId)) {
      const have = chat.messages.find((x) => x.id === raw.messageId);
      if (have && raw.status && STATUS_RANK[raw.status] > STATUS_RANK[have.status]) have.status = raw.status;
      return null;
    }
    this.seen.add(raw.messageId);
    const m = await this.toMsg(raw);
    // My own send echoed back (this device or another): replace the pending copy.
    const pending = m.clientMessageId && chat.messages.find((x) => x.clientMessageId === m.clientMessageId && x.senderId === m.senderId && !x.id);
    if (pending) {
      Object.assign(pending, m, { status: STATUS_RANK[pending.status] > STATUS_RANK[m.status] ? pending.status : m.status });
    } else {
      chat.messages.push(m);
      chat.messages.sort((a, b) => (a.seq || Infinity) - (b.seq || Infinity));
    }
    if (!chat.lastAt || m.sentAt >= chat.lastAt) {
      chat.lastAt = m.sentAt;
      chat.last = this.preview(m);
    }
    if (live && m.senderId !== this.session.userId) {
      const visible = this.current === chat.key && document.visibilityState === 'visible';
      if (!visible && m.seq > (chat.countedSeq || 0)) chat.unread++;
      this.receipt(chat, m, visible ? 'seen' : 'delivered');
    }
    return m;
  }

  /**
   * @param {Chat} chat
   * @param {Msg} m
   * @param {'delivered' | 'seen'} status
   */
  receipt(chat, m, status) {
    if (!m.id || m.senderId === this.session.userId) return;
    // Marking a message marks every earlier one from its sender: a burst
    // (a sync page, a busy group) sends one receipt per chat and sender,
    // for its latest message, with the strongest status asked for.
    const key = chat.key + ' ' + m.senderId;
    const due = this.receipts.get(key);
    if (due) {
      if (m.seq > due.m.seq) due.m = m;
      if (status === 'seen') due.status = 'seen';
      return;
    }
    this.receipts.set(key, { m, status });
    setTimeout(() => {
      const { m: last, status: st } = this.receipts.get(key);
      this.receipts.delete(key);
      const path = chat.kind === 'direct' ? '/api/status' : '/api/group-messages/status';
      this.api.post(path, { messageId: last.id, status: st }).catch(() => {});
    }, 50);
  }

  markSeen() {
    const chat = this.chats.get(this.current);
    if (!chat || document.visibilityState !== 'visible') return;
    const last = [...chat.messages].reverse().find((m) => m.id && m.senderId !== this.session.userId);
    if (last && chat.seenUpTo !== last.id) {
      chat.seenUpTo = last.id;
      this.receipt(chat, last, 'seen');
    }
    if (chat.unread) {
      chat.unread = 0;
      this.renderChatList();
    }
  }

  /** @param {boolean} toBottom */
  renderMessages(toBottom) {
    const chat = this.chats.get(this.current);
    if (!chat || !this.log) return;
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    const byId = new Map(chat.messages.map((m) => [m.id, m]));
    /** @type {(HTMLElement)[]} */
    const items = [];
    if (chat.loaded && chat.complete) items.push(el('li', { class: 'notice' }, 'Messages are end-to-end encrypted. No one outside this chat, not even Parley, can read them.'));
    let day = '';
    const notices = [...chat.notices];
    for (const m of chat.messages) {
      while (notices.length && notices[0].at <= m.sentAt) items.push(el('li', { class: 'notice key-changed', role: 'note' }, notices.shift().text));
      const d = m.sentAt ? new Date(m.sentAt).toDateString() : '';
      if (d && d !== day) {
        day = d;
        items.push(el('li', { class: 'day' }, new Date(m.sentAt).toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short' })));
      }
      items.push(this.renderMessage(chat, m, byId));
    }
    for (const n of notices) items.push(el('li', { class: 'notice key-changed', role: 'note' }, n.text));
    fill(this.list, items);
    if (toBottom || atBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  /**
   * @param {Chat} chat
   * @param {Msg} m
   * @param {Map<string, Msg>} byId
   */
  renderMessage(chat, m, byId) {
    const mine = m.senderId === this.session.userId;
    const status = m.failed ? 'failed' : m.pending ? 'pending' : m.status;
    const ticks = { pending: '🕓', sent: '✓', delivered: '✓✓', seen: '✓✓', failed: '!' }[status] || '';
    const tickLabel = { pending: 'Sending', sent: 'Sent', delivered: 'Delivered', seen: 'Seen', failed: 'Not sent' }[status] || '';
    const quoted = m.replyToId && byId.get(m.replyToId);
    /** @type {any[]} */
    const body = [];
    if (chat.kind === 'group' && !mine) body.push(el('span', { class: 'sender' }, this.nameOf(m.senderId)));
    if (m.replyToId) body.push(el('blockquote', { class: 'quote' }, quoted ? `${this.nameOf(quoted.senderId)}: ${this.preview(quoted)}` : 'Earlier message'));
    if (m.deleted) body.push(el('em', { class: 'deleted' }, 'This message was deleted'));
    else if (m.undecryptable) body.push(el('em', { class: 'deleted' }, 'This message was not encrypted for this device.'));
    else {
      if (m.media) body.push(this.renderMedia(m));
      if (m.text) body.push(el('span', { class: 'text' }, m.text));
    }
    const reactions = new Map();
    for (const r of m.reactions || []) if (r.reaction) reactions.set(r.reaction, (reactions.get(r.reaction) || 0) + 1);
    return el('li', { class: 'msg ' + (mine ? 'out' : 'in'), 'data-mid': m.id || '', 'data-cid': m.clientMessageId, 'data-status': status },
      el('div', { class: 'bubble' }, body,
        el('span', { class: 'meta' },
          m.editedAt && !m.deleted && el('span', { class: 'edited' }, 'edited'),
          el('time', { datetime: m.sentAt || '' }, clock(m.sentAt)),
          mine && el('span', { class: 'ticks ' + status, 'aria-label': tickLabel, title: tickLabel, role: 'img' }, ticks)),
        reactions.size > 0 && el('span', { class: 'reactions', 'aria-label': 'Reactions' }, [...reactions].map(([r, n]) => `${r}${n > 1 ? n : ''}`).join(' '))),
      m.failed && el('button', { class: 'retry', onclick: () => this.retry(chat, m) }, 'Not sent. Retry'),
      m.id && !m.deleted && el('button', { class: 'icon msg-menu', 'aria-label': 'Message actions', 'aria-haspopup': 'menu', onclick: (/** @type {MouseEvent} */ ev) => this.messageMenu(chat, m, /** @type {HTMLElement} */ (ev.currentTarget)) }, '⌄'));
  }

  /** @param {Msg} m */
  renderMedia(m) {
    const media = m.media;
    if (m.type === 'image') {
      const img = /** @type {HTMLImageElement} */ (el('img', { class: 'photo', alt: media.name ? `Photo ${media.name}` : 'Photo', 'data-state': 'loading' }));
      const fig = el('button', { class: 'photo-btn', 'aria-label': 'Open photo', onclick: () => this.openMedia(m, true) }, img);
      let url = this.mediaURLs.get(media.fileId);
      if (!url) {
        // Downloaded and decrypted once per file, not on every render.
        const which = media.thumb ? '?thumbnail=true' : '';
        url = this.api.bytes('/api/media/' + encodeURIComponent(media.fileId) + '/content' + which)
          .then((b) => e2e.decryptFile(b, media.key, media.thumb ? media.thumbIv : media.iv))
          .then((plain) => URL.createObjectURL(new Blob([plain], { type: media.thumb ? 'image/jpeg' : media.mime })));
        url.catch(() => this.mediaURLs.delete(media.fileId));
        this.mediaURLs.set(media.fileId, url);
      }
      url.then((u) => {
        img.src = u;
        img.dataset.state = 'decrypted';
      }).catch(() => { img.alt = 'Photo could not be decrypted'; img.dataset.state = 'failed'; });
      return fig;
    }
    return el('button', { class: 'file', onclick: () => this.openMedia(m, false) }, '📄 ', media.name || 'File', el('span', { class: 'fine' }, ` ${Math.ceil((media.size || 0) / 1024)} KB`));
  }

  /**
   * Downloads, decrypts and shows (image) or saves (other files) a message's file.
   * @param {Msg} m
   * @param {boolean} show
   */
  async openMedia(m, show) {
    try {
      const b = await this.api.bytes('/api/media/' + encodeURIComponent(m.media.fileId) + '/content');
      const plain = await e2e.decryptFile(b, m.media.key, m.media.iv);
      const url = URL.createObjectURL(new Blob([plain], { type: m.media.mime || 'application/octet-stream' }));
      if (show) {
        const dlg = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'viewer', 'aria-label': 'Photo', onclose: () => { dlg.remove(); URL.revokeObjectURL(url); } },
          el('img', { src: url, alt: m.media.name || 'Photo' }),
          el('form', { method: 'dialog' }, el('button', { class: 'primary' }, 'Close'))));
        this.append(dlg);
        dlg.showModal();
      } else {
        const a = el('a', { href: url, download: m.media.name || 'file' });
        a.click();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      }
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  // ---------- message actions ----------

  /**
   * @param {Chat} chat
   * @param {Msg} m
   * @param {HTMLElement} anchor
   */
  messageMenu(chat, m, anchor) {
    const mine = m.senderId === this.session.userId;
    // The menu lives outside the message list, which re-renders on every
    // event; focus returns to the message's button as it is then.
    for (const old of this.querySelectorAll('.menu')) old.remove();
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      menu.remove();
      const btn = /** @type {HTMLElement | null} */ (this.querySelector(`li.msg[data-mid="${CSS.escape(m.id)}"] .msg-menu`));
      if (btn) btn.focus();
    };
    const item = (/** @type {string} */ label, /** @type {() => void} */ fn) => el('button', { role: 'menuitem', onclick: () => { close(); fn(); } }, label);
    const menu = el('div', { class: 'menu', role: 'menu', 'aria-label': 'Message actions', onkeydown: (/** @type {KeyboardEvent} */ ev) => {
      const items = /** @type {HTMLElement[]} */ ([...menu.querySelectorAll('[role=menuitem]')]);
      const i = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
      if (ev.key === 'Escape') { ev.stopPropagation(); close(); }
      if (ev.key === 'ArrowDown') { ev.preventDefault(); items[(i + 1) % items.length].focus(); }
      if (ev.key === 'ArrowUp') { ev.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
    } },
    item('Reply', () => this.startReply(m)),
    ['👍', '❤️', '😂', '😮', '🙏'].map((r) => item('React ' + r, () => this.react(chat, m, r))),
    (m.reactions || []).some((r) => r.userId === this.session.userId) && item('Remove reaction', () => this.react(chat, m, '')),
    chat.kind === 'group' && mine && item('Info (delivered, seen)', () => this.groupInfo(m)),
    mine && chat.kind === 'direct' && !m.media && item('Edit', () => this.startEdit(m)),
    item('Delete for me', () => this.deleteMessage(chat, m, false)),
    mine && item('Delete for everyone', () => this.deleteMessage(chat, m, true)));
    const r = anchor.getBoundingClientRect();
    menu.style.top = Math.min(r.bottom + 4, innerHeight - 330) + 'px';
    if (mine) menu.style.right = Math.max(8, innerWidth - r.right) + 'px';
    else menu.style.left = Math.max(8, r.left) + 'px';
    this.append(menu);
    /** @type {HTMLElement} */ (menu.querySelector('[role=menuitem]')).focus();
    menu.addEventListener('focusout', (ev) => {
      // Removing the menu blurs its focused item: close runs once.
      if (open && !menu.contains(/** @type {Node} */ (ev.relatedTarget))) {
        open = false;
        queueMicrotask(() => menu.remove());
      }
    });
  }

  /** @param {Msg} m */
  startReply(m) {
    this.replyTo = m;
    this.editing = null;
    fill(this.replyBar, el('span', null, `Replying to ${this.nameOf(m.senderId)}: ${this.preview(m)}`),
      el('button', { class: 'icon', 'aria-label': 'Cancel reply', onclick: () => this.cancelCompose() }, '✕'));
    this.replyBar.hidden = false;
    this.composer.focus();
  }

  /** @param {Msg} m */
  startEdit(m) {
    this.editing = m;
    this.replyTo = null;
    fill(this.replyBar, el('span', null, 'Editing message'), el('button', { class: 'icon', 'aria-label': 'Cancel edit', onclick: () => this.cancelCompose() }, '✕'));
    this.replyBar.hidden = false;
    this.composer.value = m.text;
    this.composer.focus();
  }

  cancelCompose() {
    this.replyTo = null;
    if (this.editing) this.composer.value = '';
    this.editing = null;
    this.replyBar.hidden = true;
  }

  /**
   * @param {Chat} chat
   * @param {Msg} m
   * @param {string} reaction
   */
  async react(chat, m, reaction) {
    try {
      await this.api.post(chat.kind === 'direct' ? '/api/messages/react' : '/api/group-messages/react', { messageId: m.id, reaction });
      m.reactions = (m.reactions || []).filter((r) => r.userId !== this.session.userId);
      if (reaction) m.reactions.push({ userId: this.session.userId, reaction });
      this.renderMessages(false);
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /**
   * @param {Chat} chat
   * @param {Msg} m
   * @param {boolean} everyone
   */
  async deleteMessage(chat, m, everyone) {
    try {
      await this.api.post(chat.kind === 'direct' ? '/api/messages/delete' : '/api/group-messages/delete', { messageId: m.id, deleteForEveryone: everyone });
      if (everyone) Object.assign(m, { deleted: true, text: '', media: null });
      else chat.messages = chat.messages.filter((x) => x !== m);
      this.renderMessages(false);
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /** @param {Msg} m */
  async groupInfo(m) {
    try {
      const st = await this.api.get('/api/group-messages/' + encodeURIComponent(m.id) + '/status');
      const list = (/** @type {string} */ title, /** @type {any[]} */ xs) => el('section', null, el('h3', null, title),
        el('ul', { class: 'plain' }, (xs || []).length ? xs.map((x) => el('li', null, `${this.nameOf(x.userId)} · ${new Date(x.at).toLocaleTimeString()}`)) : el('li', null, 'No one yet')));
      this.details.hidden = false;
      fill(this.details, el('header', { class: 'bar' }, el('h2', null, 'Message info'),
        el('button', { class: 'icon', 'aria-label': 'Close details', onclick: () => { this.details.hidden = true; } }, icon('close'))),
      el('div', { class: 'details-body' }, list('Seen by', st.seen), list('Delivered to', st.delivered)));
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  // ---------- sending ----------

  /**
   * Every device that may read a message in chat: the recipients' and mine.
   * @param {Chat} chat
   * @returns {Promise<{devices: e2e.DeviceKey[], primary: string}>}
   */
  async readers(chat) {
    /** @type {string[]} */
    let users;
    if (chat.kind === 'direct') users = [chat.peerId];
    else {
      if (!chat.group || !chat.group.members) chat.group = await this.api.get('/api/groups/' + encodeURIComponent(chat.groupId));
      users = chat.group.members.map((/** @type {any} */ x) => x.userId).filter((/** @type {string} */ id) => id !== this.session.userId);
    }
    // key_changed reaches contacts and direct peers, not group members nor
    // the user's own other devices: those keys are read fresh for each send.
    const me = this.session.userId;
    const lists = await Promise.all([...users, me].map((u) => this.keysOf(u, chat.kind === 'group' || u === me)));
    const devices = lists.flat();
    const primary = chat.kind === 'direct' && lists[0].length ? lists[0][0].deviceId : '';
    return { devices, primary };
  }

  /**
   * The device keys of a user, cached until key_changed unless fresh.
   * @param {string} userId
   * @param {boolean} [fresh]
   * @returns {Promise<e2e.DeviceKey[]>}
   */
  keysOf(userId, fresh) {
    let p = this.keyCache.get(userId);
    if (!p || fresh) {
      p = this.api.get('/api/users/' + encodeURIComponent(userId) + '/keys');
      p.catch(() => this.keyCache.delete(userId));
      this.keyCache.set(userId, p);
    }
    return p;
  }

  /** @param {string} userId @returns {Promise<Profile>} */
  async profile(userId) {
    const have = this.users.get(userId);
    if (have && have.username) return have;
    const p = await this.api.get('/api/users/' + encodeURIComponent(userId));
    this.users.set(userId, p);
    return p;
  }

  sendFromComposer() {
    const text = this.composer.value.trim();
    if (!text) return;
    const chat = this.chats.get(this.current);
    if (!chat) return;
    this.composer.value = '';
    this.sendError.textContent = '';
    if (this.editing) {
      const m = this.editing;
      this.cancelCompose();
      this.edit(chat, m, text);
      return;
    }
    const replyTo = this.replyTo;
    this.cancelCompose();
    this.send(chat, { text }, 'text', '', replyTo ? replyTo.id : '');
    this.typingSent(false);
  }

  /**
   * Shows the message at once, encrypts and posts it; a failure leaves it
   * on screen with a Retry button that resends the same clientMessageId.
   * @param {Chat} chat
   * @param {{text: string, media?: any}} body
   * @param {string} type
   * @param {string} mediaId
   * @param {string} replyToId
   */
  async send(chat, body, type, mediaId, replyToId) {
    /** @type {Msg} */
    const m = { id: '', clientMessageId: randomId(), seq: 0, senderId: this.session.userId, sentAt: new Date().toISOString(), status: 'pending',
      text: body.text, media: body.media || null, replyToId, reactions: [], editedAt: '', deleted: false, pending: true, failed: false, undecryptable: false, type };
    chat.messages.push(m);
    chat.last = this.preview(m);
    chat.lastAt = m.sentAt;
    this.renderMessages(true);
    this.renderChatList();
    try {
      const { devices, primary } = await this.readers(chat);
      m.encrypted = await e2e.encryptMessage(body, devices, primary);
    } catch (e) {
      m.failed = true;
      this.sendError.textContent = errorText(e);
      this.renderMessages(false);
      return;
    }
    m.mediaId = mediaId;
    await this.post(chat, m);
  }

  /**
   * @param {Chat} chat
   * @param {Msg & {mediaId?: string}} m
   */
  async post(chat, m) {
    /** @type {Record<string, any>} */
    const req = { encryptedContent: m.encrypted, type: m.type, clientMessageId: m.clientMessageId };
    if (m.mediaId) req.mediaId = m.mediaId;
    if (m.replyToId) req.replyToId = m.replyToId;
    try {
      let res;
      if (chat.kind === 'direct') res = await this.api.post('/api/messages/send', { ...req, recipientId: chat.peerId });
      else res = await this.api.post('/api/group-messages/send', { ...req, groupId: chat.groupId });
      m.pending = false;
      m.failed = false;
      if (!m.id) {
        m.id = res.messageId;
        m.seq = res.seq;
        m.sentAt = res.sentAt;
        if (STATUS_RANK[m.status] < STATUS_RANK.sent) m.status = 'sent';
      }
      if (this.seen.has(m.id)) {
        // The socket echo won the race and added a second copy: keep one.
        const dupes = chat.messages.filter((x) => x.id === m.id);
        if (dupes.length > 1) chat.messages = chat.messages.filter((x) => x === m || x.id !== m.id);
      }
      this.seen.add(m.id);
      if (res.conversationId) this.ensureChat(chat.kind, chat.key, res.conversationId);
    } catch (e) {
      m.failed = true;
      if (this.current === chat.key) this.sendError.textContent = errorText(e);
    }
    chat.messages.sort((a, b) => (a.seq || Infinity) - (b.seq || Infinity));
    if (this.current === chat.key) this.renderMessages(false);
    this.renderChatList();
  }

  /**
   * @param {Chat} chat
   * @param {Msg} m
   */
  retry(chat, m) {
    m.failed = false;
    this.sendError.textContent = '';
    this.renderMessages(false);
    if (!m.encrypted) {
      chat.messages = chat.messages.filter((x) => x !== m);
      this.send(chat, { text: m.text, media: m.media }, m.type, '', m.replyToId);
      return;
    }
    this.post(chat, m);
  }

  /**
   * @param {Chat} chat
   * @param {Msg} m
   * @param {string} text
   */
  async edit(chat, m, text) {
    try {
      const { devices, primary } = await this.readers(chat);
      const encryptedContent = await e2e.encryptMessage({ text }, devices, primary);
      const res = await this.api.post('/api/messages/edit', { messageId: m.id, encryptedContent });
      m.text = text;
      m.editedAt = res.editedAt;
      this.renderMessages(false);
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /** @param {Date} at */
  async scheduleFromComposer(at) {
    const text = this.composer.value.trim();
    const chat = this.chats.get(this.current);
    if (!text || !chat || chat.kind !== 'direct') return;
    try {
      const { devices, primary } = await this.readers(chat);
      const encryptedContent = await e2e.encryptMessage({ text }, devices, primary);
      await this.api.post('/api/messages/schedule', { recipientId: chat.peerId, encryptedContent, type: 'text', clientMessageId: randomId(), scheduledAt: at.toISOString() });
      this.composer.value = '';
      this.sendError.textContent = `Scheduled for ${at.toLocaleString()}.`;
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /** @param {File} file */
  async sendFile(file) {
    const chat = this.chats.get(this.current);
    if (!chat) return;
    this.sendError.textContent = '';
    const isImage = /^image\/(png|jpeg|gif|webp)$/.test(file.type);
    try {
      const data = await file.arrayBuffer();
      const thumb = isImage ? await thumbnail(file) : null;
      const enc = await e2e.encryptFile(data, thumb);
      const meta = { fileType: isImage ? 'image' : 'document', originalName: 'encrypted', size: enc.body.byteLength,
        mimeType: 'application/octet-stream', iv: enc.iv, thumbnailIv: thumb ? enc.thumbIv : '', encryptedKey: '' };
      const form = new FormData();
      form.append('encryptedMetadata', JSON.stringify(meta));
      form.append('hasThumbnail', thumb ? 'true' : 'false');
      form.append('file', new Blob([enc.body], { type: 'application/octet-stream' }), 'file');
      if (enc.thumbBody) form.append('thumbnail', new Blob([enc.thumbBody], { type: 'application/octet-stream' }), 'thumbnail');
      const up = await this.api.call('POST', '/api/media/upload', form);
      const media = { fileId: up.fileId, key: enc.key, iv: enc.iv, thumbIv: enc.thumbIv, thumb: !!thumb, mime: file.type || 'application/octet-stream', name: file.name, size: file.size };
      const replyTo = this.replyTo;
      this.cancelCompose();
      await this.send(chat, { text: '', media }, isImage ? 'image' : 'document', up.fileId, replyTo ? replyTo.id : '');
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  // ---------- typing ----------

  typed() {
    const now = Date.now();
    if (now - this.lastTypingSent < 2500) return;
    this.lastTypingSent = now;
    this.typingSent(true);
  }

  /** @param {boolean} on */
  typingSent(on) {
    const chat = this.chats.get(this.current);
    if (!chat) return;
    if (!on) this.lastTypingSent = 0;
    const body = chat.kind === 'direct' ? { recipientId: chat.peerId, isTyping: on } : { groupId: chat.groupId, isTyping: on };
    if (!this.live || !this.live.send('typing', body)) {
      this.api.post(chat.kind === 'direct' ? '/api/messages/typing' : '/api/group-messages/typing', body).catch(() => {});
    }
  }

  // ---------- events (socket and sync) ----------

  /**
   * @param {string} event
   * @param {any} d
   * @param {boolean} fromSync
   */
  onEvent(event, d, fromSync) {
    this.queue = (this.queue || Promise.resolve()).then(() => this.handle(event, d, fromSync)).catch((e) => console.error('event', event, e));
  }

  /**
   * @param {string} event
   * @param {any} d
   * @param {boolean} fromSync
   */
  async handle(event, d, fromSync) {
    const me = this.session.userId;
    switch (event) {
      case 'new_message':
      case 'new_group_message': {
        let chat;
        if (event === 'new_message') {
          const peer = d.senderId === me ? d.recipientId : d.senderId;
          chat = this.ensureChat('direct', peer, d.conversationId);
          if (!chat.title) {
            const p = await this.profile(peer).catch(() => null);
            chat.title = p ? p.name || p.username : 'Unknown';
          }
        } else {
          chat = this.ensureChat('group', d.groupId, d.conversationId);
          if (!chat.title) {
            chat.group = await this.api.get('/api/groups/' + encodeURIComponent(d.groupId)).catch(() => null);
            chat.title = chat.group ? chat.group.name : 'Group';
          }
          if (d.senderId !== me && !this.users.has(d.senderId)) await this.profile(d.senderId).catch(() => {});
        }
        const m = await this.addMessage(chat, d, true);
        if (m && chat.typingUntil && d.senderId !== me) chat.typingUntil = 0;
        if (this.current === chat.key) {
          this.renderMessages(false);
          this.renderSubtitle();
        }
        this.renderChatList();
        break;
      }
      case 'message_status_update':
      case 'group_message_status_update': {
        const key = this.convToKey.get(d.conversationId) || d.groupId;
        const chat = key && this.chats.get(key);
        if (!chat || d.userId === me) break;
        for (const m of chat.messages) {
          if (m.senderId === me && m.seq && m.seq <= (d.upToSeq || 0) && STATUS_RANK[d.status] > STATUS_RANK[m.status]) m.status = d.status;
          else if (m.id === d.messageId && STATUS_RANK[d.status] > STATUS_RANK[m.status]) m.status = d.status;
        }
        if (this.current === chat.key) this.renderMessages(false);
        break;
      }
      case 'typing_indicator': {
        if (fromSync || d.senderId === me) break;
        const chat = this.chats.get(d.groupId || d.senderId);
        if (!chat) break;
        chat.typingUntil = d.isTyping ? Date.now() + 6000 : 0;
        chat.typingWho = this.nameOf(d.senderId);
        this.renderChatList();
        this.renderSubtitle();
        clearTimeout(chat.typingTimer);
        chat.typingTimer = setTimeout(() => { this.renderChatList(); this.renderSubtitle(); }, 6100);
        break;
      }
      case 'message_edited':
      case 'message_reaction':
      case 'group_message_reaction':
      case 'message_deleted':
      case 'group_message_deleted': {
        if (d.channelId) {
          if (event === 'message_reaction') await this.communities.onEvent(event, d, fromSync);
          break;
        }
        const key = this.convToKey.get(d.conversationId) || d.groupId;
        const chat = key && this.chats.get(key);
        const m = chat && chat.messages.find((x) => x.id === d.messageId);
        if (!m) break;
        if (event === 'message_edited') {
          const fresh = await this.toMsg(d);
          Object.assign(m, { text: fresh.text, media: fresh.media, editedAt: fresh.editedAt, undecryptable: fresh.undecryptable });
        } else if (event.endsWith('reaction')) {
          m.reactions = (m.reactions || []).filter((r) => r.userId !== d.userId);
          if (d.reaction) m.reactions.push({ userId: d.userId, reaction: d.reaction });
        } else if (d.deleteForEveryone) {
          Object.assign(m, { deleted: true, text: '', media: null });
        } else if (d.deletedBy === me) {
          chat.messages = chat.messages.filter((x) => x !== m);
        }
        if (this.current === chat.key) this.renderMessages(false);
        break;
      }
      case 'presence_update':
        this.presence.set(d.userId, { online: d.online, lastSeen: d.lastSeen });
        this.renderSubtitle();
        break;
      case 'profile_updated':
        this.users.set(d.userId, { ...(this.users.get(d.userId) || {}), ...d });
        this.keyCache.delete(d.userId);
        {
          const chat = this.chats.get(d.userId);
          if (chat) chat.title = d.name || d.username;
        }
        this.renderChatList();
        break;
      case 'key_changed': {
        this.keyCache.delete(d.userId);
        if (d.userId === me) break;
        const chat = this.chats.get(d.userId);
        if (chat) {
          chat.notices.push({ at: new Date().toISOString(), text: `${this.nameOf(d.userId)}'s security key changed (a new or reinstalled device). Compare the safety code in the details if you want to be sure.` });
          if (this.current === chat.key) this.renderMessages(false);
        }
        break;
      }
      case 'group_member_added':
      case 'group_member_removed':
      case 'group_updated':
      case 'group_deleted': {
        const chat = this.chats.get(d.groupId);
        if (event === 'group_deleted' || (event === 'group_member_removed' && (d.memberId === me || d.userId === me))) {
          if (chat) {
            chat.notices.push({ at: new Date().toISOString(), text: event === 'group_deleted' ? 'This group was deleted.' : 'You are no longer a member of this group.' });
            chat.readOnly = true;
          }
        } else {
          const g = await this.api.get('/api/groups/' + encodeURIComponent(d.groupId)).catch(() => null);
          if (g) {
            const c = this.ensureChat('group', d.groupId, g.conversationId);
            c.group = g;
            c.title = g.name;
            if (!c.lastAt) c.lastAt = g.createdAt || new Date().toISOString();
          }
        }
        this.renderChatList();
        if (this.current === d.groupId) { this.renderSubtitle(); if (!this.details.hidden) this.showDetails(); }
        break;
      }
      default:
        if (event.startsWith('call_')) await this.calls.onEvent(event, d, fromSync);
        else if (event.startsWith('status_')) await this.statuses.onEvent(event, d);
        else if (event.startsWith('channel_') || event.startsWith('community_') || event === 'new_channel_message') await this.communities.onEvent(event, d, fromSync);
        break;
    }
  }

  // ---------- details, groups, profile, settings ----------

  async showDetails() {
    const chat = this.chats.get(this.current);
    if (!chat) return;
    this.details.hidden = false;
    const close = el('button', { class: 'icon', 'aria-label': 'Close details', onclick: () => { this.details.hidden = true; this.composer && this.composer.focus(); } }, icon('close'));
    const body = el('div', { class: 'details-body' });
    fill(this.details, el('header', { class: 'bar' }, el('h2', null, chat.kind === 'group' ? 'Group info' : 'Contact info'), close), body);
    const status = el('p', { class: 'form-error', role: 'alert' });
    const act = (/** @type {string} */ label, /** @type {() => Promise<any>} */ fn) => el('button', { class: 'wide', onclick: () => fn().then(() => this.showDetails()).catch((e) => { status.textContent = errorText(e); }) }, label);
    if (chat.kind === 'direct') {
      const p = await this.profile(chat.peerId).catch(() => this.users.get(chat.peerId));
      const mine = await this.keysOf(this.session.userId);
      const theirs = await this.keysOf(chat.peerId).catch(() => []);
      const code = await e2e.safetyCode({ userId: this.session.userId, devices: mine }, { userId: chat.peerId, devices: theirs });
      const blocked = this.blocked.has(chat.peerId);
      fill(body, this.avatar(p, 'avatar big'), el('h3', null, p.name || p.username), el('p', { class: 'fine' }, '@' + p.username),
        p.about && el('p', null, p.about),
        el('section', { class: 'safety' }, el('h3', null, 'Safety code'),
          el('p', { class: 'fine' }, 'Compare this code with the one on your contact\'s screen. If they match, no one is in the middle.'),
          el('code', { class: 'safety-code', id: 'safety-code' }, code)),
        act(chat.muted ? 'Unmute notifications' : 'Mute notifications', async () => {
          await this.api.post(chat.muted ? '/api/users/unmute' : '/api/users/mute', { mutedUserId: chat.peerId });
          chat.muted = !chat.muted;
          this.renderChatList();
        }),
        act(blocked ? 'Unblock' : 'Block', async () => {
          await this.api.post(blocked ? '/api/users/unblock' : '/api/users/block', { blockedUserId: chat.peerId });
          if (blocked) this.blocked.delete(chat.peerId); else this.blocked.add(chat.peerId);
        }),
        status);
      return;
    }
    const g = chat.group = await this.api.get('/api/groups/' + encodeURIComponent(chat.groupId)).catch(() => chat.group);
    const myRole = ((g.members || []).find((/** @type {any} */ x) => x.userId === this.session.userId) || {}).role;
    for (const x of g.members || []) if (!this.users.has(x.userId)) await this.profile(x.userId).catch(() => {});
    const add = /** @type {HTMLInputElement} */ (el('input', { type: 'text', 'aria-label': 'Username to add', placeholder: 'username' }));
    const settings = g.settings || {};
    const toggle = (/** @type {string} */ name, /** @type {string} */ label) => el('label', { class: 'check' },
      el('input', { type: 'checkbox', checked: !!settings[name], disabled: myRole !== 'admin', onchange: (/** @type {Event} */ ev) => {
        this.api.post('/api/groups/settings', { groupId: g.groupId, settings: { ...settings, [name]: /** @type {HTMLInputElement} */ (ev.target).checked } })
          .catch((e) => { status.textContent = errorText(e); });
      } }), label);
    fill(body, el('span', { class: 'avatar big group', 'aria-hidden': 'true' }, initials(g.name)), el('h3', null, g.name),
      g.description && el('p', null, g.description),
      el('section', null, el('h3', null, `${(g.members || []).length} members`),
        el('ul', { class: 'plain members' }, (g.members || []).map((/** @type {any} */ x) => el('li', null,
          el('span', null, this.nameOf(x.userId)), x.role === 'admin' && el('span', { class: 'role' }, 'admin'),
          myRole === 'admin' && x.userId !== this.session.userId && el('span', { class: 'member-actions' },
            act(x.role === 'admin' ? 'Make member' : 'Make admin', () => this.api.post('/api/groups/members/role', { groupId: g.groupId, memberId: x.userId, newRole: x.role === 'admin' ? 'member' : 'admin' })),
            act('Remove', () => this.api.post('/api/groups/members/remove', { groupId: g.groupId, memberId: x.userId }))))))),
      el('form', { class: 'inline', onsubmit: async (/** @type {Event} */ ev) => {
        ev.preventDefault();
        try {
          const found = (await this.api.get('/api/users/search?q=' + encodeURIComponent(add.value.trim())))
            .find((/** @type {Profile} */ p) => p.username.toLowerCase() === add.value.trim().toLowerCase());
          if (!found) throw new ApiError('not_found', 'No user with that username.', 404);
          await this.api.post('/api/groups/members/add', { groupId: g.groupId, members: [found.userId] });
          this.showDetails();
        } catch (e) {
          status.textContent = errorText(e);
        }
      } }, add, el('button', { type: 'submit' }, 'Add member')),
      el('section', null, el('h3', null, 'Settings'), toggle('onlyAdminsCanSend', 'Only admins can send'), toggle('onlyAdminsCanAddMembers', 'Only admins can add members')),
      act('Leave group', async () => {
        await this.api.post('/api/groups/members/remove', { groupId: g.groupId, memberId: this.session.userId });
      }),
      status);
  }

  showNewGroup() {
    /** @type {Profile[]} */
    const picked = [];
    const chips = el('ul', { class: 'chips', 'aria-label': 'Members' });
    const status = el('p', { class: 'form-error', role: 'alert' });
    const who = /** @type {HTMLInputElement} */ (el('input', { type: 'text', 'aria-label': 'Add a member by username', placeholder: 'username, then Enter' }));
    const name = /** @type {HTMLInputElement} */ (el('input', { type: 'text', name: 'name', required: true, maxlength: 100, 'aria-label': 'Group name' }));
    const addWho = async () => {
      const q = who.value.trim();
      if (!q) return;
      try {
        const found = (await this.api.get('/api/users/search?q=' + encodeURIComponent(q)))
          .find((/** @type {Profile} */ p) => p.username.toLowerCase() === q.toLowerCase());
        if (!found) throw new ApiError('not_found', `No user named ${q}.`, 404);
        this.users.set(found.userId, found);
        if (!picked.some((p) => p.userId === found.userId)) picked.push(found);
        fill(chips, picked.map((p) => el('li', null, p.name || p.username)));
        who.value = '';
        status.textContent = '';
      } catch (e) {
        status.textContent = errorText(e);
      }
    };
    who.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); addWho(); } });
    const dlg = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'sheet', 'aria-labelledby': 'new-group-title', onclose: () => dlg.remove() },
      el('form', { onsubmit: async (/** @type {Event} */ ev) => {
        ev.preventDefault();
        try {
          if (who.value.trim()) await addWho();
          const g = await this.api.post('/api/groups/create', { name: name.value.trim(), members: picked.map((p) => p.userId) });
          const chat = this.ensureChat('group', g.groupId, g.conversationId);
          chat.title = g.name;
          chat.lastAt = g.createdAt;
          dlg.close();
          this.openChat(g.groupId, true);
        } catch (e) {
          status.textContent = errorText(e);
        }
      } },
      el('h2', { id: 'new-group-title' }, 'New group'),
      el('label', { class: 'field' }, el('span', null, 'Name'), name),
      el('label', { class: 'field' }, el('span', null, 'Members'), who),
      el('button', { type: 'button', onclick: addWho }, 'Add'),
      chips, status,
      el('div', { class: 'row' }, el('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, 'Create group')))));
    this.append(dlg);
    dlg.showModal();
    name.focus();
  }

  /** @param {boolean} push */
  async showProfile(push) {
    if (push) this.go('/profile');
    const me = await this.api.get('/api/users/me');
    this.users.set(me.userId, me);
    const status = el('p', { class: 'form-error', role: 'status' });
    const avatarFile = /** @type {HTMLInputElement} */ (el('input', { type: 'file', accept: 'image/png,image/jpeg,image/webp', 'aria-label': 'Profile photo' }));
    this.showPane('Profile', el('form', { class: 'stack', onsubmit: async (/** @type {Event} */ ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ (ev.target)));
      try {
        /** @type {Record<string, string>} */
        const body = { name: String(f.name), about: String(f.about) };
        const file = avatarFile.files && avatarFile.files[0];
        if (file) {
          // A profile photo is public (like a username): uploaded as is, not encrypted.
          const small = await thumbnail(file, 256);
          const form = new FormData();
          form.append('encryptedMetadata', JSON.stringify({ fileType: 'image', originalName: 'avatar.jpg', size: small.byteLength, mimeType: 'image/jpeg', iv: '', thumbnailIv: '', encryptedKey: '' }));
          form.append('file', new Blob([small], { type: 'image/jpeg' }), 'avatar.jpg');
          body.avatar = (await this.api.call('POST', '/api/media/upload', form)).fileId;
        }
        const p = await this.api.put('/api/users/me/profile', body);
        this.users.set(me.userId, { ...me, ...p });
        status.textContent = 'Saved.';
      } catch (e) {
        status.textContent = errorText(e);
      }
    } },
    el('label', { class: 'field' }, el('span', null, 'Name'), el('input', { name: 'name', value: me.name || '', maxlength: 100 })),
    el('label', { class: 'field' }, el('span', null, 'About'), el('input', { name: 'about', value: me.about || '', maxlength: 500 })),
    el('label', { class: 'field' }, el('span', null, 'Photo (public)'), avatarFile),
    el('p', { class: 'fine' }, `@${me.username} · device ${this.session.deviceId}`),
    el('button', { type: 'submit', class: 'primary' }, 'Save'), status));
  }

  /** @param {boolean} push */
  async showSettings(push) {
    if (push) this.go('/settings');
    const me = await this.api.get('/api/users/me');
    const s = me.settings || {};
    const status = el('p', { class: 'form-error', role: 'status' });
    let scheduled = [];
    try {
      scheduled = await this.api.get('/api/messages/scheduled');
    } catch {
      scheduled = [];
    }
    this.showPane('Settings', el('form', { class: 'stack', onsubmit: async (/** @type {Event} */ ev) => {
      ev.preventDefault();
      const f = new FormData(/** @type {HTMLFormElement} */ (ev.target));
      try {
        this.settings = await this.api.put('/api/users/me/settings', { lastSeenVisibility: f.get('lastSeenVisibility'),
          readReceipts: f.get('readReceipts') === 'on', pushPreviews: f.get('pushPreviews') === 'on' });
        status.textContent = 'Saved.';
      } catch (e) {
        status.textContent = errorText(e);
      }
    } },
    el('label', { class: 'field' }, el('span', null, 'Who sees my last seen'),
      el('select', { name: 'lastSeenVisibility' }, ['everyone', 'contacts', 'nobody'].map((v) => el('option', { value: v, selected: s.lastSeenVisibility === v }, v)))),
    el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'readReceipts', checked: !!s.readReceipts }), 'Send read receipts'),
    el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'pushPreviews', checked: !!s.pushPreviews }), 'Show the sender in push notifications'),
    el('button', { type: 'submit', class: 'primary' }, 'Save'), status,
    el('section', null, el('h3', null, 'Scheduled messages'),
      el('ul', { class: 'plain' }, scheduled.length ? scheduled.map((/** @type {any} */ x) => el('li', null,
        `To ${this.nameOf(x.recipientId)} at ${new Date(x.scheduledAt).toLocaleString()} `,
        el('button', { type: 'button', onclick: async () => {
          await this.api.post('/api/messages/scheduled/cancel', { messageId: x.messageId }).catch((e) => { status.textContent = errorText(e); });
          this.showSettings(false);
        } }, 'Cancel'))) : el('li', null, 'None.')))));
  }

  /**
   * Shows a page (profile, settings) in the conversation pane.
   * @param {string} title
   * @param {HTMLElement} content
   */
  showPane(title, content) {
    this.communities.leaveView();
    this.current = '';
    this.shell.classList.add('has-chat');
    this.details.hidden = true;
    fill(this.main, el('header', { class: 'bar conv-bar' },
      el('button', { class: 'icon back', 'aria-label': 'Back', onclick: () => this.closeChat(true) }, '←'),
      el('h2', { id: 'conv-title' }, title)), el('div', { class: 'pane' }, content));
    this.renderChatList();
    const first = /** @type {HTMLElement | null} */ (content.querySelector('input, select'));
    if (first) first.focus();
  }

  /** @param {KeyboardEvent} ev */
  onKey(ev) {
    if (ev.key === 'Escape' && this.session && this.shell) {
      if (document.querySelector('dialog[open]')) return;
      if (this.details && !this.details.hidden) { this.details.hidden = true; if (this.composer) this.composer.focus(); return; }
      if (this.replyTo || this.editing) { this.cancelCompose(); return; }
      if (this.current || this.shell.classList.contains('has-chat')) { this.closeChat(true); this.search.focus(); }
    }
    if (ev.key === '/' && ev.ctrlKey && this.search) { ev.preventDefault(); this.search.focus(); }
  }
}

/**
 * A JPEG no larger than max pixels on its longer side.
 * @param {Blob} file
 * @param {number} [max]
 * @returns {Promise<ArrayBuffer>}
 */
async function thumbnail(file, max = 320) {
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, max / Math.max(bmp.width, bmp.height));
  const c = document.createElement('canvas');
  c.width = Math.max(1, Math.round(bmp.width * scale));
  c.height = Math.max(1, Math.round(bmp.height * scale));
  const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
  ctx.drawImage(bmp, 0, 0, c.width, c.height);
  bmp.close();
  const blob = await new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('thumbnail failed'))), 'image/jpeg', 0.8));
  return /** @type {Blob} */ (blob).arrayBuffer();
}

customElements.define('parley-app', ParleyApp);
