// CollaborationClient: the browser (and Node) side of shared/PROTOCOL.md.
//
// The original sketch's API keeps working:
//
//   const client = new CollaborationClient('graph-1', (data, isInitial) => render(data, isInitial));
//   client.sendAnnotationUpdate({ id: 'tag-1', text: 'New Tag', color: 'red' });
//
// and the richer one sits beside it (update, addTags, textEdit, events...).
// This module moves data only: the sync state and its rules are replica.js
// (no I/O), the socket and its keep-alive are connection.js, storage is
// offline-store.js. Each call or frame goes: into the replica, then out to
// the socket (pending writes not yet sent on it), to the events, and to
// storage (at once after a local write; soon after remote ones).

import { clone } from './annotation-state.js';
import { Connection, FATAL_CLOSE_CODES } from './connection.js';
import { Emitter } from './emitter.js';
import { OfflineStore, memoryStorage, randomId } from './offline-store.js';
import { Replica } from './replica.js';

/**
 * @typedef {import('./annotation-state.js').Annotation} Annotation
 * @typedef {import('./text-ot.js').Op} Op
 * @typedef {import('./offline-store.js').StorageLike} StorageLike
 * @typedef {import('./offline-store.js').PendingWrite} PendingWrite
 * @typedef {import('./replica.js').AnnotationChange} AnnotationChange
 * @typedef {import('./replica.js').ClientError} ClientError
 * @typedef {'connecting' | 'live' | 'offline' | 'resyncing' | 'closed'} Status
 * @typedef {{clientId: string, user: string | null, state: Record<string, any>}} PresenceEntry
 * @typedef {{kind: 'ping' | 'ack', ms: number}} Latency
 * @typedef {{status: [Status], annotation: [AnnotationChange], snapshot: [Record<string, Annotation>],
 *   presence: [PresenceEntry[]], error: [ClientError], latency: [Latency], pending: [number]}} ClientEvents
 *   pending: the number of unacked own writes, when it changes
 * @typedef {{url?: string, token?: string, user?: string, clientId?: string,
 *   storage?: StorageLike | null, sessionStorage?: StorageLike | null,
 *   WebSocket?: import('./connection.js').WebSocketConstructor, batch?: boolean, autoConnect?: boolean,
 *   timers?: import('./connection.js').Timers, now?: () => number, random?: () => number,
 *   env?: import('./connection.js').Environment | null, heartbeatInterval?: number, heartbeatTimeout?: number,
 *   connectTimeout?: number, backoffBase?: number, backoffCap?: number, persistDelay?: number,
 *   rateLimitDelay?: number}} ClientOptions
 */

/** Writes per frame when several go at once (the server takes up to 1000). */
const BATCH_MAX_MESSAGES = 200;

export class CollaborationClient {
  /** @type {Emitter<ClientEvents>} */
  #events = new Emitter();
  #replica;
  #connection;
  #store;
  #timers;
  #now;
  #batch;
  #base;
  #token;
  #persistDelay;
  #rateLimitDelay;
  #env;
  /** @type {Status} */
  #status = 'offline';
  /** the current socket answered its first message: writes go straight out */
  #live = false;
  #resyncing = false;
  #forceSnapshot = false;
  #closed = false;
  /** op_ids sent on the current socket (anything else goes on the next flush) */
  #sentOnSocket = new Set();
  /** @type {Map<string, number>} op_id -> when it was last sent, for the ack latency */
  #sentAt = new Map();
  /** @type {Map<string, number>} op_id -> not before (rate limited) */
  #heldUntil = new Map();
  /** @type {Map<string, PresenceEntry>} */
  #others = new Map();
  /** @type {Record<string, any> | null} */
  #presenceState = null;
  /** @type {number | null} */
  #rtt = null;
  /** @type {number | null} */
  #ackLatency = null;
  #pendingReported = 0;
  #storageFailed = false;
  /** @type {Map<'persist' | 'flush' | 'lease', any>} */
  #timerHandles = new Map();
  /** @type {Array<[string, () => void]>} */
  #envListeners = [];

  /**
   * @param {string} graphId
   * @param {((data: any, isInitial: boolean) => void) | null} [onUpdateCallback] the original
   *   sketch's callback: (all annotations by id, true) for a full state, then (annotation, false)
   *   for each annotation whose view changed (`{id, deleted: true}` when it is gone)
   * @param {ClientOptions} [options]
   */
  constructor(graphId, onUpdateCallback = null, options = {}) {
    this.graphId = graphId;
    this.onUpdateCallback = onUpdateCallback;
    this.user = options.user ?? null;
    const random = options.random ?? Math.random;
    this.#timers = options.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h) };
    this.#now = options.now ?? Date.now;
    this.#batch = options.batch ?? true;
    this.#base = websocketBase(options.url);
    this.#token = options.token ?? null;
    this.#persistDelay = options.persistDelay ?? 1000;
    this.#rateLimitDelay = options.rateLimitDelay ?? 1000;
    this.#env = options.env !== undefined ? options.env : browserWindow();
    // Unique per page load, so a reused client_id never repeats an op_id.
    const instance = randomId(8, random);
    let opCounter = 0;
    this.#store = new OfflineStore({
      graphId,
      storage: options.storage ?? webStorage('localStorage') ?? memoryStorage(),
      sessionStorage: options.sessionStorage ?? webStorage('sessionStorage') ?? memoryStorage(),
      instance,
      now: this.#now,
      random,
    });
    this.clientId = this.#store.claimClientId(options.clientId);
    this.#replica = new Replica({
      clientId: this.clientId,
      author: authorOf(options.token, this.user),
      newOpId: () => `${instance}.${++opCounter}`,
      now: this.#now,
    });
    const WebSocketImpl = options.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (!WebSocketImpl) throw new Error('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)');
    this.#connection = new Connection({
      url: () => this.#connectUrl(),
      WebSocket: WebSocketImpl,
      timers: this.#timers,
      now: this.#now,
      random,
      env: this.#env,
      heartbeatInterval: options.heartbeatInterval,
      heartbeatTimeout: options.heartbeatTimeout,
      connectTimeout: options.connectTimeout,
      backoffBase: options.backoffBase,
      backoffCap: options.backoffCap,
    });
    this.#connection.onConnecting = () => this.#onConnecting();
    this.#connection.onFrame = (messages) => this.#onFrame(messages);
    this.#connection.onDown = (event) => this.#onDown(event);
    this.#connection.onRtt = (ms) => {
      this.#rtt = ms;
      this.#events.emit('latency', { kind: 'ping', ms });
    };
    this.#restore();
    this.#renewLeaseLater();
    this.#listenToPage();
    if (options.autoConnect ?? true) this.connect();
  }

  // -- reading ------------------------------------------------------------

  /** @returns {Status} */
  get status() {
    return this.#status;
  }

  /** The last seq applied (null before any state). */
  get lastSeq() {
    return this.#replica.lastSeq;
  }

  /** Round trip of the last heartbeat ping (ms), or null. */
  get rtt() {
    return this.#rtt;
  }

  /** Round trip of the last acked write, send to ack, including the server's durable commit (ms). */
  get ackLatency() {
    return this.#ackLatency;
  }

  /** Own writes not yet acked. */
  get pendingCount() {
    return this.#replica.pending.length;
  }

  /**
   * The annotation as the UI should show it (server + pending), a copy.
   * @param {string} id
   * @returns {Annotation | undefined}
   */
  get(id) {
    return clone(this.#replica.view(id));
  }

  /** @returns {Record<string, Annotation>} every live annotation by id, copies */
  getAll() {
    return clone(Object.fromEntries(this.#replica.views));
  }

  /**
   * The annotation is gone and was deleted (not merely unknown): writing it
   * again needs `recreate` (the server refuses a plain update with conflict).
   * @param {string} id
   */
  isDeleted(id) {
    return this.#replica.isDeleted(id);
  }

  /** @returns {PresenceEntry[]} the others on this graph and their state */
  get presence() {
    return clone([...this.#others.values()]);
  }

  /**
   * @template {keyof ClientEvents} K
   * @param {K} type
   * @param {(...args: ClientEvents[K]) => void} listener
   * @returns {() => void} unsubscribe
   */
  on(type, listener) {
    return this.#events.on(type, listener);
  }

  /**
   * @template {keyof ClientEvents} K
   * @param {K} type
   * @param {(...args: ClientEvents[K]) => void} listener
   */
  off(type, listener) {
    this.#events.off(type, listener);
  }

  // -- writing (each shows at once, is persisted, and goes out when live) -----

  /**
   * The original sketch's write: set the fields of `payload` on annotation
   * `payload.id` (null removes a field). Returns the op_id.
   * @param {Record<string, any> & {id: string}} payload
   * @returns {string}
   */
  sendAnnotationUpdate(payload) {
    const { id, ...fields } = payload;
    return this.update(id, fields);
  }

  /**
   * Set fields (last writer wins per field; null removes; `tags` may be a
   * list or `{add, remove}`). Creates the annotation if unknown.
   * @param {string} id
   * @param {Record<string, any>} fields
   * @param {{recreate?: boolean}} [options] recreate: restore a deleted annotation afresh
   * @returns {string} the op_id
   */
  update(id, fields, { recreate = false } = {}) {
    if (typeof id !== 'string' || id === '') throw new TypeError('an annotation id is a non-empty string');
    this.#assertOpen();
    return this.#local(this.#replica.update(id, fields, recreate));
  }

  /**
   * Add tags as a set delta: concurrent additions by others all survive.
   * @param {string} id
   * @param {string[]} tags
   */
  addTags(id, tags) {
    return this.update(id, { tags: { add: [...tags] } });
  }

  /**
   * @param {string} id
   * @param {string[]} tags
   */
  removeTags(id, tags) {
    return this.update(id, { tags: { remove: [...tags] } });
  }

  /**
   * Delete (deletion wins over later updates that do not recreate).
   * @param {string} id
   * @returns {string} the op_id
   */
  deleteAnnotation(id) {
    this.#assertOpen();
    return this.#local(this.#replica.delete(id));
  }

  /**
   * Re-create a deleted annotation from `fields` alone.
   * @param {string} id
   * @param {Record<string, any>} fields
   */
  recreate(id, fields) {
    return this.update(id, fields, { recreate: true });
  }

  /**
   * Edit a text field with an op on its current text as the view shows it
   * (e.g. diffToOp(before, after) from a textarea). Applied at once; sent
   * as a `text_op`, one in flight per field, later edits composed meanwhile.
   * Returns the op_id of the op that carries the edit (null: buffered).
   * Throws InvalidOpError (nothing changed) when the op does not fit.
   * @param {string} id
   * @param {string} field
   * @param {Op} ops
   * @returns {string | null}
   */
  textEdit(id, field, ops) {
    this.#assertOpen();
    return this.#local(this.#replica.textEdit(id, field, ops));
  }

  /**
   * Tell the others what this user is doing (selection, name, colour).
   * Ephemeral: resent after each reconnect, never stored.
   * @param {Record<string, any>} state
   */
  setPresence(state) {
    this.#presenceState = clone(state);
    if (this.#live) this.#connection.send({ type: 'presence', state: this.#presenceState });
  }

  // -- lifecycle ------------------------------------------------------------

  /** Start connecting (done by the constructor unless autoConnect is false). */
  connect() {
    if (this.#closed || this.#connection.stopped) return;
    this.#connection.start();
    // The browser says there is no network: the connection waits for 'online'.
    if (!this.#connection.isOpen && this.#env?.navigator?.onLine === false) this.#setStatus('offline');
  }

  /** Skip the backoff wait and try now. */
  reconnectNow() {
    this.#connection.retryNow();
  }

  /** Disconnect for good; pending writes stay in storage for the next client. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#persist();
    for (const name of [...this.#timerHandles.keys()]) this.#clearTimer(name);
    for (const [type, fn] of this.#envListeners) this.#env?.removeEventListener?.(type, fn);
    this.#connection.stop();
    this.#store.releaseLease();
  }

  #assertOpen() {
    if (this.#closed) throw new Error('the client is closed');
  }

  /**
   * After a local write: persist it before anything else can go wrong.
   * @template T
   * @param {T} result
   * @returns {T}
   */
  #local(result) {
    this.#settle();
    this.#persist();
    return result;
  }

  // -- the connection's events ------------------------------------------------------

  #connectUrl() {
    const params = new URLSearchParams({ client_id: this.clientId });
    const since = this.#replica.lastSeq;
    if (since !== null && !this.#forceSnapshot) params.set('since', String(since));
    if (this.user) params.set('user', this.user);
    if (this.#token) params.set('token', this.#token);
    if (this.#batch) params.set('batch', '1');
    return `${this.#base}/ws/collaborate/${encodeURIComponent(this.graphId)}?${params}`;
  }

  #onConnecting() {
    this.#live = false;
    this.#sentOnSocket.clear();
    this.#setStatus(this.#resyncing ? 'resyncing' : 'connecting');
  }

  /** @param {import('./connection.js').DownEvent} event */
  #onDown({ code, reason, retry }) {
    this.#live = false;
    // Whatever was sent on that socket and not acked goes again on the next.
    const onSocket = this.#replica.pending.filter((entry) => this.#sentOnSocket.has(entry.opId));
    this.#sentOnSocket.clear();
    this.#replica.connectionLost(code, onSocket);
    if (this.#others.size > 0) {
      this.#others.clear();
      this.#events.emit('presence', []);
    }
    const fatal = FATAL_CLOSE_CODES[/** @type {keyof typeof FATAL_CLOSE_CODES} */ (code)];
    if (fatal) this.#events.emit('error', { code: fatal, message: reason || fatal, closeCode: code });
    if (code === 1013) this.#resyncing = true;
    this.#settle();
    if (!retry) {
      this.#setStatus('closed');
      return;
    }
    this.#setStatus(this.#resyncing ? 'resyncing' : 'offline');
  }

  /** @param {any[]} messages one frame, in order */
  #onFrame(messages) {
    for (const message of messages) {
      this.#handle(message);
      // A message asked for a resync: the rest of the frame is moot.
      if (this.#resyncIfAsked()) break;
    }
    this.#settle();
    this.#schedulePersist();
  }

  /** @param {any} message */
  #handle(message) {
    switch (message.type) {
      case 'initial_state':
        this.#replica.applySnapshot(message);
        this.#becomeLive();
        break;
      case 'catch_up':
        if (this.#replica.applyCatchUp(message)) this.#becomeLive();
        break;
      case 'annotation_update':
      case 'annotation_delete':
      case 'text_op':
        this.#replica.applySequenced(message);
        break;
      case 'ack': {
        const sentAt = this.#sentAt.get(message.op_id);
        if (sentAt !== undefined && this.#replica.pendingEntry(message.op_id)) {
          this.#ackLatency = this.#now() - sentAt;
          this.#events.emit('latency', { kind: 'ack', ms: this.#ackLatency });
        }
        this.#sentAt.delete(message.op_id);
        this.#replica.ack(message);
        break;
      }
      case 'error':
        this.#sentAt.delete(message.op_id);
        if (this.#replica.refused(message)) {
          // Rate limited: not refused for what it is; send it again after a pause.
          this.#sentOnSocket.delete(message.op_id);
          this.#heldUntil.set(message.op_id, this.#now() + this.#rateLimitDelay);
          this.#setTimer('flush', this.#rateLimitDelay, () => this.#settle());
        }
        break;
      case 'presence':
        if (message.client_id === this.clientId || typeof message.client_id !== 'string') break;
        this.#others.set(message.client_id, {
          clientId: message.client_id,
          user: message.user ?? null,
          state: message.state ?? {},
        });
        this.#events.emit('presence', this.presence);
        break;
      case 'presence_leave':
        if (this.#others.delete(message.client_id)) this.#events.emit('presence', this.presence);
        break;
      default:
        break; // unknown types are extensions we do not use
    }
  }

  #becomeLive() {
    this.#live = true;
    this.#resyncing = false;
    this.#forceSnapshot = false;
    this.#connection.markLive();
    if (this.#presenceState) this.#connection.send({ type: 'presence', state: this.#presenceState });
    this.#setStatus('live');
    this.#settle();
    this.#persist();
  }

  /** Reconnect if the replica asked to: with `since`, or without (full). */
  #resyncIfAsked() {
    const resync = this.#replica.takeResync();
    if (!resync) return false;
    this.#resyncing = true;
    if (resync.full) this.#forceSnapshot = true;
    this.#connection.reconnect(resync.reason);
    return true;
  }

  /**
   * After anything reached the replica: report what changed and went wrong,
   * and send what has not gone out on this socket.
   */
  #settle() {
    this.#resyncIfAsked();
    for (const error of this.#replica.takeErrors()) this.#events.emit('error', error);
    const { changes, snapshot } = this.#replica.takeChanges();
    if (snapshot) {
      const all = this.getAll();
      this.#events.emit('snapshot', all);
      this.#callback(all, true);
    }
    for (const change of changes) {
      this.#events.emit('annotation', change);
      if (!snapshot) this.#callback(change.annotation ?? { id: change.id, deleted: true }, false);
    }
    this.#flushPending();
    const pending = this.#replica.pending.length;
    if (pending !== this.#pendingReported) {
      this.#pendingReported = pending;
      this.#events.emit('pending', pending);
    }
  }

  /** Send, in order, the pending writes not yet sent on this socket. */
  #flushPending() {
    if (!this.#live) return;
    const now = this.#now();
    const due = this.#replica.pending.filter(
      (entry) => !this.#sentOnSocket.has(entry.opId) && (this.#heldUntil.get(entry.opId) ?? 0) <= now,
    );
    for (let start = 0; start < due.length; start += BATCH_MAX_MESSAGES) {
      const chunk = due.slice(start, start + BATCH_MAX_MESSAGES);
      const messages = chunk.map(toMessage);
      if (!this.#connection.send(messages.length === 1 ? messages[0] : messages)) return;
      this.#replica.markSent(chunk);
      for (const entry of chunk) {
        this.#sentOnSocket.add(entry.opId);
        this.#sentAt.set(entry.opId, now);
        this.#heldUntil.delete(entry.opId);
      }
    }
  }

  /**
   * @param {any} data
   * @param {boolean} isInitial
   */
  #callback(data, isInitial) {
    if (!this.onUpdateCallback) return;
    try {
      this.onUpdateCallback(data, isInitial);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** @param {Status} status */
  #setStatus(status) {
    if (this.#status === status) return;
    this.#status = status;
    this.#events.emit('status', status);
  }

  // -- persistence ---------------------------------------------------------------

  #restore() {
    const record = this.#store.load();
    if (!record) return;
    this.#replica.restore(record);
    // Deliver after the constructor returns, once the caller holds the client.
    queueMicrotask(() => {
      if (this.#replica.views.size === 0 || this.#closed) return;
      const all = this.getAll();
      this.#events.emit('snapshot', all);
      this.#callback(all, true);
    });
  }

  /** Save now: after every local write (it must survive a reload at once). */
  #persist() {
    this.#clearTimer('persist');
    const saved = this.#store.save(this.#replica.toRecord());
    if (!saved && !this.#storageFailed) {
      this.#storageFailed = true;
      this.#events.emit('error', {
        code: 'storage',
        message: 'offline storage refused the queue: unsent edits will not survive a reload',
      });
    }
  }

  /**
   * Save soon: remote changes and acks only move the cache forward (the
   * saved record stays consistent, just older: its acked writes come back
   * as our own ops in the next catch_up).
   */
  #schedulePersist() {
    if (this.#timerHandles.has('persist') || this.#closed) return;
    this.#setTimer('persist', this.#persistDelay, () => this.#persist());
  }

  #renewLeaseLater() {
    this.#setTimer('lease', this.#store.leaseRenewInterval, () => {
      this.#store.renewLease();
      this.#renewLeaseLater();
    });
  }

  #listenToPage() {
    if (!this.#env?.addEventListener) return;
    /** @type {Array<[string, () => void]>} */
    const listeners = [
      [
        'pagehide',
        () => {
          this.#persist();
          this.#store.releaseLease();
        },
      ],
      ['pageshow', () => this.#store.renewLease()],
    ];
    for (const [type, fn] of listeners) this.#env.addEventListener(type, fn);
    this.#envListeners = listeners;
  }

  /**
   * @param {'persist' | 'flush' | 'lease'} name
   * @param {number} ms
   * @param {() => void} fn
   */
  #setTimer(name, ms, fn) {
    this.#clearTimer(name);
    this.#timerHandles.set(
      name,
      this.#timers.setTimeout(() => {
        this.#timerHandles.delete(name);
        fn();
      }, ms),
    );
  }

  /** @param {'persist' | 'flush' | 'lease'} name */
  #clearTimer(name) {
    if (!this.#timerHandles.has(name)) return;
    this.#timers.clearTimeout(this.#timerHandles.get(name));
    this.#timerHandles.delete(name);
  }
}

/**
 * The wire message of a pending write.
 * @param {PendingWrite} entry
 */
function toMessage(entry) {
  if (entry.type === 'annotation_update') {
    return entry.recreate
      ? { type: entry.type, op_id: entry.opId, recreate: true, payload: entry.payload }
      : { type: entry.type, op_id: entry.opId, payload: entry.payload };
  }
  if (entry.type === 'annotation_delete') return { type: entry.type, op_id: entry.opId, id: entry.id };
  return { type: entry.type, op_id: entry.opId, id: entry.id, field: entry.field, base: entry.base, ops: entry.ops };
}

/**
 * The author the server records for our writes: the token's `sub` when
 * there is a token (auth on), else the `user` parameter. Decoded only to
 * label our own writes as the server will; never trusted for anything.
 * @param {string | undefined} token
 * @param {string | null} user
 * @returns {string | null}
 */
function authorOf(token, user) {
  if (!token) return user;
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (ch) => ch.charCodeAt(0))));
    return typeof claims.sub === 'string' ? claims.sub : user;
  } catch {
    return user;
  }
}

/**
 * ws(s)://host of the server, from an explicit URL or the page's location.
 * @param {string | undefined} url
 */
function websocketBase(url) {
  const location = /** @type {any} */ (globalThis).location;
  const raw = url ?? (location ? `${location.protocol}//${location.host}` : null);
  if (!raw) throw new Error('no server URL: pass options.url outside a browser');
  return raw.replace(/^http(s?):/, 'ws$1:').replace(/\/+$/, '');
}

/** @returns {import('./connection.js').Environment | null} */
function browserWindow() {
  const scope = /** @type {any} */ (globalThis);
  return typeof scope.window !== 'undefined' && typeof scope.addEventListener === 'function' ? scope : null;
}

/**
 * localStorage / sessionStorage when usable (access throws in some sandboxes).
 * @param {'localStorage' | 'sessionStorage'} name
 * @returns {StorageLike | null}
 */
function webStorage(name) {
  try {
    return /** @type {any} */ (globalThis)[name] ?? null;
  } catch {
    return null;
  }
}
