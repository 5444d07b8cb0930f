// Parley's service worker, served at /sw.js so that its scope is the whole
// client. It does three things:
//  - shows Web Push notifications. A push never carries message content
//    (the server has none to give: content is end-to-end encrypted), only
//    its kind, the sender's name when the user allows it, and ids; the
//    notification says who, never what, and the app fetches the rest;
//  - opens the right chat when a notification is clicked (focusing an open
//    tab of the client, or opening one);
//  - keeps a copy of the client's own files, so the installed app starts
//    without a network (it then shows that it is offline and reconnects).
//    Only the client's files are cached: never an API answer or a socket.
/// <reference lib="webworker" />

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/** Bumped with the list below; an old cache is dropped on activation. */
const CACHE = 'parley-shell-v3';
const SHELL = ['/', '/static/app.css', '/static/icon.svg', '/static/icon-192.png', '/static/manifest.webmanifest',
  '/static/js/main.js', '/static/js/app.js', '/static/js/api.js', '/static/js/dom.js', '/static/js/e2e.js', '/static/js/live.js',
  '/static/js/calls.js', '/static/js/push.js', '/static/js/admin.js', '/static/js/statuses.js', '/static/js/communities.js'];
/** The longest notification text this worker shows (an admin's message can be 1000 bytes). */
const MAX_TEXT = 300;

sw.addEventListener('install', (event) => {
  // A file missing from the list must not keep the worker from installing:
  // the cache is a convenience, pushes are not.
  event.waitUntil(caches.open(CACHE).then((c) => Promise.all(SHELL.map((u) => c.add(u).catch(() => undefined))))
    .then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('parley-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => sw.clients.claim()));
});

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin) return;
  const page = req.mode === 'navigate';
  if (!page && !url.pathname.startsWith('/static/')) return; // API, media, sockets: straight to the network
  // Network first, so an upgrade is seen at once (the server revalidates
  // with ETags); the cached copy only when the network fails.
  event.respondWith((async () => {
    try {
      const res = await fetch(req);
      if (res.ok) {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(page ? '/' : req, copy)).catch(() => undefined);
      }
      return res;
    } catch (err) {
      const hit = await caches.match(page ? '/' : req);
      if (hit) return hit;
      throw err;
    }
  })());
});

/**
 * What a push says, from its payload (the server's PushPayload: type,
 * count, ids and, with previews on, a name). Never more than the name.
 * @param {any} p
 * @returns {{title: string, body: string, tag: string, url: string}}
 */
function describe(p) {
  const clip = (/** @type {unknown} */ s) => (typeof s === 'string' ? s.slice(0, MAX_TEXT) : '');
  const count = Number.isInteger(p.count) && p.count > 1 ? p.count : 1;
  switch (p.type) {
    case 'call': {
      const what = p.callType === 'video' ? 'Video call' : 'Voice call';
      return { title: p.callerName ? `${what} from ${clip(p.callerName)}` : `Incoming ${what.toLowerCase()}`,
        body: 'Open Parley to answer.', tag: 'call:' + clip(p.callId), url: '/' };
    }
    case 'join_request':
      return { title: 'Request to join your community', body: p.requesterName ? `${clip(p.requesterName)} asked to join.` : 'Someone asked to join.',
        tag: 'community:' + clip(p.communityId), url: '/' };
    case 'key_request':
      return { title: 'A member needs a channel key', body: 'Open Parley to share it.', tag: 'community:' + clip(p.communityId), url: '/' };
    case 'admin':
      return { title: 'Message from the Parley administrators', body: clip(p.message), tag: 'admin:' + clip(p.notificationId), url: '/' };
    default: {
      const conv = clip(p.conversationId);
      const many = count > 1 ? `${count} new messages` : 'New message';
      return { title: p.senderName ? `${many} from ${clip(p.senderName)}` : many, body: 'Open Parley to read it.',
        tag: conv ? 'chat:' + conv : 'messages', url: conv ? '/?chat=' + encodeURIComponent(conv) : '/' };
    }
  }
}

sw.addEventListener('push', (event) => {
  /** @type {any} */
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = {};
  }
  if (!payload || typeof payload !== 'object') payload = {};
  const n = describe(payload);
  // One notification per chat (tag): a newer push replaces the older one.
  event.waitUntil(sw.registration.showNotification(n.title, {
    body: n.body, tag: n.tag, icon: '/static/icon-192.png', badge: '/static/icon-192.png',
    data: { url: n.url, notificationId: typeof payload.notificationId === 'string' ? payload.notificationId : '' },
  }));
});

sw.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = typeof data.url === 'string' && data.url.startsWith('/') && !data.url.startsWith('//') ? data.url : '/';
  event.waitUntil((async () => {
    const wins = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of wins) {
      if (new URL(w.url).origin !== sw.location.origin) continue;
      // An open tab opens the chat itself (it is signed in and has its keys).
      w.postMessage({ type: 'open', url });
      await /** @type {WindowClient} */ (w).focus();
      return;
    }
    await sw.clients.openWindow(url);
  })());
});
