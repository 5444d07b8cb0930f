// Real time over the plain WebSocket /ws, opened with a single-use ticket
// (POST /api/auth/ws-ticket) so the bearer token never appears in a URL.
// After every (re)connect it pages through GET /api/sync from the last
// cursor, so a message sent while this tab was offline is never missed;
// the app drops duplicates by messageId.

/** @typedef {import('./api.js').Api} Api */

export class Live {
  /**
   * @param {Api} api
   * @param {(event: string, data: any, fromSync: boolean) => void} onEvent
   * @param {(cursor: string) => void} saveCursor
   * @param {(state: 'online' | 'connecting' | 'offline') => void} onState
   */
  constructor(api, onEvent, saveCursor, onState) {
    this.api = api;
    this.onEvent = onEvent;
    this.saveCursor = saveCursor;
    this.onState = onState;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.cursor = '';
    this.attempt = 0;
    this.stopped = true;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.syncing = Promise.resolve();
    this.online = () => this.reconnectNow();
    this.offline = () => { if (this.ws) this.ws.close(); };
  }

  /** @param {string} cursor where the last sync stopped ('' for none) */
  start(cursor) {
    this.cursor = cursor;
    this.stopped = false;
    addEventListener('online', this.online);
    addEventListener('offline', this.offline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this.online);
    removeEventListener('offline', this.offline);
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  async connect() {
    if (this.stopped) return;
    this.onState('connecting');
    let ticket;
    try {
      ticket = (await this.api.post('/api/auth/ws-ticket')).ticket;
    } catch (e) {
      if (e.status === 401) return; // signed out: the app handles it
      this.retry();
      return;
    }
    if (this.stopped) return;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?ticket=' + encodeURIComponent(ticket);
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState('online');
      // Sync after the socket is up: what arrives meanwhile comes on the
      // socket, what came before is in the sync log.
      this.sync();
    };
    ws.onmessage = (ev) => {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (f && typeof f.event === 'string') this.onEvent(f.event, f.data, false);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    this.onState('offline');
    // Exponential backoff with jitter, 0.5 s up to 30 s.
    const base = Math.min(30000, 500 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
  }

  /** Pages through /api/sync from the saved cursor; one run at a time. */
  sync() {
    this.syncing = this.syncing.then(async () => {
      for (let page = 0; page < 1000 && !this.stopped; page++) {
        const q = new URLSearchParams({ limit: '200' });
        if (this.cursor) q.set('cursor', this.cursor);
        let res;
        try {
          res = await this.api.get('/api/sync?' + q);
        } catch {
          return; // the next reconnect syncs again
        }
        for (const it of res.items || []) this.onEvent(it.event, it.data, true);
        if (res.nextCursor) {
          this.cursor = res.nextCursor;
          this.saveCursor(this.cursor);
        }
        if (!res.hasMore) return;
      }
    });
    return this.syncing;
  }

  /**
   * Sends a typing indicator over the socket when it is open.
   * @param {string} event
   * @param {any} data
   */
  send(event, data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ event, data }));
      return true;
    }
    return false;
  }
}
