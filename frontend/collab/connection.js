// The WebSocket transport of the collaboration client: one socket at a time,
// reconnected for as long as the client wants it.
//
// It owns everything about keeping a socket alive and nothing about sync:
// backoff with full jitter between attempts (backoff.js), an immediate
// retry when the browser says the network or the tab is back, an app-level
// `ping` heartbeat that notices a dead socket within a few seconds (TCP can
// take minutes, and Chromium keeps sockets "open" while offline), the close
// codes of PROTOCOL.md, and the round-trip time measured by the heartbeat.
// Frames are parsed here; a batch (a JSON array) is handed over whole, so
// the sync layer can apply it in order and notify once.

import { Backoff } from './backoff.js';

/**
 * @typedef {{setTimeout: (fn: () => void, ms: number) => any, clearTimeout: (handle: any) => void}} Timers
 * @typedef {{addEventListener?: (type: string, fn: () => void) => void,
 *   removeEventListener?: (type: string, fn: () => void) => void,
 *   navigator?: {onLine?: boolean}, document?: {visibilityState?: string}}} Environment
 *   the browser globals the connection listens to (window in a page)
 * @typedef {{new (url: string): WebSocketLike}} WebSocketConstructor
 * @typedef {{readyState: number, send(data: string): void, close(code?: number, reason?: string): void,
 *   onopen: ((event: any) => void) | null, onmessage: ((event: {data: any}) => void) | null,
 *   onclose: ((event: {code: number, reason: string}) => void) | null, onerror: ((event: any) => void) | null}} WebSocketLike
 * @typedef {{code: number, reason: string, retry: boolean}} DownEvent
 *   retry false: the connection stopped for good (auth, policy, close())
 */

/** Close codes after which retrying cannot help: report and stop. */
export const FATAL_CLOSE_CODES = Object.freeze({
  4401: 'unauthenticated',
  4403: 'forbidden',
  1008: 'policy_violation',
});

/** Our own close code when the heartbeat declares the socket dead. */
export const HEARTBEAT_CLOSE = 4000;

const OPEN = 1;

export class Connection {
  #url;
  #WebSocket;
  #timers;
  #now;
  #env;
  #backoff;
  #heartbeatInterval;
  #heartbeatTimeout;
  #connectTimeout;
  #stableAfter;
  /** @type {WebSocketLike | null} */
  #socket = null;
  #stopped = false;
  #started = false;
  /** @type {Map<'retry' | 'heartbeat' | 'stable', any>} */
  #timerHandles = new Map();
  /** @type {number | null} when the ping in flight was sent */
  #pingSentAt = null;
  /** since when an answer is awaited: anything received after it proves the socket alive */
  #awaitingSince = 0;
  #lastReceivedAt = 0;
  /** @type {Array<[string, () => void]>} */
  #listeners = [];

  /**
   * @param {{url: () => string, WebSocket: WebSocketConstructor, timers: Timers, now: () => number,
   *   random: () => number, env?: Environment | null, heartbeatInterval?: number, heartbeatTimeout?: number,
   *   connectTimeout?: number, backoffBase?: number, backoffCap?: number, stableAfter?: number}} options
   *   url: called before each attempt (the `since` changes);
   *   heartbeatInterval: ms between a pong and the next ping;
   *   heartbeatTimeout: ms a ping may go unanswered, with nothing else received, before the socket is dead;
   *   connectTimeout: ms to wait for the first message after opening a socket;
   *   stableAfter: ms a socket must stay up before the backoff starts again from its base.
   */
  constructor(options) {
    this.#url = options.url;
    this.#WebSocket = options.WebSocket;
    this.#timers = options.timers;
    this.#now = options.now;
    this.#env = options.env ?? null;
    this.#backoff = new Backoff({ base: options.backoffBase, cap: options.backoffCap, random: options.random });
    this.#heartbeatInterval = options.heartbeatInterval ?? 2000;
    this.#heartbeatTimeout = options.heartbeatTimeout ?? 3000;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#stableAfter = options.stableAfter ?? 5000;
    /** A socket is being opened (a new attempt). */
    this.onConnecting = () => {};
    /** @type {(messages: any[]) => void} one frame: its messages in order */
    this.onFrame = () => {};
    /** @type {(event: DownEvent) => void} */
    this.onDown = () => {};
    /** @type {(ms: number) => void} */
    this.onRtt = () => {};
    /** @type {(delay: number, attempt: number) => void} a retry is scheduled */
    this.onRetryScheduled = () => {};
  }

  /** The socket is open (messages can be sent). */
  get isOpen() {
    return this.#socket !== null && this.#socket.readyState === OPEN;
  }

  get stopped() {
    return this.#stopped;
  }

  /** Failed attempts since the connection was last stable. */
  get attempt() {
    return this.#backoff.attempt;
  }

  /** Begin connecting, and follow the browser's network and visibility signals. */
  start() {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#listen('online', () => this.retryNow());
    this.#listen('offline', () => this.#drop(1006, 'browser offline'));
    this.#listen('visibilitychange', () => {
      if (this.#env?.document?.visibilityState !== 'visible') return;
      // A tab coming back from sleep often holds a dead socket: check at once.
      if (this.#socket) this.#sendPing();
      else this.retryNow();
    });
    this.#listen('pageshow', () => this.retryNow());
    this.#open();
  }

  /** Skip the backoff wait: connect now (if not connected and not stopped). */
  retryNow() {
    if (this.#stopped || this.#socket) return;
    this.#clearTimer('retry');
    this.#open();
  }

  /**
   * Drop the socket and reconnect at once, e.g. to resync after a gap. A
   * loop of resyncs still backs off: only the first one after a stable
   * period is immediate.
   * @param {string} reason
   */
  reconnect(reason) {
    if (this.#stopped) return;
    this.#drop(1000, reason, { immediate: this.#backoff.attempt === 0 });
  }

  /** Close for good. */
  stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const [type, fn] of this.#listeners) this.#env?.removeEventListener?.(type, fn);
    this.#listeners = [];
    this.#clearTimer('retry');
    this.#teardown(1000, 'client closed');
    this.onDown({ code: 1000, reason: 'client closed', retry: false });
  }

  /**
   * Send one message or a batch (an array, one frame). False if no socket.
   * @param {unknown} message
   * @returns {boolean}
   */
  send(message) {
    if (!this.isOpen || !this.#socket) return false;
    try {
      this.#socket.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** The server answered the first message: the session is up. */
  markLive() {
    // Ping at once: the first RTT figure comes with the session.
    this.#setTimer('heartbeat', 0, () => this.#sendPing());
    this.#setTimer('stable', this.#stableAfter, () => this.#backoff.reset());
  }

  #open() {
    if (this.#stopped || this.#socket) return;
    if (this.#env?.navigator?.onLine === false) return; // wait for 'online'
    /** @type {WebSocketLike} */
    let socket;
    try {
      socket = new this.#WebSocket(this.#url());
    } catch {
      this.#scheduleRetry({ immediate: false });
      return;
    }
    this.#socket = socket;
    this.#pingSentAt = null;
    this.#lastReceivedAt = this.#now();
    this.onConnecting();
    // Until the first message comes, the heartbeat timer guards the handshake.
    this.#setTimer('heartbeat', this.#connectTimeout, () => this.#drop(HEARTBEAT_CLOSE, 'connect timeout'));
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      this.#lastReceivedAt = this.#now();
      this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#lost(event.code, event.reason ?? '');
    };
    // An error is always followed by a close event, which decides what next.
    socket.onerror = () => {};
  }

  /** @param {unknown} data */
  #receive(data) {
    let parsed;
    try {
      parsed = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return; // not JSON: nothing we could apply
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    const pongs = messages.filter((message) => message && message.type === 'pong');
    if (pongs.length > 0) this.#receivedPong();
    const rest = messages.filter((message) => message && typeof message === 'object' && message.type !== 'pong');
    if (rest.length > 0) this.onFrame(rest);
  }

  #sendPing() {
    if (!this.isOpen || this.#pingSentAt !== null) return;
    this.#pingSentAt = this.#now();
    this.#awaitingSince = this.#pingSentAt;
    this.send({ type: 'ping' });
    this.#setTimer('heartbeat', this.#heartbeatTimeout, () => this.#pingTimedOut());
  }

  #pingTimedOut() {
    if (this.#lastReceivedAt > this.#awaitingSince) {
      // Data is flowing (a long catch-up can delay the pong): not dead yet.
      this.#awaitingSince = this.#now();
      this.#setTimer('heartbeat', this.#heartbeatTimeout, () => this.#pingTimedOut());
      return;
    }
    this.#drop(HEARTBEAT_CLOSE, 'heartbeat timeout');
  }

  #receivedPong() {
    if (this.#pingSentAt === null) return;
    const rtt = this.#now() - this.#pingSentAt;
    this.#pingSentAt = null;
    this.onRtt(rtt);
    this.#scheduleHeartbeat(this.#heartbeatInterval);
  }

  /** @param {number} delay */
  #scheduleHeartbeat(delay) {
    this.#setTimer('heartbeat', delay, () => this.#sendPing());
  }

  /**
   * We decided the socket is done (dead, offline, resync): close it without
   * waiting for its close event, which a dead network may never deliver.
   * @param {number} code
   * @param {string} reason
   * @param {{immediate?: boolean}} [retry]
   */
  #drop(code, reason, retry = {}) {
    if (!this.#socket) return;
    this.#teardown(code === 1006 ? 1000 : code, reason);
    this.onDown({ code, reason, retry: true });
    this.#scheduleRetry(retry);
  }

  /**
   * The server or the network closed the socket.
   * @param {number} code
   * @param {string} reason
   */
  #lost(code, reason) {
    this.#teardown(null, reason);
    const fatal = code in FATAL_CLOSE_CODES;
    if (fatal) this.#stopped = true;
    this.onDown({ code, reason, retry: !fatal });
    if (!fatal) this.#scheduleRetry({ immediate: false });
  }

  /**
   * @param {number | null} code our close code, or null when the socket is already closed
   * @param {string} reason
   */
  #teardown(code, reason) {
    const socket = this.#socket;
    this.#socket = null;
    this.#pingSentAt = null;
    this.#clearTimer('heartbeat');
    this.#clearTimer('stable');
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    if (code !== null) {
      try {
        socket.close(code, reason.slice(0, 100));
      } catch {
        // Already closing: nothing more to do.
      }
    }
  }

  /** @param {{immediate?: boolean}} options */
  #scheduleRetry({ immediate }) {
    if (this.#stopped) return;
    this.#clearTimer('retry');
    const delay = this.#backoff.next();
    const wait = immediate ? 0 : delay;
    this.onRetryScheduled(wait, this.#backoff.attempt);
    this.#setTimer('retry', wait, () => this.#open());
  }

  /**
   * @param {'retry' | 'heartbeat' | 'stable'} name
   * @param {number} ms
   * @param {() => void} fn
   */
  #setTimer(name, ms, fn) {
    this.#clearTimer(name);
    const handle = this.#timers.setTimeout(() => {
      this.#timerHandles.delete(name);
      fn();
    }, ms);
    this.#timerHandles.set(name, handle);
  }

  /** @param {'retry' | 'heartbeat' | 'stable'} name */
  #clearTimer(name) {
    if (!this.#timerHandles.has(name)) return;
    this.#timers.clearTimeout(this.#timerHandles.get(name));
    this.#timerHandles.delete(name);
  }

  /**
   * @param {string} type
   * @param {() => void} fn
   */
  #listen(type, fn) {
    if (!this.#env?.addEventListener) return;
    this.#env.addEventListener(type, fn);
    this.#listeners.push([type, fn]);
  }
}
