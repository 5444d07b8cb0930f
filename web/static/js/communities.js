// Communities and their channels (API.md §6): a pane listing, searching,
// creating and joining communities; a community's page (channels, join
// requests, invite code, leave/delete); and a channel's chat.
//
// Channel content is encrypted in this browser with the channel's key
// (e2e.js, "Shared keys"): the server only ever sees ciphertext. In an
// end-to-end encrypted channel (private community, or private channel)
// each reader holds the key wrapped for their devices; an admin's client
// that holds a key hands it to readers who lack one when the server says
// channel_key_needed. A trusted community's public channels use the
// community key the server gives every member.
import { ApiError } from './api.js';
import * as e2e from './e2e.js';
import { el, fill, clock, initials, randomId, pathIcon } from './dom.js';

/**
 * @typedef {import('./app.js').ParleyApp} ParleyApp
 * @typedef {{communityId: string, name: string, description: string, ownerId: string, defaultChannel: string, isPrivate: boolean,
 *   e2eeMode: string, membersCount: number, role?: string, status?: string, channelIds?: string[]}} Community
 * @typedef {{channelId: string, communityId: string, name: string, description: string, type: string, isPrivate: boolean,
 *   e2eeMode: string, membersCount: number}} Channel
 * @typedef {{id: string, clientMessageId: string, senderId: string, sentAt: string, text: string, replyToId: string,
 *   pending: boolean, failed: boolean, undecryptable: boolean, deleted: boolean, reactions: {userId: string, reaction: string}[]}} ChannelMsg
 * @typedef {{community: Community, channel: Channel, messages: ChannelMsg[], key: CryptoKey | null, admin: boolean, readOnly: boolean,
 *   replyTo: ChannelMsg | null, pins: {messageId: string, pinnedBy: string, msg: ChannelMsg | null}[]}} OpenChannel
 */

/** The one reaction offered on a channel message (any is shown). */
const LIKE = '👍';

/** How often a member without the channel key asks for it again, in ms. */
const KEY_RETRY = 4000;

/** The sidebar icon of communities: three people under a roof. */
export function communitiesIcon() {
  return pathIcon('M12 2 2 7v2h20V7L12 2zM7 13a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm10 0a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm-5 0a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM3 20v-2c0-1.7 2-3 4-3 .9 0 1.8.3 2.5.7-.3.4-.5.9-.5 1.3v3H3zm6 0v-3c0-1.7 1.3-2 3-2s3 .3 3 2v3H9zm6 0v-3c0-.4-.2-.9-.5-1.3.7-.4 1.6-.7 2.5-.7 2 0 4 1.3 4 3v2h-6z');
}

/** A push pin (pinned messages). */
function pinIcon() {
  return pathIcon('M16 9V4h1a1 1 0 0 0 0-2H7a1 1 0 0 0 0 2h1v5a3 3 0 0 1-3 3v2h6v7l1 1 1-1v-7h6v-2a3 3 0 0 1-3-3z');
}

/** @param {any} e */
function errorText(e) {
  return e instanceof ApiError ? e.message : 'Something went wrong: ' + (e && e.message ? e.message : String(e));
}

/**
 * Shows a message in a form's status line: an error, or news when ok.
 * @param {HTMLElement} status
 * @param {string} text
 * @param {boolean} [ok]
 */
function say(status, text, ok) {
  status.className = ok ? 'form-ok' : 'form-error';
  status.textContent = text;
}

/** @param {string} s */
const enc = (s) => encodeURIComponent(s);

/** @param {Community | undefined | null} c */
function isAdmin(c) {
  return !!c && (c.role === 'owner' || c.role === 'admin');
}

/** Communities and channels in the client: their pages, the channel keys this client holds and hands out, and their live events. */
export class Communities {
  /** @param {ParleyApp} app */
  constructor(app) {
    this.app = app;
    /** @type {Map<string, CryptoKey>} channelId -> its current key, once this client holds it */
    this.keys = new Map();
    /** @type {WeakMap<CryptoKey, string>} key -> its key id */
    this.kids = new WeakMap();
    /** @type {'home' | 'community' | 'channel' | ''} */
    this.view = '';
    /** @type {Community | null} the community on screen (its page, or the channel's) */
    this.community = null;
    /** @type {OpenChannel | null} */
    this.open = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.keyTimer = undefined;
    /** Counts the pages shown: a page whose loads finish after another was shown stays away. */
    this.shown = 0;
  }

  /** Forgets everything of the signed-out user. */
  reset() {
    this.keys.clear();
    this.leaveView();
  }

  /** Forgets the page on screen (another one replaces it). */
  leaveView() {
    this.shown++;
    this.view = '';
    this.community = null;
    this.open = null;
    clearTimeout(this.keyTimer);
  }

  /**
   * Shows the page of a path this module owns; false when it is not one.
   * @param {string} p
   */
  route(p) {
    if (p === '/communities') this.showHome(false);
    else if (/^\/communities\/[^/]+\/channels\/[^/]+$/.test(p)) {
      const [, , cid, , chid] = p.split('/');
      this.showChannel(decodeURIComponent(cid), decodeURIComponent(chid), false);
    } else if (/^\/communities\/[^/]+$/.test(p)) this.showCommunity(decodeURIComponent(p.split('/')[2]), false);
    else return false;
    return true;
  }

  /**
   * Fills the conversation pane with a page of this module.
   * @param {string} title
   * @param {HTMLElement | null} back what the back button does: null closes the pane
   * @param {any[]} header extra header content
   * @param {...any} body
   */
  page(title, back, header, ...body) {
    const app = this.app;
    app.current = '';
    app.shell.classList.add('has-chat');
    app.details.hidden = true;
    fill(app.main, el('header', { class: 'bar conv-bar community-bar' }, back || el('button', { class: 'icon back', 'aria-label': 'Back', onclick: () => { this.leaveView(); app.closeChat(true); } }, '←'),
      el('h2', { id: 'conv-title' }, title), header), ...body);
    app.renderChatList();
  }

  // ---------- my communities, search, create, join ----------

  /** @param {boolean} push */
  async showHome(push) {
    const app = this.app;
    if (push) app.go('/communities');
    this.leaveView();
    this.view = 'home';
    this.mine = el('ul', { class: 'plain community-list', 'aria-label': 'My communities' }, el('li', null, 'Loading…'));
    const status = el('p', { class: 'form-error', role: 'alert' });
    const found = el('ul', { class: 'plain community-list', 'aria-label': 'Public communities' });
    const q = /** @type {HTMLInputElement} */ (el('input', { type: 'search', id: 'community-search', 'aria-label': 'Search public communities', placeholder: 'Name' }));
    const search = async () => {
      try {
        const list = /** @type {Community[]} */ (await app.api.get('/api/communities/search?q=' + enc(q.value.trim())));
        fill(found, list.length ? list.map((c) => this.communityItem(c, status)) : el('li', { class: 'hint' }, 'No public community with that name.'));
      } catch (e) {
        status.textContent = errorText(e);
      }
    };
    const invite = /** @type {HTMLInputElement} */ (el('input', { type: 'text', id: 'invite-code', 'aria-label': 'Invite code', placeholder: 'comm_…', autocomplete: 'off' }));
    this.page('Communities', null, [],
      el('div', { class: 'pane' }, el('div', { class: 'stack communities-page' },
        status,
        el('button', { class: 'primary', type: 'button', onclick: () => this.showCreate() }, 'New community'),
        el('h3', null, 'My communities'), this.mine,
        el('h3', null, 'Find a public community'),
        el('form', { class: 'row', role: 'search', onsubmit: (/** @type {Event} */ ev) => { ev.preventDefault(); search(); } }, q, el('button', { type: 'submit' }, 'Search')),
        found,
        el('h3', null, 'Join a private community'),
        el('form', { class: 'row', onsubmit: async (/** @type {Event} */ ev) => {
          ev.preventDefault();
          const id = invite.value.trim();
          if (!id) return;
          await this.join(id, status);
          invite.value = '';
        } }, invite, el('button', { type: 'submit' }, 'Ask to join')))));
    await this.loadMine(status);
  }

  /** The IndexedDB key of this user's join requests still unanswered (the server lists only communities one is in). */
  pendingKey() {
    return 'community-requests:' + this.app.session.userId;
  }

  /** @param {HTMLElement} status */
  async loadMine(status) {
    const list = this.mine;
    if (!list) return;
    const api = this.app.api;
    try {
      const mine = /** @type {Community[]} */ (await api.get('/api/communities/user/' + enc(this.app.session.userId)));
      // A request is shown until it is answered: approved, the community
      // is in the list above; rejected (or deleted), it answers 404.
      /** @type {string[]} */
      const asked = (await e2e.kvGet(this.pendingKey())) || [];
      const still = [];
      for (const id of asked) {
        if (mine.some((c) => c.communityId === id)) continue;
        const c = await api.get('/api/communities/' + enc(id)).catch(() => null);
        if (c && c.status === 'pending') {
          still.push(id);
          mine.push(c);
        }
      }
      if (still.length !== asked.length) await e2e.kvSet(this.pendingKey(), still);
      if (list !== this.mine) return;
      fill(list, mine.length ? mine.map((c) => this.communityItem(c, status)) : el('li', { class: 'hint' }, 'You are in no community yet.'));
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  /**
   * @param {Community} c
   * @param {HTMLElement} status
   */
  communityItem(c, status) {
    const member = c.status === 'member';
    return el('li', { class: 'community-item', 'data-community': c.communityId },
      el('span', { class: 'avatar group', 'aria-hidden': 'true' }, initials(c.name)),
      el('span', { class: 'community-text' },
        el('strong', null, c.name),
        el('small', null, `${c.isPrivate ? 'Private' : 'Public'} · ${c.membersCount} member${c.membersCount === 1 ? '' : 's'}`, c.description ? ' · ' + c.description : '')),
      member ? el('button', { type: 'button', onclick: () => this.showCommunity(c.communityId, true) }, 'Open', el('span', { class: 'sr-only' }, ' ' + c.name))
        : c.status === 'pending' ? el('span', { class: 'badge' }, 'Request sent')
          : el('button', { type: 'button', onclick: () => this.join(c.communityId, status) }, 'Join', el('span', { class: 'sr-only' }, ' ' + c.name)));
  }

  /**
   * @param {string} communityId
   * @param {HTMLElement} status
   */
  async join(communityId, status) {
    try {
      const r = await this.app.api.post('/api/communities/join', { communityId });
      say(status, '');
      if (r.status === 'pending') {
        /** @type {string[]} */
        const asked = (await e2e.kvGet(this.pendingKey())) || [];
        if (!asked.includes(communityId)) await e2e.kvSet(this.pendingKey(), [...asked, communityId]);
        await this.loadMine(status);
        say(status, 'Request sent. An admin of the community will answer it.', true);
      } else await this.showCommunity(communityId, true);
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  showCreate() {
    const app = this.app;
    const status = el('p', { class: 'form-error', role: 'alert' });
    const name = /** @type {HTMLInputElement} */ (el('input', { type: 'text', id: 'community-name', required: true, maxlength: 100 }));
    const desc = /** @type {HTMLInputElement} */ (el('input', { type: 'text', id: 'community-description', maxlength: 500 }));
    const priv = /** @type {HTMLInputElement} */ (el('input', { type: 'checkbox', id: 'community-private', checked: true }));
    const dlg = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'sheet', 'aria-labelledby': 'new-community-title', onclose: () => dlg.remove() },
      el('form', { onsubmit: async (/** @type {Event} */ ev) => {
        ev.preventDefault();
        try {
          const c = await this.create(name.value.trim(), desc.value.trim(), priv.checked);
          dlg.close();
          await this.showCommunity(c.communityId, true);
        } catch (e) {
          status.textContent = errorText(e);
        }
      } },
      el('h2', { id: 'new-community-title' }, 'New community'),
      el('label', { class: 'field', for: 'community-name' }, el('span', null, 'Name'), name),
      el('label', { class: 'field', for: 'community-description' }, el('span', null, 'Description'), desc),
      el('label', { class: 'check' }, priv, 'Private: people join with the invite code once an admin approves them; everything is end-to-end encrypted'),
      status,
      el('div', { class: 'row' }, el('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, 'Create community')))));
    app.append(dlg);
    dlg.showModal();
    name.focus();
  }

  /**
   * Creates a community with a fresh key: wrapped for this user's devices in
   * a private one (the key of its "general" channel too), given to the
   * server in a public ("trusted") one.
   * @param {string} name
   * @param {string} description
   * @param {boolean} isPrivate
   * @returns {Promise<Community>}
   */
  async create(name, description, isPrivate) {
    const api = this.app.api;
    const key = await e2e.newSharedKey();
    if (!isPrivate) {
      return api.post('/api/communities/create', { name, description, isPrivate, plaintextAESKey: await e2e.exportSharedKey(key) });
    }
    const me = this.app.session.userId;
    const wrapped = await e2e.wrapSharedKey(key, await this.app.keysOf(me, true));
    const c = await api.post('/api/communities/create', { name, description, isPrivate, encryptedAESKey: wrapped });
    await api.post('/api/channels/keys', { channelId: c.defaultChannel, keys: { [me]: wrapped } });
    await this.remember(c.defaultChannel, key);
    return c;
  }

  // ---------- a community ----------

  /**
   * @param {string} id
   * @param {boolean} push
   */
  async showCommunity(id, push) {
    const app = this.app;
    if (push) app.go('/communities/' + enc(id));
    this.leaveView();
    this.view = 'community';
    const shown = this.shown;
    const status = el('p', { class: 'form-error', role: 'alert' });
    /** @type {Community} */
    let c;
    /** @type {Channel[]} */
    let channels;
    try {
      [c, channels] = await Promise.all([app.api.get('/api/communities/' + enc(id)), app.api.get('/api/communities/' + enc(id) + '/channels')]);
    } catch (e) {
      if (this.shown !== shown) return;
      this.page('Community', this.homeButton(), [], el('div', { class: 'pane' }, el('p', { class: 'form-error', role: 'alert' }, errorText(e))));
      return;
    }
    if (this.shown !== shown) return;
    this.community = c;
    const admin = isAdmin(c);
    const owner = c.role === 'owner';
    this.requests = el('ul', { class: 'plain join-requests', 'aria-label': 'Join requests' });
    const members = el('ul', { class: 'plain community-members', 'aria-label': 'Members' }, el('li', { class: 'hint' }, 'Loading members…'));
    const list = el('ul', { class: 'plain channel-list', 'aria-label': 'Channels' }, channels.map((ch) =>
      el('li', { 'data-channel': ch.channelId },
        el('button', { type: 'button', class: 'channel-link', onclick: () => this.showChannel(c.communityId, ch.channelId, true) },
          el('span', { 'aria-hidden': 'true' }, '# '),
          ch.name, ch.isPrivate ? el('small', null, ' (private)') : null, ch.type !== 'text' ? el('small', null, ` (${ch.type})`) : null))));
    this.page(c.name, this.homeButton(), [],
      el('div', { class: 'pane' }, el('div', { class: 'stack community-page' },
        status,
        c.description && el('p', null, c.description),
        el('p', null, `${c.isPrivate ? 'Private, end-to-end encrypted' : 'Public'} · ${c.membersCount} member${c.membersCount === 1 ? '' : 's'} · you are ${c.role}`),
        c.isPrivate && admin && el('label', { class: 'field', for: 'invite-show' }, el('span', null, 'Invite code (whoever has it may ask to join)'),
          el('input', { type: 'text', id: 'invite-show', readonly: true, value: c.communityId, onfocus: (/** @type {Event} */ ev) => /** @type {HTMLInputElement} */ (ev.target).select() })),
        el('h3', null, 'Channels'), list,
        admin && el('button', { type: 'button', class: 'primary', onclick: () => this.showNewChannel(c) }, 'New channel'),
        admin && c.isPrivate && el('h3', null, 'Join requests'), admin && c.isPrivate && this.requests,
        el('h3', null, 'Members'), members,
        el('div', { class: 'row' },
          el('button', { type: 'button', onclick: () => this.leave(c, status) }, 'Leave community'),
          owner && el('button', { type: 'button', class: 'danger', onclick: () => this.remove(c, status) }, 'Delete community')))));
    if (admin && c.isPrivate) await this.loadRequests(c, status);
    try {
      const all = await this.allMembers(c.communityId);
      if (this.shown !== shown) return;
      fill(members, all.map((m) => el('li', { 'data-user': m.userId }, m.name || m.username,
        el('small', null, ` @${m.username}`), m.role !== 'member' ? el('small', { class: 'role' }, ` · ${m.role}`) : null)));
    } catch (e) {
      fill(members, el('li', { class: 'form-error' }, errorText(e)));
    }
  }

  homeButton() {
    return el('button', { class: 'icon up', 'aria-label': 'Back to communities', onclick: () => this.showHome(true) }, '←');
  }

  /**
   * @param {Community} c
   * @param {HTMLElement} status
   */
  async loadRequests(c, status) {
    const list = this.requests;
    try {
      const reqs = await this.app.api.get('/api/communities/' + enc(c.communityId) + '/requests');
      if (list !== this.requests) return;
      fill(list, reqs.length ? reqs.map((/** @type {any} */ r) => {
        const who = r.name || r.username || 'Someone';
        return el('li', { class: 'join-request', 'data-user': r.userId },
          el('span', null, who, r.username && r.name ? el('small', null, ' @' + r.username) : null),
          el('button', { type: 'button', class: 'primary', onclick: () => this.answer(c, r.userId, true, status) }, 'Approve', el('span', { class: 'sr-only' }, ' ' + who)),
          el('button', { type: 'button', onclick: () => this.answer(c, r.userId, false, status) }, 'Reject', el('span', { class: 'sr-only' }, ' ' + who)));
      }) : el('li', { class: 'hint' }, 'No pending requests.'));
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  /**
   * @param {Community} c
   * @param {string} userId
   * @param {boolean} approve
   * @param {HTMLElement} status
   */
  async answer(c, userId, approve, status) {
    try {
      await this.app.api.post('/api/communities/requests/' + (approve ? 'approve' : 'reject'), { communityId: c.communityId, userId });
      status.textContent = '';
      await this.loadRequests(c, status);
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  /**
   * @param {Community} c
   * @param {HTMLElement} status
   */
  async leave(c, status) {
    if (!confirm(`Leave ${c.name}?`)) return;
    try {
      await this.app.api.post('/api/communities/leave', { communityId: c.communityId });
      await this.showHome(true);
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  /**
   * @param {Community} c
   * @param {HTMLElement} status
   */
  async remove(c, status) {
    if (!confirm(`Delete ${c.name} with all its channels and messages for everyone?`)) return;
    try {
      await this.app.api.post('/api/communities/delete', { communityId: c.communityId });
      await this.showHome(true);
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  /** @param {Community} c */
  showNewChannel(c) {
    const app = this.app;
    /** @type {{userId: string, username: string, name?: string}[]} */
    const picked = [];
    const status = el('p', { class: 'form-error', role: 'alert' });
    const name = /** @type {HTMLInputElement} */ (el('input', { type: 'text', id: 'channel-name', required: true, maxlength: 100 }));
    const type = /** @type {HTMLSelectElement} */ (el('select', { id: 'channel-type' },
      el('option', { value: 'text' }, 'Text'), el('option', { value: 'announcement' }, 'Announcement (only admins post)'), el('option', { value: 'voice' }, 'Voice')));
    const who = /** @type {HTMLInputElement} */ (el('input', { type: 'text', id: 'channel-member', placeholder: 'username, then Enter', autocomplete: 'off' }));
    const chips = el('ul', { class: 'chips', 'aria-label': 'Allowed members' });
    const members = el('div', { hidden: true },
      el('label', { class: 'field', for: 'channel-member' }, el('span', null, 'Allowed members'), who),
      el('button', { type: 'button', onclick: () => addWho() }, 'Add member'), chips);
    // In a private community every reader needs the key wrapped for them:
    // a channel for every member wraps it here for each member the server
    // lists (createChannel); a private one names its readers.
    const priv = /** @type {HTMLInputElement} */ (el('input', { type: 'checkbox', id: 'channel-private', checked: c.isPrivate,
      onchange: () => { members.hidden = !priv.checked; } }));
    members.hidden = !priv.checked;
    const addWho = async () => {
      const q = who.value.trim();
      if (!q) return;
      try {
        const found = (await app.api.get('/api/users/search?q=' + enc(q)))
          .find((/** @type {any} */ p) => p.username.toLowerCase() === q.toLowerCase());
        if (!found) throw new ApiError('not_found', `No user named ${q}.`, 404);
        app.users.set(found.userId, found);
        if (!picked.some((p) => p.userId === found.userId)) picked.push(found);
        fill(chips, picked.map((p) => el('li', null, p.name || p.username)));
        who.value = '';
        status.textContent = '';
      } catch (e) {
        status.textContent = errorText(e);
      }
    };
    who.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); addWho(); } });
    const dlg = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'sheet', 'aria-labelledby': 'new-channel-title', onclose: () => dlg.remove() },
      el('form', { onsubmit: async (/** @type {Event} */ ev) => {
        ev.preventDefault();
        try {
          if (priv.checked && who.value.trim()) await addWho();
          const ch = await this.createChannel(c, name.value.trim(), type.value, priv.checked, picked.map((p) => p.userId));
          dlg.close();
          await this.showChannel(c.communityId, ch.channelId, true);
        } catch (e) {
          status.textContent = errorText(e);
        }
      } },
      el('h2', { id: 'new-channel-title' }, 'New channel'),
      el('label', { class: 'field', for: 'channel-name' }, el('span', null, 'Name'), name),
      el('label', { class: 'field', for: 'channel-type' }, el('span', null, 'Type'), type),
      el('label', { class: 'check' }, priv, c.isPrivate ? 'Private: only the members you allow read it (otherwise every member, each with the key wrapped in this browser)' : 'Private: only the members you allow read it'),
      members, status,
      el('div', { class: 'row' }, el('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, 'Create channel')))));
    app.append(dlg);
    dlg.showModal();
    name.focus();
  }

  /**
   * Creates a channel. An end-to-end encrypted one gets a fresh key,
   * wrapped here for this user and every allowed member, or, for a channel
   * every member of a private community reads, for every member (members
   * who join later get it through channel_key_needed).
   * @param {Community} c
   * @param {string} name
   * @param {string} type
   * @param {boolean} isPrivate
   * @param {string[]} allowed
   * @returns {Promise<Channel>}
   */
  async createChannel(c, name, type, isPrivate, allowed) {
    const app = this.app;
    /** @type {Record<string, any>} */
    const body = { communityId: c.communityId, name, description: '', type, isPrivate };
    let key = null;
    if (isPrivate || c.isPrivate) {
      key = await e2e.newSharedKey();
      const me = app.session.userId;
      if (!isPrivate) allowed = await this.memberIds(c.communityId);
      /** @type {Record<string, string>} */
      const keys = { [me]: await e2e.wrapSharedKey(key, await app.keysOf(me, true)) };
      for (const u of allowed) {
        if (u === me) continue;
        try {
          keys[u] = await e2e.wrapSharedKey(key, await app.keysOf(u, true));
        } catch {
          // No usable device yet: the server asks admins again (channel_key_needed).
        }
      }
      body.encryptedKeysFromClient = keys;
    }
    if (isPrivate) body.allowedMembers = allowed;
    const ch = await app.api.post('/api/communities/channels/create', body);
    if (key) await this.remember(ch.channelId, key);
    return ch;
  }

  /**
   * The ids of a community's approved members, every page of them.
   * @param {string} communityId
   * @returns {Promise<string[]>}
   */
  async memberIds(communityId) {
    return (await this.allMembers(communityId)).map((m) => m.userId);
  }

  /**
   * The ids of a channel's readers, every page of them.
   * @param {string} channelId
   * @returns {Promise<string[]>}
   */
  async readerIds(channelId) {
    /** @type {string[]} */
    const ids = [];
    let after = '';
    for (;;) {
      /** @type {{userId: string}[]} */
      const page = await this.app.api.get('/api/channels/' + enc(channelId) + '/members?limit=200' + (after ? '&after=' + enc(after) : ''));
      for (const m of page) ids.push(m.userId);
      if (page.length < 200) return ids;
      after = page[page.length - 1].userId;
    }
  }

  // ---------- keys ----------

  /**
   * This client's key of a channel: null while no admin has shared it (or
   * not for this device).
   * @param {string} channelId
   * @returns {Promise<CryptoKey | null>}
   */
  async keyOf(channelId) {
    const have = this.keys.get(channelId);
    if (have) return have;
    const v = await this.app.api.get('/api/channels/' + enc(channelId) + '/key');
    /** @type {CryptoKey | null} */
    let key = null;
    if (v.e2eeMode === 'trusted' && v.key) key = await e2e.importSharedKey(v.key);
    else if (v.encryptedKey && this.app.device) {
      try {
        key = await e2e.unwrapSharedKey(v.encryptedKey, this.app.device);
      } catch {
        key = null;
      }
    }
    if (key) await this.remember(channelId, key);
    return key;
  }

  /** @param {string} channelId @returns {string} the IndexedDB key of the channel keys this user's client held */
  ringKey(channelId) {
    return 'channel-keys:' + this.app.session.userId + ':' + channelId;
  }

  /**
   * Makes key this client's current key of a channel and keeps it, with
   * every key it replaced, in IndexedDB: messages name the key they were
   * sent with (kid), so older ones still decrypt after a rotation.
   * @param {string} channelId
   * @param {CryptoKey} key
   */
  async remember(channelId, key) {
    this.keys.set(channelId, key);
    const kid = await this.kidOf(key);
    /** @type {{kid: string, key: CryptoKey}[]} */
    const ring = (await e2e.kvGet(this.ringKey(channelId)).catch(() => null)) || [];
    if (ring.some((r) => r.kid === kid)) return;
    ring.push({ kid, key });
    await e2e.kvSet(this.ringKey(channelId), ring).catch((e) => console.error('channel keys', errorText(e)));
  }

  /** @param {CryptoKey} key @returns {Promise<string>} its key id, computed once */
  async kidOf(key) {
    let kid = this.kids.get(key);
    if (!kid) {
      kid = await e2e.sharedKeyId(key);
      this.kids.set(key, kid);
    }
    return kid;
  }

  /**
   * The keys to try on a message's content, best first: the one it names,
   * fetched again from the server when this client lacks it (the channel
   * was rotated); for contents naming no key, the current one then the
   * older ones.
   * @param {OpenChannel} open
   * @param {string} content
   * @returns {Promise<CryptoKey[]>}
   */
  async keysFor(open, content) {
    const channelId = open.channel.channelId;
    const kid = e2e.sharedContentKeyId(content);
    if (kid && open.key && kid === await this.kidOf(open.key)) return [open.key];
    /** @type {{kid: string, key: CryptoKey}[]} */
    const ring = (await e2e.kvGet(this.ringKey(channelId)).catch(() => null)) || [];
    if (!kid) return [...(open.key ? [open.key] : []), ...ring.map((r) => r.key).filter((k) => k !== open.key)];
    const held = ring.find((r) => r.kid === kid);
    if (held) return [held.key];
    this.keys.delete(channelId);
    const fresh = await this.keyOf(channelId).catch(() => null);
    if (!fresh) return [];
    if (this.open === open) open.key = fresh;
    return await this.kidOf(fresh) === kid ? [fresh] : [];
  }

  /**
   * The approved members of a community, every page of the members route.
   * @param {string} communityId
   * @returns {Promise<{userId: string, username: string, name: string, role: string}[]>}
   */
  async allMembers(communityId) {
    /** @type {any[]} */
    const all = [];
    let after = '';
    for (;;) {
      const page = await this.app.api.get('/api/communities/' + enc(communityId) + '/members?limit=200' + (after ? '&after=' + enc(after) : ''));
      all.push(...page);
      if (page.length < 200) return all;
      after = page[page.length - 1].userId;
    }
  }

  /**
   * Wraps key for every device of each user given and posts them (at most
   * 1000 a request). Users with no device that takes it are answered later
   * through channel_key_needed.
   * @param {string} channelId
   * @param {CryptoKey} key
   * @param {string[]} users
   */
  async handOut(channelId, key, users) {
    /** @type {Record<string, string>} */
    let batch = {};
    let n = 0;
    for (const u of users) {
      try {
        batch[u] = await e2e.wrapSharedKey(key, await this.app.keysOf(u, true));
      } catch {
        continue;
      }
      if (++n === 1000) {
        await this.app.api.post('/api/channels/keys', { channelId, keys: batch });
        batch = {};
        n = 0;
      }
    }
    if (n) await this.app.api.post('/api/channels/keys', { channelId, keys: batch });
  }

  /**
   * Rotates a channel's key after a reader left it (channel_rekey_needed),
   * when this client is an admin holding its key: a new key wrapped for the
   * remaining readers (the members of a private community for its public
   * channels, the channel's readers for a private one, both as the server
   * lists them).
   * @param {{channelId: string, communityId: string, userId: string}} d
   */
  async rotate(d) {
    if (!d.channelId || !d.communityId) return;
    let old;
    try {
      old = await this.keyOf(d.channelId);
    } catch {
      return; // a channel this admin does not read: another admin rotates
    }
    if (!old) return;
    const api = this.app.api;
    const [c, channels] = await Promise.all([api.get('/api/communities/' + enc(d.communityId)), api.get('/api/communities/' + enc(d.communityId) + '/channels')]);
    const ch = /** @type {Channel[]} */ (channels).find((x) => x.channelId === d.channelId);
    if (!isAdmin(c) || !ch || !(ch.isPrivate || c.isPrivate)) return;
    const me = this.app.session.userId;
    let readers = ch.isPrivate ? await this.readerIds(ch.channelId) : await this.memberIds(c.communityId);
    readers = [me, ...readers.filter((u) => u !== d.userId && u !== me)];
    const key = await e2e.newSharedKey();
    await this.handOut(ch.channelId, key, readers);
    if (this.open && this.open.channel.channelId === ch.channelId) this.open.key = key;
    await this.remember(ch.channelId, key);
  }

  /**
   * Hands a channel's key to a reader who lacks it, if this client holds it.
   * @param {{channelId: string, userId: string}} d
   */
  async shareKey(d) {
    if (!d.channelId || !d.userId || d.userId === this.app.session.userId) return;
    let key;
    try {
      key = await this.keyOf(d.channelId);
    } catch {
      return; // a channel this admin does not read: another admin answers
    }
    if (!key) return;
    const wrapped = await e2e.wrapSharedKey(key, await this.app.keysOf(d.userId, true));
    await this.app.api.post('/api/channels/keys', { channelId: d.channelId, keys: { [d.userId]: wrapped } });
  }

  // ---------- a channel ----------

  /**
   * @param {string} communityId
   * @param {string} channelId
   * @param {boolean} push
   */
  async showChannel(communityId, channelId, push) {
    const app = this.app;
    if (push) app.go('/communities/' + enc(communityId) + '/channels/' + enc(channelId));
    this.leaveView();
    this.view = 'channel';
    const shown = this.shown;
    const back = el('button', { class: 'icon up', 'aria-label': 'Back to the community', onclick: () => this.showCommunity(communityId, true) }, '←');
    /** @type {Community} */
    let c;
    /** @type {Channel | undefined} */
    let ch;
    /** @type {CryptoKey | null} */
    let key;
    try {
      const [cc, channels] = await Promise.all([app.api.get('/api/communities/' + enc(communityId)), app.api.get('/api/communities/' + enc(communityId) + '/channels')]);
      c = cc;
      ch = /** @type {Channel[]} */ (channels).find((x) => x.channelId === channelId);
      if (!ch) throw new ApiError('not_found', 'Channel not found.', 404);
      key = await this.keyOf(channelId);
    } catch (e) {
      if (this.shown !== shown) return;
      this.page('Channel', back, [], el('div', { class: 'pane' }, el('p', { class: 'form-error', role: 'alert' }, errorText(e))));
      return;
    }
    if (this.shown !== shown) return;
    this.community = c;
    /** @type {OpenChannel} */
    const open = { community: c, channel: ch, messages: [], key, admin: isAdmin(c), readOnly: ch.type === 'announcement' && !isAdmin(c), replyTo: null, pins: [] };
    this.open = open;
    this.list = el('ol', { class: 'msg-list' });
    this.log = el('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: '0' }, this.list);
    this.pinned = el('details', { class: 'pinned', hidden: true });
    this.sendError = el('p', { class: 'form-error', role: 'alert' });
    this.replyBar = el('div', { class: 'reply-bar', hidden: true });
    this.composer = /** @type {HTMLTextAreaElement} */ (el('textarea', { id: 'channel-composer', rows: 1, placeholder: 'Message #' + ch.name,
      'aria-label': 'Message', maxlength: 20000, onkeydown: (/** @type {KeyboardEvent} */ ev) => {
        if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          this.sendFromComposer();
        }
      } }));
    this.footer = el('footer', { class: 'composer' });
    if (open.readOnly) fill(this.footer, this.sendError, el('p', { class: 'composer-note', role: 'note' }, 'Only admins can post in this announcement channel.'));
    this.sendButton = /** @type {HTMLButtonElement} */ (el('button', { class: 'send primary', 'aria-label': 'Send', onclick: () => this.sendFromComposer() }, '➤'));
    if (!open.readOnly) fill(this.footer, this.replyBar, this.sendError, el('div', { class: 'composer-row' }, this.composer, this.sendButton));
    this.page('# ' + ch.name, back,
      [el('span', { class: 'subtitle' }, c.name + (ch.type === 'announcement' ? ' · announcements' : '') + (ch.e2eeMode === 'true' ? ' · end-to-end encrypted' : '')),
        open.admin && ch.isPrivate && el('button', { type: 'button', class: 'add-reader', onclick: () => this.showAddReader(open) }, 'Add member'),
        open.admin && ch.isPrivate && el('button', { type: 'button', class: 'remove-reader', onclick: () => this.showAddReader(open, true) }, 'Remove member')],
      this.pinned, this.log, this.footer);
    await this.loadChannel(open);
  }

  /**
   * Lets a community member read a private channel (admins). The server
   * then asks admins for their key (channel_key_needed), which this client
   * answers like any other admin's. With remove, stops one reading it
   * instead: the admins' clients then rotate its key (channel_rekey_needed).
   * @param {OpenChannel} open
   * @param {boolean} [remove]
   */
  showAddReader(open, remove = false) {
    const app = this.app;
    const status = el('p', { class: 'form-error', role: 'alert' });
    const who = /** @type {HTMLInputElement} */ (el('input', { type: 'text', id: 'reader-name', required: true, autocomplete: 'off' }));
    const dlg = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'sheet', 'aria-labelledby': 'add-reader-title', onclose: () => dlg.remove() },
      el('form', { onsubmit: async (/** @type {Event} */ ev) => {
        ev.preventDefault();
        const q = who.value.trim();
        try {
          const found = (await app.api.get('/api/users/search?q=' + enc(q)))
            .find((/** @type {any} */ p) => p.username.toLowerCase() === q.toLowerCase());
          if (!found) throw new ApiError('not_found', `No user named ${q}.`, 404);
          if (remove) {
            await app.api.post('/api/channels/members/remove', { channelId: open.channel.channelId, memberId: found.userId });
          } else {
            await app.api.post('/api/channels/members/add', { channelId: open.channel.channelId, memberIds: [found.userId] });
          }
          dlg.close();
        } catch (e) {
          status.textContent = errorText(e);
        }
      } },
      el('h2', { id: 'add-reader-title' }, (remove ? 'Remove a member from #' : 'Add a member to #') + open.channel.name),
      el('label', { class: 'field', for: 'reader-name' }, el('span', null, 'Username (a member of the community)'), who),
      status,
      el('div', { class: 'row' }, el('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, remove ? 'Remove' : 'Add')))));
    app.append(dlg);
    dlg.showModal();
    who.focus();
  }

  /** @param {OpenChannel} open */
  async loadChannel(open) {
    const api = this.app.api;
    if (!open.key) {
      open.key = await this.keyOf(open.channel.channelId).catch(() => null);
      if (this.open !== open) return;
    }
    if (!open.key) {
      fill(this.list, el('li', { class: 'notice' }, el('span', { role: 'status' }, 'Waiting for an admin to share the key of this channel.')));
      this.composer.disabled = this.sendButton.disabled = true;
      clearTimeout(this.keyTimer);
      this.keyTimer = setTimeout(() => { if (this.open === open) this.loadChannel(open); }, KEY_RETRY);
      return;
    }
    this.composer.disabled = this.sendButton.disabled = false;
    try {
      const id = enc(open.channel.channelId);
      const [raw, pins] = await Promise.all([api.get('/api/channel-messages/' + id + '?limit=100'), api.get('/api/channel-messages/' + id + '/pinned')]);
      const msgs = await Promise.all(/** @type {any[]} */ (raw).reverse().map((m) => this.toMsg(open, m)));
      if (this.open !== open) return;
      for (const m of msgs) this.add(open, m);
      open.pins = await Promise.all(/** @type {any[]} */ (pins).map(async (p) => ({ messageId: p.messageId, pinnedBy: p.pinnedBy,
        msg: p.message ? await this.toMsg(open, p.message) : null })));
      if (this.open !== open) return;
      this.render(true);
      this.renderPins();
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /**
   * @param {OpenChannel} open
   * @param {any} raw a server message
   * @returns {Promise<ChannelMsg>}
   */
  async toMsg(open, raw) {
    /** @type {ChannelMsg} */
    const m = { id: raw.messageId, clientMessageId: raw.clientMessageId || '', senderId: raw.senderId, sentAt: raw.sentAt, text: '',
      replyToId: raw.replyToId || '', pending: false, failed: false, undecryptable: false, deleted: !!raw.deletedForEveryone,
      reactions: raw.reactions || [] };
    if (!m.deleted && raw.content) {
      try {
        let body = null;
        for (const k of await this.keysFor(open, raw.content)) {
          body = await e2e.decryptShared(raw.content, k).catch(() => null);
          if (body) break;
        }
        if (!body) throw new Error('no key fits');
        m.text = typeof body.text === 'string' ? body.text : '';
      } catch {
        m.undecryptable = true;
      }
    }
    if (!this.app.users.has(m.senderId)) await this.app.profile(m.senderId).catch(() => null);
    return m;
  }

  /**
   * Adds a message unless it is there (same id, or our own pending one).
   * @param {OpenChannel} open
   * @param {ChannelMsg} m
   */
  add(open, m) {
    const have = open.messages.find((x) => (m.id && x.id === m.id) || (m.clientMessageId && x.clientMessageId === m.clientMessageId && x.senderId === m.senderId));
    if (!have) {
      open.messages.push(m);
      return;
    }
    // Updated in place: a send in flight (post) holds this very object.
    const text = m.undecryptable ? have.text : m.text;
    Object.assign(have, m, { text, undecryptable: m.undecryptable && !have.text });
  }

  /** @param {boolean} toBottom */
  render(toBottom) {
    const open = this.open;
    if (!open || !this.list) return;
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    const byId = new Map(open.messages.map((m) => [m.id, m]));
    /** @type {HTMLElement[]} */
    const items = [el('li', { class: 'notice' }, open.channel.e2eeMode === 'true'
      ? 'Messages are end-to-end encrypted with this channel\'s key. Parley cannot read them.'
      : 'Messages are encrypted with the community key, which Parley keeps for this public community.')];
    for (const m of open.messages) items.push(this.renderMsg(open, m, byId));
    fill(this.list, items);
    if (toBottom || atBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  /**
   * @param {OpenChannel} open
   * @param {ChannelMsg} m
   * @param {Map<string, ChannelMsg>} byId
   */
  renderMsg(open, m, byId) {
    const mine = m.senderId === this.app.session.userId;
    const quoted = m.replyToId ? byId.get(m.replyToId) : undefined;
    const pinned = open.pins.some((p) => p.messageId === m.id);
    const me = this.app.session.userId;
    const liked = m.reactions.some((r) => r.userId === me && r.reaction === LIKE);
    /** @type {Map<string, number>} */
    const counts = new Map();
    for (const r of m.reactions) if (r.reaction) counts.set(r.reaction, (counts.get(r.reaction) || 0) + 1);
    return el('li', { class: 'msg ' + (mine ? 'out' : 'in'), 'data-mid': m.id || '', 'data-cid': m.clientMessageId },
      el('div', { class: 'bubble' },
        !mine && el('span', { class: 'sender' }, this.app.nameOf(m.senderId)),
        m.replyToId && el('blockquote', { class: 'quote' }, quoted ? `${this.app.nameOf(quoted.senderId)}: ${quoted.text}` : 'Earlier message'),
        m.deleted ? el('em', { class: 'deleted' }, 'This message was deleted')
          : m.undecryptable ? el('em', { class: 'deleted' }, 'This message cannot be decrypted with the key this device holds.')
            : el('span', { class: 'text' }, m.text),
        el('span', { class: 'meta' },
          pinned && el('span', { class: 'pin-mark', role: 'img', 'aria-label': 'Pinned', title: 'Pinned' }, pinIcon()),
          el('time', { datetime: m.sentAt || '' }, clock(m.sentAt)),
          mine && m.pending && el('span', { class: 'ticks pending', role: 'img', 'aria-label': 'Sending', title: 'Sending' }, '🕓')),
        counts.size > 0 && el('span', { class: 'reactions', 'aria-label': 'Reactions' }, [...counts].map(([r, n]) => `${r}${n > 1 ? n : ''}`).join(' '))),
      m.failed && el('button', { class: 'retry', onclick: () => this.post(open, m) }, 'Not sent. Retry'),
      m.id && !m.deleted && el('span', { class: 'msg-actions' },
        !open.readOnly && el('button', { type: 'button', class: 'icon', 'aria-label': 'Reply', title: 'Reply', onclick: () => this.startReply(m) }, '↩'),
        el('button', { type: 'button', class: 'icon like-btn' + (liked ? ' on' : ''), 'aria-label': 'Like', 'aria-pressed': liked ? 'true' : 'false',
          title: liked ? 'Remove your like' : 'Like', onclick: () => this.react(open, m, liked ? '' : LIKE) }, LIKE),
        open.admin && el('button', { type: 'button', class: 'icon pin-btn' + (pinned ? ' on' : ''), 'aria-label': pinned ? 'Unpin' : 'Pin', title: pinned ? 'Unpin' : 'Pin',
          'aria-pressed': pinned ? 'true' : 'false', onclick: () => this.pin(open, m, !pinned) }, pinIcon())));
  }

  renderPins() {
    const open = this.open;
    if (!open || !this.pinned) return;
    const wasOpen = /** @type {HTMLDetailsElement} */ (this.pinned).open;
    fill(this.pinned, el('summary', null, `Pinned (${open.pins.length})`),
      el('ul', { class: 'plain pinned-list', 'aria-label': 'Pinned messages' }, open.pins.length ? open.pins.map((p) => {
        const m = p.msg || open.messages.find((x) => x.id === p.messageId);
        return el('li', { 'data-mid': p.messageId },
          el('strong', null, m ? this.app.nameOf(m.senderId) + ': ' : ''),
          m ? (m.undecryptable ? 'A message this device cannot decrypt' : m.text) : 'A message');
      }) : el('li', { class: 'hint' }, 'No pinned messages.')));
    this.pinned.hidden = false;
    /** @type {HTMLDetailsElement} */ (this.pinned).open = wasOpen;
  }

  /**
   * @param {OpenChannel} open
   * @param {ChannelMsg} m
   * @param {boolean} on
   */
  async pin(open, m, on) {
    try {
      await this.app.api.post('/api/channel-messages/' + (on ? 'pin' : 'unpin'), { messageId: m.id });
      await this.reloadPins(open);
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /**
   * Sets (or with '' removes) this user's reaction; the server tells every
   * reader, this page included (message_reaction).
   * @param {OpenChannel} open
   * @param {ChannelMsg} m
   * @param {string} reaction
   */
  async react(open, m, reaction) {
    try {
      await this.app.api.post('/api/messages/react', { messageId: m.id, reaction });
      this.reacted(open, { messageId: m.id, userId: this.app.session.userId, reaction });
    } catch (e) {
      this.sendError.textContent = errorText(e);
    }
  }

  /**
   * @param {OpenChannel} open
   * @param {{messageId: string, userId: string, reaction: string}} d
   */
  reacted(open, d) {
    const m = open.messages.find((x) => x.id === d.messageId);
    if (!m) return;
    m.reactions = m.reactions.filter((r) => r.userId !== d.userId);
    if (d.reaction) m.reactions.push({ userId: d.userId, reaction: d.reaction });
    if (this.open === open) this.render(false);
  }

  /** @param {OpenChannel} open */
  async reloadPins(open) {
    const pins = await this.app.api.get('/api/channel-messages/' + enc(open.channel.channelId) + '/pinned');
    open.pins = await Promise.all(/** @type {any[]} */ (pins).map(async (p) => ({ messageId: p.messageId, pinnedBy: p.pinnedBy,
      msg: p.message ? await this.toMsg(open, p.message) : null })));
    if (this.open !== open) return;
    this.renderPins();
    this.render(false);
  }

  /** @param {ChannelMsg} m */
  startReply(m) {
    if (!this.open || this.composer.disabled || !this.replyBar.isConnected) return;
    this.open.replyTo = m;
    fill(this.replyBar, el('span', null, 'Replying to ', el('strong', null, this.app.nameOf(m.senderId)), ': ', m.text),
      el('button', { type: 'button', class: 'icon', 'aria-label': 'Cancel reply', onclick: () => this.cancelReply() }, '✕'));
    this.replyBar.hidden = false;
    this.composer.focus();
  }

  cancelReply() {
    if (this.open) this.open.replyTo = null;
    this.replyBar.hidden = true;
    fill(this.replyBar);
  }

  sendFromComposer() {
    const open = this.open;
    const text = this.composer.value.trim();
    if (!open || !text || !open.key) return;
    this.composer.value = '';
    /** @type {ChannelMsg} */
    const m = { id: '', clientMessageId: randomId(), senderId: this.app.session.userId, sentAt: new Date().toISOString(), text,
      replyToId: open.replyTo ? open.replyTo.id : '', pending: true, failed: false, undecryptable: false, deleted: false, reactions: [] };
    this.cancelReply();
    open.messages.push(m);
    this.render(true);
    this.post(open, m);
  }

  /**
   * Encrypts and sends a message; the server answers once it is stored.
   * @param {OpenChannel} open
   * @param {ChannelMsg} m
   */
  async post(open, m) {
    m.failed = false;
    m.pending = true;
    try {
      if (!open.key) throw new Error('no key for this channel');
      const content = await e2e.encryptShared({ text: m.text }, open.key);
      const r = await this.app.api.post('/api/channel-messages/send', { channelId: open.channel.channelId, content, type: 'text',
        replyToId: m.replyToId || undefined, clientMessageId: m.clientMessageId });
      m.id = r.messageId;
      m.sentAt = r.sentAt || m.sentAt;
      m.pending = false;
      this.sendError.textContent = '';
    } catch (e) {
      m.pending = false;
      m.failed = true;
      this.sendError.textContent = errorText(e);
    }
    if (this.open === open) this.render(true);
  }

  // ---------- live events ----------

  /**
   * Handles a server event of this module: new_channel_message,
   * message_reaction of a channel, channel_message_pinned/unpinned, channel_created/updated/deleted,
   * channel_key_needed, community_join_request/approved/rejected,
   * community_member_removed, community_updated and community_deleted.
   * @param {string} event
   * @param {any} d
   * @param {boolean} fromSync
   */
  async onEvent(event, d, fromSync) {
    const open = this.open;
    const cid = d && d.communityId;
    switch (event) {
      case 'new_channel_message': {
        const chid = d.channelId || d.conversationId;
        if (!open || open.channel.channelId !== chid) return;
        if (!open.key) { await this.loadChannel(open); return; }
        this.add(open, await this.toMsg(open, d));
        if (this.open === open) this.render(false);
        return;
      }
      case 'message_reaction':
        if (open && open.channel.channelId === d.channelId) this.reacted(open, d);
        return;
      case 'channel_message_pinned':
      case 'channel_message_unpinned':
        if (open && open.channel.channelId === d.channelId) await this.reloadPins(open);
        return;
      case 'channel_key_needed':
        await this.shareKey(d).catch((e) => console.error('channel key', errorText(e)));
        return;
      case 'channel_rekey_needed':
        await this.rotate(d).catch((e) => console.error('channel rekey', errorText(e)));
        return;
      case 'community_deleted':
        for (const id of d.channelIds || []) this.keys.delete(id);
        if (this.community && this.community.communityId === cid) {
          const name = this.community.name;
          await this.showHome(true);
          this.notice(`${name} was deleted.`);
        } else if (this.view === 'home') await this.showHome(false);
        return;
      case 'community_member_removed':
        if (d.userId === this.app.session.userId && this.community && this.community.communityId === cid) await this.showHome(true);
        else if (this.view === 'home') await this.showHome(false);
        return;
      case 'community_join_approved':
      case 'community_join_rejected':
        if (this.view === 'home') {
          await this.showHome(false);
          this.notice(event === 'community_join_approved' ? 'Your request to join was approved.' : 'Your request to join was declined.');
        }
        return;
      case 'community_join_request':
        if (this.view === 'community' && this.community && this.community.communityId === cid) await this.showCommunity(cid, false);
        return;
      case 'channel_created':
      case 'channel_updated':
      case 'channel_deleted':
      case 'community_updated':
        if (this.view === 'community' && this.community && this.community.communityId === cid) await this.showCommunity(cid, false);
        return;
    }
  }

  /** @param {string} text news shown on the communities page */
  notice(text) {
    const s = /** @type {HTMLElement | null} */ (this.app.main.querySelector('.communities-page [role="alert"]'));
    if (s) say(s, text, true);
  }
}
