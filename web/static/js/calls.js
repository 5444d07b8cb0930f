// Voice and video calls over WebRTC. Parley carries the call's state
// (POST /api/calls/initiate, /answer, /end; the call_* events) and relays
// the WebRTC signals (POST /api/calls/signal ⇄ call_signal); media flows
// between the two browsers, through the server's TURN relay when they
// cannot reach each other (GET /api/calls/ice-servers; "Always relay
// calls" sends everything through it, so the peer never learns this
// browser's address).
//
// Who does what: the caller's device sends the offer once the call is
// accepted, the device that accepted answers it; both trickle their ICE
// candidates. Signals are posted one at a time, in order, and a signal
// that comes before its peer connection is ready waits for it.
import { ApiError } from './api.js';
import { el, fill, pathIcon } from './dom.js';

/** @typedef {import('./app.js').ParleyApp} ParleyApp */

/**
 * @typedef {{callId: string, peerId: string, type: 'voice' | 'video', outgoing: boolean,
 *   state: 'ringing' | 'accepted' | 'connecting' | 'connected' | 'ended',
 *   pc: RTCPeerConnection | null, local: MediaStream | null, remote: MediaStream | null,
 *   muted: boolean, cameraOff: boolean, connectedAt: number, pending: any[], early: RTCIceCandidateInit[],
 *   signals: Promise<void>, outbox: Promise<void>, unknown: {event: string, d: any}[], n: number,
 *   dialog: HTMLDialogElement, timer?: ReturnType<typeof setInterval>}} Call
 * @typedef {{callId: string, callerId: string, type: 'voice' | 'video', dialog: HTMLDialogElement}} Incoming
 */

/** Where "Always relay calls" is kept (a choice of this browser, like the theme). */
const RELAY_KEY = 'parley.relayCalls';

/** The words for how a call ended, by reason or state. */
const ENDED = {
  hangup: 'Call ended', canceled: 'Call canceled', rejected: 'Call declined', missed: 'No answer', busy: 'On another call',
  failed: 'Call failed', connection_lost: 'Connection lost',
};

/**
 * @param {number} s
 * @returns {string}
 */
function duration(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

/** A ring made with WebAudio (no sound file to ship): two short tones every 2 s. */
class Ringer {
  constructor() {
    /** @type {AudioContext | null} */
    this.ctx = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
  }

  /** @param {boolean} incoming a higher ring for an incoming call, a low tone while calling out */
  start(incoming) {
    this.stop();
    try {
      this.ctx = new AudioContext();
    } catch {
      return; // no audio: the screen still rings
    }
    const beep = () => {
      const ctx = this.ctx;
      if (!ctx || ctx.state === 'closed') return;
      for (const at of incoming ? [0, 0.4] : [0]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = incoming ? 880 : 425;
        gain.gain.value = 0.08;
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + (incoming ? 0.3 : 1));
      }
    };
    beep();
    this.timer = setInterval(beep, incoming ? 2000 : 4000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}

export class Calls {
  /** @param {ParleyApp} app */
  constructor(app) {
    this.app = app;
    /** @type {Call | null} the call this device is in (or placing) */
    this.active = null;
    /** @type {Map<string, Incoming>} calls ringing on this device, by callId */
    this.incoming = new Map();
    this.ringer = new Ringer();
    /** @type {Map<string, string>} callId -> why it ended, for calls this device was shown */
    this.endedWhy = new Map();
    /** Numbers the call screens, for their element ids. */
    this.screens = 0;
    /** @type {HTMLElement | null} the Calls page's list, while it is shown */
    this.historyList = null;
    /** @type {HTMLElement | null} */
    this.historyStatus = null;
  }

  get relay() {
    try {
      return localStorage.getItem(RELAY_KEY) === '1';
    } catch {
      return false;
    }
  }

  set relay(on) {
    try {
      if (on) localStorage.setItem(RELAY_KEY, '1');
      else localStorage.removeItem(RELAY_KEY);
    } catch {
      // storage refused: the choice lasts until the page closes
    }
  }

  /** Ends whatever this device is doing in a call (sign-out). */
  reset() {
    for (const inc of this.incoming.values()) inc.dialog.remove();
    this.incoming.clear();
    this.ringer.stop();
    if (this.active) this.teardown(this.active, '');
  }

  /**
   * Buttons for the conversation header of a direct chat.
   * @param {string} peerId
   */
  buttons(peerId) {
    return [
      el('button', { class: 'icon call-btn', 'aria-label': 'Voice call', title: 'Voice call', onclick: () => this.start(peerId, 'voice') }, phoneIcon()),
      el('button', { class: 'icon call-btn', 'aria-label': 'Video call', title: 'Video call', onclick: () => this.start(peerId, 'video') }, cameraIcon()),
    ];
  }

  // ---------- placing a call ----------

  /**
   * Rings peerId: asks for the microphone (and camera) first, so a refusal
   * is known before anyone's phone rings.
   * @param {string} peerId
   * @param {'voice' | 'video'} type
   */
  async start(peerId, type) {
    if (this.active) {
      this.toast('You are already in a call.');
      return;
    }
    const call = this.newCall('', peerId, type, true);
    this.active = call;
    this.render(call, 'Calling…');
    try {
      call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: type === 'video' });
      this.render(call, 'Calling…');
      if (this.active !== call) return this.stopMedia(call);
      const res = await this.app.api.post('/api/calls/initiate', { receiverId: peerId, type });
      call.callId = res.callId;
      if (call.state === 'ended') {
        // Hung up while the call was being placed.
        await this.app.api.post('/api/calls/end', { callId: call.callId }).catch(() => {});
        return;
      }
      if (res.status === 'busy') {
        this.finish(call, ENDED.busy);
        return;
      }
      this.ringer.start(false);
      this.render(call, 'Ringing…');
      // Events about this call that came over the socket before this
      // answer did (the callee can accept that fast).
      for (const ev of call.unknown.splice(0)) await this.onEvent(ev.event, ev.d, false);
    } catch (e) {
      if (call.state === 'ended') return;
      this.finish(call, mediaError(e));
      // It may ring already: stop it.
      if (call.callId) await this.app.api.post('/api/calls/end', { callId: call.callId }).catch(() => {});
    }
  }

  /**
   * @param {string} callId
   * @param {string} peerId
   * @param {'voice' | 'video'} type
   * @param {boolean} outgoing
   * @returns {Call}
   */
  newCall(callId, peerId, type, outgoing) {
    const dialog = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'call-screen', 'aria-labelledby': `call-title-${this.screens + 1}`,
      'data-state': 'ringing', oncancel: (/** @type {Event} */ ev) => ev.preventDefault() })); // Esc does not hang up by accident
    return { callId, peerId, type, outgoing, state: 'ringing', pc: null, local: null, remote: null, muted: false, cameraOff: false,
      connectedAt: 0, pending: [], early: [], signals: Promise.resolve(), outbox: Promise.resolve(), unknown: [], n: ++this.screens, dialog };
  }

  // ---------- events ----------

  /**
   * Handles a call_* event. Events replayed by /api/sync are history: a
   * call still ringing is announced again by the server when a socket
   * connects, so only the history view needs them.
   * @param {string} event
   * @param {any} d
   * @param {boolean} fromSync
   */
  async onEvent(event, d, fromSync) {
    if (!d || typeof d.callId !== 'string') return;
    if (fromSync) {
      if (event === 'call_ended' || event === 'call_rejected') this.refreshHistory();
      return;
    }
    const call = this.active && this.active.callId === d.callId ? this.active : null;
    const placing = this.active && this.active.outgoing && !this.active.callId && this.active.state !== 'ended' ? this.active : null;
    if (!call && placing && event !== 'call_incoming') {
      placing.unknown.push({ event, d }); // perhaps this call's: its id is not known yet
      return;
    }
    switch (event) {
      case 'call_incoming':
        await this.ring(d);
        break;
      case 'call_accepted':
        if (call && call.outgoing && call.state === 'ringing') {
          this.ringer.stop();
          call.state = 'accepted';
          this.render(call, 'Connecting…');
          await this.connect(call);
        }
        break;
      case 'call_answered_elsewhere':
        this.dismiss(d.callId, 'Answered on another device');
        break;
      case 'call_rejected':
      case 'call_ended': {
        const why = ENDED[d.reason] || ENDED[d.status] || 'Call ended';
        this.endedWhy.set(d.callId, why);
        this.dismiss(d.callId, why);
        if (call) this.finish(call, why);
        this.refreshHistory();
        break;
      }
      case 'call_signal':
        if (call) this.queueSignal(call, d.signal);
        break;
      default:
        break;
    }
  }

  // ---------- an incoming call ----------

  /** @param {any} d call_incoming {callId, callerId, type} */
  async ring(d) {
    if (this.incoming.has(d.callId) || (this.active && this.active.callId === d.callId) || this.endedWhy.has(d.callId)) return;
    const type = d.type === 'video' ? 'video' : 'voice';
    const p = await this.app.profile(d.callerId).catch(() => undefined);
    if (this.endedWhy.has(d.callId)) return; // it ended while the name loaded
    const name = p ? p.name || p.username : 'Someone';
    const n = ++this.screens;
    const dialog = /** @type {HTMLDialogElement} */ (el('dialog', { class: 'call-screen incoming-call', 'aria-labelledby': `call-title-${n}`,
      'aria-describedby': `call-what-${n}`, 'data-call': d.callId, oncancel: (/** @type {Event} */ ev) => ev.preventDefault() },
    el('div', { class: 'call-peer' }, this.app.avatar(p, 'avatar huge'),
      el('h2', { id: `call-title-${n}` }, name),
      el('p', { id: `call-what-${n}`, class: 'call-state', role: 'status' }, type === 'video' ? 'Incoming video call' : 'Incoming voice call')),
    el('div', { class: 'call-actions' },
      el('button', { class: 'round decline', 'aria-label': 'Decline', onclick: () => this.answer(d.callId, false) }, hangupIcon(), el('span', null, 'Decline')),
      el('button', { class: 'round accept', 'aria-label': 'Accept', onclick: () => this.answer(d.callId, true) }, phoneIcon(), el('span', null, 'Accept')))));
    this.incoming.set(d.callId, { callId: d.callId, callerId: d.callerId, type, dialog });
    this.app.append(dialog);
    dialog.showModal();
    /** @type {HTMLElement} */ (dialog.querySelector('.accept')).focus();
    this.ringer.start(true);
  }

  /**
   * Stops a call ringing here, saying why for a moment.
   * @param {string} callId
   * @param {string} why
   */
  dismiss(callId, why) {
    const inc = this.incoming.get(callId);
    if (!inc) return;
    this.incoming.delete(callId);
    if (!this.incoming.size) this.ringer.stop();
    const state = inc.dialog.querySelector('.call-state');
    if (state) state.textContent = why;
    inc.dialog.dataset.ended = 'true';
    for (const b of inc.dialog.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (b).disabled = true;
    setTimeout(() => inc.dialog.remove(), 2000);
  }

  /**
   * Accepts or declines a call ringing here.
   * @param {string} callId
   * @param {boolean} accept
   */
  async answer(callId, accept) {
    const inc = this.incoming.get(callId);
    if (!inc) return;
    if (!accept) {
      this.dismiss(callId, 'Declined');
      await this.app.api.post('/api/calls/answer', { callId, answer: false }).catch(() => {});
      return;
    }
    if (this.active) await this.hangUp(this.active);
    this.incoming.delete(callId);
    if (!this.incoming.size) this.ringer.stop();
    inc.dialog.remove();
    const call = this.newCall(callId, inc.callerId, inc.type, false);
    this.active = call;
    this.render(call, 'Connecting…');
    try {
      call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: inc.type === 'video' });
      await this.app.api.post('/api/calls/answer', { callId, answer: true });
      if (this.active !== call) return this.stopMedia(call);
      call.state = 'accepted';
      this.render(call, 'Connecting…');
      await this.connect(call);
    } catch (e) {
      if (this.active !== call) return;
      const accepted = call.state !== 'ringing';
      this.finish(call, e instanceof ApiError && e.status === 409 ? 'Answered on another device' : mediaError(e));
      // Without media this device cannot take the call: the caller is told
      // (declined while it rings, ended once it was accepted).
      if (accepted) await this.app.api.post('/api/calls/end', { callId }).catch(() => {});
      else if (!(e instanceof ApiError)) await this.app.api.post('/api/calls/answer', { callId, answer: false }).catch(() => {});
    }
  }

  // ---------- WebRTC ----------

  /**
   * Makes the peer connection; the caller then sends the offer.
   * @param {Call} call
   */
  async connect(call) {
    const servers = await this.app.api.get('/api/calls/ice-servers').catch(() => []);
    if (this.active !== call) return;
    const iceServers = (servers || []).map((/** @type {any} */ s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
    const canRelay = iceServers.some((/** @type {any} */ s) => s.username);
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: this.relay && canRelay ? 'relay' : 'all' });
    call.pc = pc;
    call.remote = new MediaStream();
    for (const t of call.local ? call.local.getTracks() : []) pc.addTrack(t, call.local);
    pc.ontrack = (ev) => {
      call.remote.addTrack(ev.track);
      this.attachMedia(call);
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate) this.signal(call, { type: 'candidate', candidate: ev.candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => {
      if (this.active !== call) return;
      const s = pc.connectionState;
      if (s === 'connected') {
        if (!call.connectedAt) call.connectedAt = Date.now();
        call.state = 'connected';
        this.render(call, '');
      } else if (s === 'failed') {
        this.render(call, 'The connection failed. Hang up and call again.');
      } else if (s === 'disconnected') {
        this.render(call, 'Reconnecting…');
      }
    };
    call.state = 'connecting';
    if (call.outgoing) {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      this.signal(call, { type: 'offer', sdp: offer.sdp });
    }
    // Signals that arrived before the connection existed.
    for (const s of call.pending.splice(0)) this.queueSignal(call, s);
  }

  /**
   * Applies a signal from the other device, in arrival order.
   * @param {Call} call
   * @param {any} s
   */
  queueSignal(call, s) {
    if (!call.pc) {
      call.pending.push(s);
      return;
    }
    call.signals = call.signals.then(() => this.applySignal(call, s)).catch((e) => console.warn('call signal', e && e.message));
  }

  /**
   * @param {Call} call
   * @param {any} s
   */
  async applySignal(call, s) {
    const pc = call.pc;
    if (!pc || !s || typeof s !== 'object' || this.active !== call) return;
    if (s.type === 'offer' && !call.outgoing && typeof s.sdp === 'string') {
      await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.signal(call, { type: 'answer', sdp: answer.sdp });
    } else if (s.type === 'answer' && call.outgoing && typeof s.sdp === 'string') {
      await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp });
    } else if (s.type === 'candidate' && s.candidate && typeof s.candidate === 'object') {
      // A candidate that comes before the description it belongs to waits for it.
      if (pc.remoteDescription) await pc.addIceCandidate(s.candidate);
      else call.early.push(s.candidate);
      return;
    }
    if (pc.remoteDescription) for (const c of call.early.splice(0)) await pc.addIceCandidate(c);
  }

  /**
   * Posts a signal to the other device, after the ones before it.
   * @param {Call} call
   * @param {any} signal
   */
  signal(call, signal) {
    call.outbox = call.outbox.then(() => {
      if (this.active !== call || call.state === 'ended') return;
      return this.app.api.post('/api/calls/signal', { callId: call.callId, signal }).then(() => {}, (e) => {
        if (e instanceof ApiError && e.status === 409) return; // the call is over: call_ended says so
        console.warn('call signal not sent', e.message);
      });
    });
  }

  // ---------- in the call ----------

  /** @param {Call} call */
  async hangUp(call) {
    const id = call.callId;
    this.finish(call, 'Call ended');
    if (id) await this.app.api.post('/api/calls/end', { callId: id }).catch(() => {});
  }

  /** @param {Call} call */
  toggleMute(call) {
    call.muted = !call.muted;
    for (const t of call.local ? call.local.getAudioTracks() : []) t.enabled = !call.muted;
    this.render(call, '');
  }

  /** @param {Call} call */
  toggleCamera(call) {
    call.cameraOff = !call.cameraOff;
    for (const t of call.local ? call.local.getVideoTracks() : []) t.enabled = !call.cameraOff;
    this.render(call, '');
  }

  /**
   * Ends the call on this device: media stopped, the screen says why for a
   * moment, and the history is read again.
   * @param {Call} call
   * @param {string} why
   */
  finish(call, why) {
    if (call.state === 'ended') return;
    call.state = 'ended';
    this.ringer.stop();
    this.teardown(call, why);
    setTimeout(() => call.dialog.remove(), 2500);
    this.refreshHistory();
  }

  /**
   * @param {Call} call
   * @param {string} why
   */
  teardown(call, why) {
    call.state = 'ended';
    clearInterval(call.timer);
    if (call.pc) call.pc.close();
    this.stopMedia(call);
    if (this.active === call) this.active = null;
    if (why) this.render(call, why);
    else call.dialog.remove();
  }

  /** @param {Call} call */
  stopMedia(call) {
    for (const t of call.local ? call.local.getTracks() : []) t.stop();
  }

  /**
   * Draws the call screen: who, the state, the videos and the controls.
   * @param {Call} call
   * @param {string} note what to say under the name ('' keeps the default)
   */
  render(call, note) {
    const d = call.dialog;
    const p = this.app.users.get(call.peerId);
    const name = p ? p.name || p.username : 'Someone';
    d.dataset.state = call.state;
    d.dataset.type = call.type;
    if (call.callId) d.dataset.call = call.callId;
    const ended = call.state === 'ended';
    if (!d.querySelector('.call-peer')) {
      const remote = /** @type {HTMLVideoElement} */ (el('video', { class: 'remote-video', autoplay: true, playsinline: true, 'aria-label': `Video of ${name}` }));
      const local = /** @type {HTMLVideoElement} */ (el('video', { class: 'local-video', autoplay: true, playsinline: true, muted: true, 'aria-label': 'Your camera' }));
      local.muted = true;
      fill(d, remote, local,
        el('div', { class: 'call-peer' }, this.app.avatar(p, 'avatar huge'), el('h2', { id: `call-title-${call.n}` }, name),
          el('p', { class: 'call-state', role: 'status', 'aria-live': 'polite' })),
        el('div', { class: 'call-actions' }));
      this.app.append(d);
      if (!d.open) d.showModal();
      call.timer = setInterval(() => { if (call.state === 'connected') this.renderState(call, ''); }, 1000);
    }
    this.attachMedia(call);
    this.renderState(call, note);
    const actions = /** @type {HTMLElement} */ (d.querySelector('.call-actions'));
    // The buttons are drawn again; focus stays on the one that had it.
    const had = document.activeElement && d.contains(document.activeElement) ? /** @type {HTMLElement} */ (document.activeElement).dataset.act : '';
    fill(actions,
      el('button', { class: 'round' + (call.muted ? ' on' : ''), 'data-act': 'mute', 'aria-pressed': String(call.muted),
        disabled: ended, onclick: () => this.toggleMute(call) }, micIcon(call.muted), el('span', null, 'Mute')),
      call.type === 'video' && el('button', { class: 'round' + (call.cameraOff ? ' on' : ''), 'data-act': 'camera',
        'aria-pressed': String(call.cameraOff), disabled: ended, onclick: () => this.toggleCamera(call) }, cameraIcon(), el('span', null, 'Camera off')),
      el('button', { class: 'round decline', 'data-act': 'hangup', disabled: ended, onclick: () => this.hangUp(call) }, hangupIcon(), el('span', null, 'Hang up')));
    const again = /** @type {HTMLElement | null} */ (actions.querySelector(`[data-act="${had || 'hangup'}"]`));
    if (again && !ended) again.focus();
  }

  /**
   * @param {Call} call
   * @param {string} note
   */
  renderState(call, note) {
    const st = call.dialog.querySelector('.call-state');
    if (!st) return;
    if (note) st.textContent = note;
    else if (call.state === 'connected') st.textContent = duration((Date.now() - call.connectedAt) / 1000);
    else if (call.state === 'ringing') st.textContent = 'Ringing…';
    else st.textContent = 'Connecting…';
  }

  /** @param {Call} call */
  attachMedia(call) {
    const remote = /** @type {HTMLVideoElement | null} */ (call.dialog.querySelector('.remote-video'));
    const local = /** @type {HTMLVideoElement | null} */ (call.dialog.querySelector('.local-video'));
    if (remote && call.remote && remote.srcObject !== call.remote) remote.srcObject = call.remote;
    if (local && call.local && local.srcObject !== call.local && call.type === 'video') local.srcObject = call.local;
    call.dialog.classList.toggle('has-video', call.type === 'video' && !!call.remote && call.remote.getVideoTracks().length > 0);
    call.dialog.classList.toggle('camera-off', call.cameraOff);
  }

  /** @param {string} text */
  toast(text) {
    const t = el('p', { class: 'toast', role: 'status' }, text);
    this.app.append(t);
    setTimeout(() => t.remove(), 3000);
  }

  // ---------- history ----------

  refreshHistory() {
    if (this.historyList && this.historyList.isConnected) this.loadHistory();
  }

  /**
   * The Calls page: the call history with call-back buttons, and the
   * relay choice.
   * @param {boolean} push
   */
  async showHistory(push) {
    if (push) this.app.go('/calls');
    /** @type {HTMLElement} */
    this.historyList = el('ul', { class: 'plain call-history', 'aria-label': 'Call history' }, el('li', null, 'Loading…'));
    this.historyStatus = el('p', { class: 'form-error', role: 'alert' });
    const relay = /** @type {HTMLInputElement} */ (el('input', { type: 'checkbox', id: 'relay-calls', checked: this.relay, onchange: () => { this.relay = relay.checked; } }));
    this.app.showPane('Calls', el('div', { class: 'stack calls-page' },
      el('label', { class: 'check' }, relay, 'Always relay calls through the server (hides your IP address from the other person; may lower quality)'),
      el('h3', null, 'Recent calls'), this.historyStatus, this.historyList));
    await this.loadHistory();
  }

  async loadHistory() {
    const list = this.historyList;
    let calls;
    try {
      calls = await this.app.api.get('/api/calls/history?limit=50');
    } catch (e) {
      this.historyStatus.textContent = e.message;
      return;
    }
    await Promise.all([...new Set(calls.map((/** @type {any} */ c) => c.peerId))].map((id) => this.app.profile(String(id)).catch(() => {})));
    if (list !== this.historyList) return;
    fill(list, calls.length ? calls.map((/** @type {any} */ c) => {
      const p = this.app.users.get(c.peerId);
      const name = p ? p.name || p.username : 'Someone';
      const missed = c.direction === 'incoming' && (c.status === 'missed' || c.status === 'canceled');
      const what = c.status === 'ended' ? `${duration(c.duration || 0)}` : ENDED[c.reason] || ENDED[c.status] || c.status;
      const dir = c.direction === 'outgoing' ? 'Outgoing' : missed ? 'Missed' : 'Incoming';
      return el('li', { class: 'call-row' + (missed ? ' missed' : ''), 'data-call': c.callId, 'data-status': c.status },
        this.app.avatar(p, 'avatar'),
        el('span', { class: 'call-main' },
          el('span', { class: 'chat-title' }, name),
          el('span', { class: 'fine' }, `${dir} ${c.type} call · ${new Date(c.createdAt).toLocaleString()} · ${what}`)),
        el('button', { class: 'icon', 'aria-label': `Voice call ${name}`, title: 'Voice call', onclick: () => this.start(c.peerId, 'voice') }, phoneIcon()),
        el('button', { class: 'icon', 'aria-label': `Video call ${name}`, title: 'Video call', onclick: () => this.start(c.peerId, 'video') }, cameraIcon()));
    }) : el('li', null, 'No calls yet.'));
  }
}

/** @param {any} e */
function mediaError(e) {
  if (e instanceof ApiError) return e.message;
  if (e && (e.name === 'NotAllowedError' || e.name === 'SecurityError')) return 'Parley may not use your microphone or camera. Allow it in the browser and try again.';
  if (e && e.name === 'NotFoundError') return 'No microphone or camera was found.';
  return 'The call could not start: ' + (e && e.message ? e.message : String(e));
}

// ---------- icons (24×24, drawn in the current text colour) ----------

export function phoneIcon() {
  return pathIcon('M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1l-2.3 2.2z');
}

export function cameraIcon() {
  return pathIcon('M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z');
}

function hangupIcon() {
  return pathIcon('M12 9c-1.6 0-3.2.3-4.6.7v3.1c0 .4-.2.7-.6.9-1 .5-1.9 1.1-2.7 1.8-.2.2-.4.3-.7.3-.3 0-.5-.1-.7-.3L.3 13.1a1 1 0 0 1 0-1.4C3.3 8.8 7.5 7 12 7s8.7 1.8 11.7 4.7a1 1 0 0 1 0 1.4l-2.4 2.4c-.2.2-.4.3-.7.3-.3 0-.5-.1-.7-.3-.8-.7-1.7-1.3-2.7-1.8-.3-.2-.6-.5-.6-.9V9.7C15.2 9.3 13.6 9 12 9z');
}

/** @param {boolean} off */
function micIcon(off) {
  return pathIcon(off
    ? 'M19 11h-1.7c0 .7-.2 1.4-.4 2l1.2 1.2c.6-.9.9-2 .9-3.2zm-4 .2V5a3 3 0 0 0-6 0v.2l6 6zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.5 2.6l1.6 1.6A5.3 5.3 0 0 1 12 16.3 5.3 5.3 0 0 1 6.7 11H5c0 3.4 2.7 6.2 6 6.7V21h2v-3.3c.9-.1 1.8-.5 2.6-1l4.1 4.1 1.3-1.3L4.3 3z'
    : 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5.3-3c0 3-2.5 5.1-5.3 5.1S6.7 14 6.7 11H5c0 3.4 2.7 6.2 6 6.7V21h2v-3.3c3.3-.5 6-3.3 6-6.7h-1.7z');
}

