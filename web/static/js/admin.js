// The admin dashboard (users named by the server's --admins): messages per
// day and active users per day as charts drawn here in SVG (no charting
// library), and the health of every node, read again every 5 seconds
// while the page is shown. The server decides who is an admin: anyone
// else gets 403 from both routes, and this page says so.
import { ApiError } from './api.js';
import { el, fill, pathIcon } from './dom.js';

/** @typedef {import('./app.js').ParleyApp} ParleyApp */
/** @typedef {{date: string, messages_sent: number, active_users: number}} Day */

const NS = 'http://www.w3.org/2000/svg';
/** How often the node health is read again (the nodes report every 5 s). */
const HEALTH_EVERY = 5000;

/**
 * An SVG element with attributes.
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {...(Element | string)} children
 */
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

/**
 * A round step for an axis from 0 to max with about n ticks: 1, 2 or 5
 * times a power of ten (never below 1: counts are whole).
 * @param {number} max
 * @param {number} n
 */
export function niceStep(max, n) {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) || 10 * pow;
  return Math.max(1, step);
}

/** @param {string} iso YYYY-MM-DD */
function shortDate(iso) {
  const d = new Date(iso + 'T00:00:00Z');
  return d.toLocaleDateString([], { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

/**
 * A chart of one series per day: bars, or a line with points. Each point
 * has a tooltip (<title>); the figure's label sums it up for screen
 * readers, and a table beside it gives every value.
 * @param {{title: string, days: Day[], value: (d: Day) => number, kind: 'bar' | 'line', cls: string}} o
 */
export function dayChart(o) {
  const W = 640;
  const H = 240;
  const pad = { l: 44, r: 12, t: 14, b: 34 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const values = o.days.map(o.value);
  const max = Math.max(0, ...values);
  const step = niceStep(max, 4);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const y = (/** @type {number} */ v) => pad.t + ih - (v / top) * ih;
  const slot = iw / Math.max(1, o.days.length);
  const x = (/** @type {number} */ i) => pad.l + slot * i + slot / 2;
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart ' + o.cls, role: 'img', preserveAspectRatio: 'xMidYMid meet' });
  const total = values.reduce((a, b) => a + b, 0);
  const peak = values.indexOf(max);
  const summary = o.days.length
    ? `${o.title} from ${shortDate(o.days[0].date)} to ${shortDate(o.days[o.days.length - 1].date)}: ` +
      `highest ${max}${peak >= 0 ? ' on ' + shortDate(o.days[peak].date) : ''}, ${o.kind === 'bar' ? 'total ' + total : 'average ' + (total / o.days.length).toFixed(1)}.`
    : `${o.title}: no data.`;
  g.setAttribute('aria-label', summary);
  // Grid lines and the value axis.
  for (let v = 0; v <= top; v += step) {
    g.append(svg('line', { class: 'grid', x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }),
      svg('text', { class: 'tick', x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  // Dates: about seven labels, whatever the range.
  const every = Math.max(1, Math.ceil(o.days.length / 7));
  o.days.forEach((d, i) => {
    if (i % every === 0 || i === o.days.length - 1) {
      g.append(svg('text', { class: 'tick', x: x(i), y: H - pad.b + 18, 'text-anchor': 'middle' }, shortDate(d.date)));
    }
  });
  g.append(svg('line', { class: 'axis', x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0) }));
  if (o.kind === 'bar') {
    const bw = Math.max(1, Math.min(28, slot * 0.7));
    o.days.forEach((d, i) => {
      const v = values[i];
      const h = Math.max(v > 0 ? 1 : 0, y(0) - y(v));
      g.append(svg('rect', { class: 'bar', x: x(i) - bw / 2, y: y(0) - h, width: bw, height: h, 'data-value': v, 'data-date': d.date },
        svg('title', {}, `${shortDate(d.date)}: ${v}`)));
    });
  } else {
    const pts = o.days.map((_, i) => `${x(i).toFixed(1)},${y(values[i]).toFixed(1)}`).join(' ');
    if (o.days.length) g.append(svg('polyline', { class: 'line', points: pts, fill: 'none' }));
    o.days.forEach((d, i) => {
      g.append(svg('circle', { class: 'point', cx: x(i), cy: y(values[i]), r: o.days.length > 60 ? 1.5 : 3, 'data-value': values[i], 'data-date': d.date },
        svg('title', {}, `${shortDate(d.date)}: ${values[i]}`)));
    });
  }
  return g;
}

/**
 * @param {number} bytes
 */
function mib(bytes) {
  return (bytes / (1 << 20)).toFixed(0) + ' MiB';
}

/** @param {number} s */
function uptime(s) {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

export class Admin {
  /** @param {ParleyApp} app */
  constructor(app) {
    this.app = app;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.days = 30;
    /** @type {HTMLElement | null} the dashboard, while shown */
    this.page = null;
    /** @type {HTMLElement | null} */
    this.totals = null;
    /** @type {HTMLElement | null} */
    this.charts = null;
    /** @type {HTMLElement | null} */
    this.nodes = null;
    /** @type {HTMLElement | null} */
    this.healthNote = null;
  }

  /**
   * The dashboard page. Asks the server, which answers 403 to non-admins:
   * the page then says so and draws nothing.
   * @param {boolean} push
   */
  async show(push) {
    if (push) this.app.go('/admin');
    clearTimeout(this.timer);
    const status = el('p', { class: 'form-error', role: 'alert' });
    const range = /** @type {HTMLSelectElement} */ (el('select', { 'aria-label': 'Days shown', onchange: () => { this.days = Number(range.value); this.loadStats(); } },
      [7, 30, 90, 365].map((n) => el('option', { value: String(n), selected: n === this.days }, `Last ${n} days`))));
    this.totals = el('p', { class: 'totals', 'aria-live': 'polite' });
    this.charts = el('div', { class: 'charts' });
    this.nodes = el('div', { class: 'nodes' });
    this.healthNote = el('p', { class: 'fine', 'aria-live': 'off' });
    this.page = el('div', { class: 'admin' },
      status,
      el('section', { 'aria-labelledby': 'stats-title' },
        el('div', { class: 'section-head' }, el('h3', { id: 'stats-title' }, 'Messages'), range),
        this.totals, this.charts),
      el('section', { 'aria-labelledby': 'health-title' },
        el('div', { class: 'section-head' }, el('h3', { id: 'health-title' }, 'System health')),
        this.healthNote, this.nodes));
    this.app.showPane('Admin dashboard', this.page);
    const pane = this.page.closest('.pane');
    if (pane) pane.classList.add('wide-pane');
    const ok = await this.loadStats();
    if (ok) await this.loadHealth();
  }

  /** @returns {Promise<boolean>} false when the server refused */
  async loadStats() {
    const page = this.page;
    const end = new Date();
    const start = new Date(end.getTime() - (this.days - 1) * 86400000);
    const q = new URLSearchParams({ start_date: start.toISOString().slice(0, 10), end_date: end.toISOString().slice(0, 10) });
    let st;
    try {
      st = await this.app.api.get('/api/stats/messages?' + q);
    } catch (e) {
      this.refused(e);
      return false;
    }
    if (page !== this.page) return false;
    /** @type {Day[]} */
    const days = st.daily || [];
    this.totals.textContent = `${st.messages_sent} messages and ${st.active_users} active users from ${shortDate(st.start_date)} to ${shortDate(st.end_date)} (UTC days).`;
    const figure = (/** @type {string} */ title, /** @type {string} */ cls, /** @type {'bar' | 'line'} */ kind, /** @type {(d: Day) => number} */ value) =>
      el('figure', { class: 'chart-box' },
        el('figcaption', null, title),
        dayChart({ title, days, value, kind, cls }),
        el('details', null, el('summary', null, 'Show the numbers'),
          el('table', { class: 'data' }, el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Day'), el('th', { scope: 'col' }, title))),
            el('tbody', null, days.map((d) => el('tr', null, el('td', null, d.date), el('td', null, String(value(d)))))))));
    fill(this.charts,
      figure('Messages per day', 'messages', 'bar', (d) => d.messages_sent),
      figure('Active users per day', 'users', 'line', (d) => d.active_users));
    return true;
  }

  /** Reads every node's health, and again in 5 s while this page is shown. */
  async loadHealth() {
    clearTimeout(this.timer);
    const page = this.page;
    if (!page || !page.isConnected) return;
    try {
      // Read by hand: during a database outage the server answers 503 with
      // the report beside the error, which is when it matters most.
      const res = await fetch('/api/system/health', { headers: { Authorization: 'Bearer ' + this.app.api.token }, credentials: 'omit', cache: 'no-store' });
      const env = await res.json().catch(() => null);
      if (page !== this.page) return;
      if (res.status === 403) {
        this.refused(new ApiError('forbidden', 'forbidden', 403));
        return;
      }
      if (env && env.data && typeof env.data === 'object') this.renderNodes(env.data);
      if (!env || !env.success) {
        const why = env && env.error ? env.error.message : `HTTP ${res.status}`;
        this.healthNote.textContent = `Could not read the system health: ${why} (trying again every 5 s)`;
      }
    } catch {
      this.healthNote.textContent = 'Cannot reach the server (trying again every 5 s).';
    }
    if (page.isConnected) this.timer = setTimeout(() => this.loadHealth(), HEALTH_EVERY);
  }

  /** @param {any} h */
  renderNodes(h) {
    /** @type {any[]} */
    const nodes = (h.nodes && h.nodes.length ? h.nodes : [h]).slice().sort((/** @type {any} */ a, /** @type {any} */ b) => String(a.node).localeCompare(String(b.node)));
    this.healthNote.textContent = `${nodes.length} node${nodes.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()} · this page is served by ${h.node}`;
    const meter = (/** @type {string} */ label, /** @type {number} */ pct) => {
      const bar = el('span', { class: 'meter-fill' + (pct >= 85 ? ' high' : '') });
      // Through CSSOM: the CSP (style-src 'self') refuses style attributes.
      bar.style.width = Math.min(100, Math.max(0, pct)).toFixed(0) + '%';
      return el('span', { class: 'meter-row' },
        el('span', null, label),
        el('span', { class: 'meter', role: 'meter', 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(pct)) }, bar),
        el('span', { class: 'meter-value' }, `${Math.round(pct)}%`));
    };
    fill(this.nodes, nodes.map((n) => el('article', { class: 'node-card', 'data-node': n.node, 'aria-label': `Node ${n.node}` },
      el('h4', null, n.node, n.node === h.node && el('span', { class: 'fine' }, ' (this one)')),
      meter('CPU', Number(n.cpu_percent) || 0),
      meter('Memory', Number(n.memory_percent) || 0),
      el('dl', { class: 'facts' },
        el('dt', null, 'Connections'), el('dd', { 'data-fact': 'connections' }, String(n.connections)),
        el('dt', null, 'Goroutines'), el('dd', { 'data-fact': 'goroutines' }, String(n.goroutines)),
        el('dt', null, 'Process memory'), el('dd', null, mib(Number(n.memory_bytes) || 0)),
        el('dt', null, 'Database'), el('dd', { 'data-fact': 'db', class: n.db && n.db.ok ? 'ok' : 'bad' },
          n.db && n.db.ok ? `OK, ${Number(n.db.latency_ms).toFixed(1)} ms` : 'unreachable'),
        el('dt', null, 'Bus'), el('dd', { class: n.bus && n.bus.ok ? 'ok' : 'bad' }, n.bus && n.bus.ok ? 'OK' : 'down'),
        el('dt', null, 'Uptime'), el('dd', null, uptime(Number(n.uptime) || 0))))));
  }

  /** @param {any} e */
  refused(e) {
    clearTimeout(this.timer);
    const text = e instanceof ApiError && e.status === 403
      ? 'Only administrators can see this page.'
      : `The dashboard could not load: ${e && e.message ? e.message : String(e)}`;
    if (this.page) fill(this.page, el('p', { class: 'refused', role: 'alert' }, text));
  }
}

/** The dashboard's icon (bars), drawn in the current text colour. */
export function chartIcon() {
  return pathIcon('M4 20h16v-2H4v2zm1-4h3V9H5v7zm5 0h3V4h-3v12zm5 0h3v-5h-3v5z');
}
