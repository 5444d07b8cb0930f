// Notifications and the installable app. The service worker (/sw.js) is
// registered for every signed-in page; once the user allows notifications
// this browser subscribes to Web Push with the server's VAPID key and
// registers itself as a device (POST /api/notifications/devices, platform
// webpush, under the same deviceId as its encryption key). Pushes carry no
// message content: the worker shows who wrote ("New message from Ann") and
// a click opens that chat here (/?chat=<conversationId>).
import { el } from './dom.js';

/** @typedef {import('./app.js').ParleyApp} ParleyApp */

/** Where "not now" is remembered for this browser. */
const DISMISS_KEY = 'parley.notifyDismissed';

/**
 * The VAPID key (base64url) as the bytes PushManager.subscribe wants.
 * @param {string} s
 */
function keyBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * @param {ArrayBuffer | Uint8Array} a
 * @param {ArrayBuffer | Uint8Array} b
 */
function sameBytes(a, b) {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export class Push {
  /** @param {ParleyApp} app */
  constructor(app) {
    this.app = app;
    /** @type {ServiceWorkerRegistration | null} */
    this.reg = null;
    /** @type {HTMLElement | null} the "turn on notifications" banner, while shown */
    this.banner = null;
    /** @type {'off' | 'subscribing' | 'on' | 'unavailable' | 'denied'} */
    this.state = 'off';
    this.onMessage = (/** @type {MessageEvent} */ ev) => {
      const d = ev.data;
      if (d && d.type === 'open' && typeof d.url === 'string' && d.url.startsWith('/') && !d.url.startsWith('//')) {
        history.pushState(null, '', d.url);
        this.openFromURL();
        this.app.route();
      }
    };
  }

  get supported() {
    return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }

  /**
   * Called once signed in: registers the worker, subscribes when allowed,
   * or offers to.
   */
  async start() {
    if (!('serviceWorker' in navigator)) return;
    navigator.serviceWorker.removeEventListener('message', this.onMessage);
    navigator.serviceWorker.addEventListener('message', this.onMessage);
    try {
      this.reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    } catch (e) {
      console.warn('service worker not registered', e && e.message);
      return;
    }
    if (!this.supported) {
      this.state = 'unavailable';
      return;
    }
    if (Notification.permission === 'granted') await this.subscribe();
    else if (Notification.permission === 'default' && !this.dismissed) this.showBanner();
    else if (Notification.permission === 'denied') this.state = 'denied';
  }

  get dismissed() {
    try {
      return localStorage.getItem(DISMISS_KEY) === '1';
    } catch {
      return false;
    }
  }

  /** Asks for permission (from a click: browsers want a gesture) and subscribes. */
  async enable() {
    let perm;
    try {
      perm = await Notification.requestPermission();
    } catch {
      perm = 'denied';
    }
    this.hideBanner();
    if (perm === 'granted') await this.subscribe();
    else {
      this.state = 'denied';
      this.app.calls.toast('Notifications are blocked for this site; allow them in the browser to be told of new messages.');
    }
  }

  /**
   * Subscribes with the server's VAPID key (again if the key changed) and
   * registers the subscription as this device.
   */
  async subscribe() {
    if (!this.reg || !this.app.session) return;
    this.state = 'subscribing';
    try {
      const { publicKey } = await this.app.api.get('/api/notifications/vapid-public-key');
      const key = keyBytes(publicKey);
      const reg = await navigator.serviceWorker.ready;
      let sub = await reg.pushManager.getSubscription();
      if (sub && sub.options && sub.options.applicationServerKey && !sameBytes(sub.options.applicationServerKey, key)) {
        await sub.unsubscribe(); // made for another server key: useless now
        sub = null;
      }
      if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      const json = sub.toJSON();
      await this.app.api.post('/api/notifications/devices', { deviceId: this.app.session.deviceId, platform: 'webpush',
        subscription: { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } } });
      this.state = 'on';
    } catch (e) {
      // No push service reachable (some browsers, private windows), or the
      // server refused the endpoint: messages still arrive while Parley is open.
      this.state = 'unavailable';
      console.warn('push subscription failed', e && e.message);
    }
  }

  /**
   * Signing out: the server drops this session's devices itself; the
   * subscription goes too, so a shared browser gets nothing for the last user.
   */
  async stop() {
    this.hideBanner();
    if (!this.reg) return;
    const sub = await this.reg.pushManager.getSubscription().catch(() => null);
    if (sub) await sub.unsubscribe().catch(() => false);
    this.state = 'off';
  }

  showBanner() {
    if (this.banner || !this.app.sidebar) return;
    const b = this.banner = el('div', { class: 'notify-banner', role: 'region', 'aria-label': 'Notifications' },
      el('p', null, 'Get notified of new messages and calls. Notifications say who wrote, never what.'),
      el('div', { class: 'row' },
        el('button', { class: 'primary', onclick: () => this.enable() }, 'Turn on notifications'),
        el('button', { onclick: () => {
          try {
            localStorage.setItem(DISMISS_KEY, '1');
          } catch {
            // not remembered: asked again next time
          }
          this.hideBanner();
        } }, 'Not now')));
    const search = this.app.sidebar.querySelector('.search-box');
    this.app.sidebar.insertBefore(b, search);
  }

  hideBanner() {
    if (this.banner) this.banner.remove();
    this.banner = null;
  }

  /**
   * Opens the chat a notification named (/?chat=<conversationId>), once the
   * chat list is loaded, and tidies the address.
   */
  openFromURL() {
    const q = new URLSearchParams(location.search);
    const conv = q.get('chat');
    if (!conv) return false;
    history.replaceState(null, '', location.pathname);
    const key = this.app.convToKey.get(conv);
    if (!key) return false;
    history.replaceState(null, '', '/chat/' + encodeURIComponent(key));
    return true;
  }
}
