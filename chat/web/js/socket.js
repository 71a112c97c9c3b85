// The WebSocket connection: auth handshake, heartbeat, reconnect with exponential backoff and
// jitter, and request/response matching by `ref`. It knows nothing about conversations; the
// app listens for "ready" (then resumes) and "frame" events.
//
// Close codes are API (docs/protocol.md): the terminal ones (close_codes.js, generated from the
// server's table) are never retried blindly; 4401 gets one token refresh first. Everything else
// (including 1006, the network broke, and 1012, the server is draining) reconnects with backoff
// and jitter.
//
// A dead connection is noticed two ways, without waiting for TCP to time out: the browser's
// `offline` event, and an application ping that gets no pong in time. Either way the socket is
// dropped at once (its close handshake could take minutes on a dead link) and the connection
// goes to "offline"; while the browser says it has no network, no attempt is made until its
// `online` event.

import { TERMINAL } from "./close_codes.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PONG_TIMEOUT_MS = 10000; // at most; never longer than the ping interval
const HEARTBEAT_MS = 15000;
const HEARTBEAT_TIMEOUT = 4000; // our own close code for "no pong": always reconnect
const DEFAULT_MAX_FRAME_BYTES = 16384; // docs/protocol.md, until `ready` reports the server's
const encoder = new TextEncoder();

/** Bytes of the text frame the socket would send for `frame` (UTF-8 of its JSON). */
export function frameBytes(frame) {
  return encoder.encode(JSON.stringify(frame)).length;
}

export class Connection extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.ws = null;
    this.state = "idle"; // idle | connecting | open | offline | stopped
    this.attempt = 0;
    this.retryAt = 0;
    this.limits = null;
    this._nextRef = 1;
    this._pending = new Map(); // ref -> {resolve, reject}
    this._retryTimer = null;
    this._beatTimer = null;
    this._pongTimer = null;
    this._authFailures = 0;
    this.positions = null; // () => {conversationId: last seq applied}, set by the store
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this._drop(this.ws, 1006));
  }

  /** True when the browser knows it has no network at all. */
  get networkDown() {
    return navigator.onLine === false;
  }

  start() {
    if (this.state === "open" || this.state === "connecting") return;
    this._open();
  }

  stop() {
    this.state = "stopped";
    clearTimeout(this._retryTimer);
    this._stopHeartbeat();
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
    this._failAll("stopped");
  }

  reconnectNow() {
    if (this.state !== "offline") return;
    clearTimeout(this._retryTimer);
    this._open();
  }

  get ready() {
    return this.state === "open";
  }

  /** Send a frame without waiting for an answer; false when not connected. */
  send(frame) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  get maxFrameBytes() {
    return this.limits?.max_frame_bytes || DEFAULT_MAX_FRAME_BYTES;
  }

  /**
   * Send a frame and wait for the ack/resumed/pong/error carrying its ref. A frame over the
   * server's `max_frame_bytes` is refused here (code `frame_too_large`), never sent: the server
   * would close the socket (1009), and a retry after the reconnect would do it again.
   */
  request(frame) {
    if (!this.ready) return Promise.reject(Object.assign(new Error("offline"), { code: "offline" }));
    const ref = `r${this._nextRef++}`;
    const text = JSON.stringify({ ...frame, ref });
    const bytes = encoder.encode(text).length;
    if (bytes > this.maxFrameBytes) {
      const error = new Error("frame too large");
      return Promise.reject(Object.assign(error, { code: "frame_too_large", bytes, max: this.maxFrameBytes }));
    }
    return new Promise((resolve, reject) => {
      this._pending.set(ref, { resolve, reject });
      this.ws.send(text);
    });
  }

  async _open() {
    clearTimeout(this._retryTimer);
    if (this.networkDown) return this._scheduleRetry(1006); // the `online` event comes first
    this._setState("connecting");
    if (!this.api.access) {
      try {
        if (!(await this.api.refresh())) return this._terminal(4409);
      } catch {
        return this._scheduleRetry(1006);
      }
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      // Positions go in the auth frame, so the server replays each gap before any live event.
      const resume = this.positions ? this.positions() : {};
      const auth = { type: "auth", token: this.api.access, ref: "auth" };
      if (Object.keys(resume).length) auth.resume = resume;
      ws.send(JSON.stringify(auth));
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this._onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this._onClose(event.code);
    });
  }

  _onFrame(frame) {
    if (frame.type === "ready") {
      const reconnect = this.attempt > 0 || this._wasOpen;
      this.attempt = 0;
      this._authFailures = 0;
      this._wasOpen = true;
      this.everOpen = true;
      this.limits = frame.limits;
      this._setState("open");
      this._startHeartbeat();
      this.dispatchEvent(new CustomEvent("ready", { detail: { frame, reconnect } }));
      return;
    }
    if (frame.type === "pong") {
      clearTimeout(this._pongTimer);
      this._pongTimer = null;
      this._settle(frame.ref, frame, true);
      return;
    }
    const ref = frame.ref;
    if (ref !== undefined && ref !== null && this._pending.has(ref)) {
      this._settle(ref, frame, frame.type !== "error");
      if (frame.type === "ack" || frame.type === "resumed" || frame.type === "error") return;
    }
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  /** Give up on `ws` now (dead link): the close event it may fire later is ignored. */
  _drop(ws, code) {
    if (!ws || ws !== this.ws || this.state === "stopped") return;
    this.ws = null;
    try {
      ws.close(HEARTBEAT_TIMEOUT, "connection lost");
    } catch {
      // already closing
    }
    this._onClose(code);
  }

  _settle(ref, frame, ok) {
    const waiter = this._pending.get(ref);
    if (!waiter) return;
    this._pending.delete(ref);
    if (ok) waiter.resolve(frame);
    else waiter.reject(Object.assign(new Error(frame.message || frame.code), frame));
  }

  _failAll(code) {
    for (const waiter of this._pending.values()) {
      waiter.reject(Object.assign(new Error(code), { code }));
    }
    this._pending.clear();
  }

  async _onClose(code) {
    this._stopHeartbeat();
    this._failAll("disconnected");
    if (this.state === "stopped") return;
    if (code === 4401 && this._authFailures === 0) {
      // The access token expired or was rejected: one refresh, then try again.
      this._authFailures += 1;
      this.api.access = null;
      return this._scheduleRetry(code);
    }
    if (TERMINAL.has(code)) return this._terminal(code);
    this._scheduleRetry(code);
  }

  _terminal(code) {
    this.state = "stopped";
    this.dispatchEvent(new CustomEvent("terminal", { detail: { code } }));
    this._setState("stopped");
  }

  _scheduleRetry(code) {
    // Full backoff with jitter in [50%, 100%] of the step, so clients dropped together by one
    // server restart do not come back in lockstep. A draining server (1012) wants spread more
    // than delay: the first retry is simply random within one base step.
    const step = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = code === 1012 && this.attempt === 0
      ? Math.random() * BASE_DELAY_MS
      : step * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this._setState("offline");
    this._retryTimer = setTimeout(() => this._open(), delay);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    const every = Math.min(HEARTBEAT_MS, 1000 * (this.limits?.heartbeat_interval_s || 20));
    const timeout = Math.min(PONG_TIMEOUT_MS, every);
    this._beatTimer = setInterval(() => {
      if (!this.ready) return;
      const ws = this.ws;
      ws.send(JSON.stringify({ type: "ping", ref: `p${this._nextRef++}` }));
      if (this._pongTimer) return; // one outstanding ping at a time; its deadline stands
      this._pongTimer = setTimeout(() => {
        this._pongTimer = null;
        this._drop(ws, HEARTBEAT_TIMEOUT);
      }, timeout);
    }, every);
  }

  _stopHeartbeat() {
    clearInterval(this._beatTimer);
    clearTimeout(this._pongTimer);
    this._pongTimer = null;
  }

  _setState(state) {
    if (this.state !== "stopped" || state === "stopped") this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state: this.state } }));
  }
}
