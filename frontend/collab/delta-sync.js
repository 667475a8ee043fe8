// CollaborationClient: the browser (and Node) side of shared/PROTOCOL.md.
//
// State, and the one invariant the rest follows from:
//
//   server   the annotations as of `lastSeq`: every sequenced write the
//            client has seen, folded in seq order (others' broadcasts and
//            the acks of its own writes). Identical to the server's state.
//   pending  the client's own writes not yet acked, in the order made, each
//            with an op_id; kept in storage so they survive a reload.
//   view     = server + pending folded on top (+ the local text of fields
//            with unconfirmed text edits). What the UI shows.
//
// Figma's rule falls out of it: a remote value for a field with a pending
// local write lands in `server`, but the view still shows the pending value
// until its ack; after the ack the server state has it too, so the UI never
// flickers back to an older value. A refused write leaves `pending`, and the
// view is recomputed without it: a rollback.
//
// Transport (sockets, heartbeat, backoff, close codes) is connection.js;
// persistence is offline-store.js; text fields are text-field.js.

import {
  applyTagsDelta,
  applyText,
  applyUpdate,
  clientFields,
  clone,
  isTagsDelta,
  isTextEditable,
  jsonEqual,
} from './annotation-state.js';
import { Connection, FATAL_CLOSE_CODES } from './connection.js';
import { Emitter } from './emitter.js';
import { OfflineStore, memoryStorage, randomId } from './offline-store.js';
import { TextField, rebase } from './text-field.js';
import { apply as applyOps, diffToOp } from './text-ot.js';

/**
 * @typedef {import('./annotation-state.js').Annotation} Annotation
 * @typedef {import('./text-ot.js').Op} Op
 * @typedef {import('./offline-store.js').StorageLike} StorageLike
 * @typedef {import('./offline-store.js').PendingWrite} PendingWrite
 * @typedef {PendingWrite & {sentOn?: number | null, sentAt?: number | null}} PendingEntry
 * @typedef {'connecting' | 'live' | 'offline' | 'resyncing' | 'closed'} Status
 * @typedef {'local' | 'remote' | 'ack' | 'rollback' | 'snapshot' | 'restore'} Origin
 * @typedef {{id: string, annotation: Annotation | null, previous: Annotation | null, origin: Origin,
 *   author: string | null, clientId: string | null, seq: number | null, textOps: Record<string, Op[]>}} AnnotationChange
 *   textOps: per text field whose local text changed, ops that turn the previous text into the new
 *   one (move a caret with transformPosition)
 * @typedef {{clientId: string, user: string | null, state: Record<string, any>}} PresenceEntry
 * @typedef {{code: string, message: string, opId?: string | null, closeCode?: number, write?: PendingWrite}} ClientError
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

const BATCH_MAX_MESSAGES = 200;

export class CollaborationClient {
  /** @type {Emitter<ClientEvents>} */
  #events = new Emitter();
  #connection;
  #store;
  #timers;
  #now;
  #batch;
  #base;
  #token;
  #opPrefix;
  #opCounter = 0;
  #persistDelay;
  #rateLimitDelay;
  /** @type {Map<string, Annotation>} */
  #server = new Map();
  /** ids the client saw deleted: an update without recreate cannot revive them */
  #tombstones = new Set();
  /** @type {number | null} null: no state yet (connect without since) */
  #lastSeq = null;
  /** @type {PendingEntry[]} */
  #pending = [];
  /** @type {Map<string, TextField>} by `${id}\u0000${field}` */
  #texts = new Map();
  /** @type {Map<string, Annotation>} */
  #view = new Map();
  /** op_ids of text ops bound to be refused (their field was replaced): ignore the error */
  #doomed = new Set();
  /** @type {Map<string, PresenceEntry>} */
  #others = new Map();
  /** @type {Record<string, any> | null} */
  #presenceState = null;
  /** @type {Status} */
  #status = 'offline';
  #live = false;
  #generation = 0;
  #resyncing = false;
  #forceSnapshot = false;
  #closed = false;
  #snapshotArrived = false;
  /** @type {Map<string, {before: Annotation | undefined, origin: Origin, author: string | null,
   *   clientId: string | null, seq: number | null, textOps: Map<string, Op[]>}>} */
  #changes = new Map();
  /** @type {Map<'persist' | 'flush' | 'lease', any>} */
  #timerHandles = new Map();
  #rtt = /** @type {number | null} */ (null);
  #ackLatency = /** @type {number | null} */ (null);
  #storageFailed = false;
  /** @type {string | null} the name the server stamps on our writes */
  #author;
  #pendingReported = 0;
  /** @type {Array<[string, () => void]>} */
  #envListeners = [];
  #env;

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
    this.#author = authorOf(options.token, this.user);
    const random = options.random ?? Math.random;
    this.#timers = options.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h) };
    this.#now = options.now ?? Date.now;
    this.#batch = options.batch ?? true;
    this.#base = websocketBase(options.url);
    this.#token = options.token ?? null;
    this.#persistDelay = options.persistDelay ?? 1000;
    this.#rateLimitDelay = options.rateLimitDelay ?? 1000;
    this.#env = options.env !== undefined ? options.env : browserWindow();
    const instance = randomId(8, random);
    // op_ids are unique per page load, so a reused client_id never repeats one.
    this.#opPrefix = instance;
    this.#store = new OfflineStore({
      graphId,
      storage: options.storage ?? webStorage('localStorage') ?? memoryStorage(),
      sessionStorage: options.sessionStorage ?? webStorage('sessionStorage') ?? memoryStorage(),
      instance,
      now: this.#now,
      random,
    });
    this.clientId = this.#store.claimClientId(options.clientId);
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
    return this.#lastSeq;
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
    return this.#pending.length;
  }

  /**
   * The annotation as the UI should show it (server + pending), a copy.
   * @param {string} id
   * @returns {Annotation | undefined}
   */
  get(id) {
    return clone(this.#view.get(id));
  }

  /** @returns {Record<string, Annotation>} every live annotation by id, copies */
  getAll() {
    return clone(Object.fromEntries(this.#view));
  }

  /**
   * The annotation is gone and was deleted (not merely unknown): writing it
   * again needs `recreate` (the server refuses a plain update with conflict).
   * @param {string} id
   */
  isDeleted(id) {
    if (this.#view.has(id)) return false;
    return this.#tombstones.has(id) || this.#pending.some((entry) => entry.type === 'annotation_delete' && entry.id === id);
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

  // -- writing ------------------------------------------------------------

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
    const payload = { ...clientFields(fields), id };
    // A whole-field write supersedes unconfirmed text edits of that field.
    for (const field of this.#textFieldsOf(id)) {
      if (recreate || field.field in payload) field.draining = true;
    }
    /** @type {PendingEntry} */
    const entry = { opId: this.#nextOpId(), type: 'annotation_update', id, payload };
    if (recreate) entry.recreate = true;
    return this.#write(entry);
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
    for (const field of this.#textFieldsOf(id)) field.draining = true;
    return this.#write({ opId: this.#nextOpId(), type: 'annotation_delete', id });
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
    const current = this.#view.get(id);
    if (!current) throw new Error(`no annotation ${JSON.stringify(id)} to edit`);
    if (!isTextEditable(field)) throw new Error(`field ${JSON.stringify(field)} is not editable text`);
    const currentText = typeof current[field] === 'string' ? current[field] : '';
    if (!this.#server.has(id) || this.#wholeWritePending(id, field)) {
      // The server would refuse a text op based before that write: send the
      // resulting text as a whole-field write instead (it comes after it).
      return this.update(id, { [field]: applyOps(currentText, ops) });
    }
    const key = textKey(id, field);
    const textField = this.#texts.get(key) ?? new TextField(id, field, this.#serverText(id, field) ?? '', this.#lastSeq ?? 0);
    const outgoing = textField.sync.localEdit(ops); // throws before changing anything
    this.#texts.set(key, textField);
    this.#touch(id, { origin: 'local' }, [field, ops]);
    if (outgoing && !textField.probe) this.#sendTextOp(textField, outgoing);
    this.#persist();
    this.#flushChanges();
    return textField.opId;
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

  // -- connection events ------------------------------------------------------

  #connectUrl() {
    const params = new URLSearchParams({ client_id: this.clientId });
    if (this.#lastSeq !== null && !this.#forceSnapshot) params.set('since', String(this.#lastSeq));
    if (this.user) params.set('user', this.user);
    if (this.#token) params.set('token', this.#token);
    if (this.#batch) params.set('batch', '1');
    return `${this.#base}/ws/collaborate/${encodeURIComponent(this.graphId)}?${params}`;
  }

  #onConnecting() {
    this.#generation += 1;
    this.#live = false;
    this.#setStatus(this.#resyncing ? 'resyncing' : 'connecting');
  }

  /** @param {import('./connection.js').DownEvent} event */
  #onDown({ code, reason, retry }) {
    this.#generation += 1;
    this.#live = false;
    // Whatever was sent on that socket and not acked goes again on the next.
    const lost = this.#pending.filter((entry) => entry.sentOn);
    for (const entry of this.#pending) entry.sentOn = null;
    // A refusal for a doomed op can no longer arrive; its entry is gone.
    this.#doomed.clear();
    if (this.#others.size > 0) {
      this.#others.clear();
      this.#events.emit('presence', []);
    }
    const fatal = FATAL_CLOSE_CODES[/** @type {keyof typeof FATAL_CLOSE_CODES} */ (code)];
    if (fatal) this.#events.emit('error', { code: fatal, message: reason || fatal, closeCode: code });
    if (code === 1009) this.#dropOversized(lost);
    if (code === 1013) this.#resyncing = true;
    this.#flushChanges();
    if (!retry) {
      this.#setStatus('closed');
      return;
    }
    this.#setStatus(this.#resyncing ? 'resyncing' : 'offline');
  }

  /** @param {any[]} messages one frame, in order */
  #onFrame(messages) {
    const generation = this.#generation;
    for (const message of messages) {
      // A message may have triggered a resync: the rest of the frame is moot.
      if (generation !== this.#generation) break;
      this.#handle(message);
    }
    this.#flushChanges();
    this.#schedulePersist();
  }

  /** @param {any} message */
  #handle(message) {
    switch (message.type) {
      case 'initial_state':
        this.#applySnapshot(message);
        this.#becomeLive();
        break;
      case 'catch_up':
        for (const op of Array.isArray(message.ops) ? message.ops : []) {
          if (!this.#applySequenced(op)) return;
        }
        if (typeof message.seq === 'number' && message.seq > (this.#lastSeq ?? 0)) this.#lastSeq = message.seq;
        this.#becomeLive();
        break;
      case 'annotation_update':
      case 'annotation_delete':
      case 'text_op':
        this.#applySequenced(message);
        break;
      case 'ack':
        this.#onAck(message);
        break;
      case 'error':
        this.#onServerError(message);
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
    this.#flushPending();
    if (this.#presenceState) this.#connection.send({ type: 'presence', state: this.#presenceState });
    this.#setStatus('live');
    this.#persist();
  }

  /**
   * Reconnect to fill a gap: with `since` (catch_up), or with no since at
   * all when our state can no longer be trusted (full: initial_state).
   * @param {string} reason
   * @param {{full?: boolean}} [options]
   */
  #resync(reason, { full = false } = {}) {
    this.#resyncing = true;
    if (full) this.#forceSnapshot = true;
    this.#connection.reconnect(reason);
  }

  // -- applying the server's messages ---------------------------------------

  /**
   * A sequenced write (broadcast, or catch-up entry), in seq order. Returns
   * false when it triggered a resync (stop applying this frame).
   * @param {any} message
   * @returns {boolean}
   */
  #applySequenced(message) {
    if (typeof message.seq !== 'number') return true;
    const last = this.#lastSeq ?? 0;
    if (message.seq <= last) return true; // already applied
    if (typeof message.prev === 'number' && message.prev > last) {
      this.#resync(`gap: prev ${message.prev} > applied ${last}`);
      return false;
    }
    const own =
      message.client_id === this.clientId && typeof message.op_id === 'string'
        ? this.#pendingEntry(message.op_id)
        : undefined;
    // Our own write, sequenced before its ack reached us: it is the ack.
    const ok = own ? this.#confirm(own, message.seq, message) : this.#applyRemote(message);
    if (ok) this.#lastSeq = message.seq;
    return ok;
  }

  /**
   * @param {any} message a broadcast of someone else's write
   * @returns {boolean} false if our state cannot take it (a resync was started)
   */
  #applyRemote(message) {
    const origin = /** @type {const} */ ({ origin: 'remote', author: message.author ?? null,
      clientId: message.client_id ?? null, seq: message.seq });
    if (message.type === 'annotation_update') {
      const payload = message.payload ?? {};
      const id = payload.id;
      if (typeof id !== 'string') return true;
      const before = this.#server.get(id);
      const fresh = before === undefined || Boolean(message.recreate);
      const after = applyUpdate(before, payload, Boolean(message.recreate));
      this.#touch(id, origin);
      this.#server.set(id, after);
      this.#tombstones.delete(id);
      for (const field of this.#textFieldsOf(id)) {
        if (fresh) this.#forgetText(field);
        else if (field.field in payload) this.#textReplaced(field, before?.[field.field] ?? '', after[field.field] ?? '', message.seq);
      }
      return true;
    }
    if (message.type === 'annotation_delete') {
      this.#touch(message.id, origin);
      this.#server.delete(message.id);
      this.#tombstones.add(message.id);
      for (const field of this.#textFieldsOf(message.id)) this.#forgetText(field);
      return true;
    }
    if (message.type === 'text_op') {
      const existing = this.#server.get(message.id);
      const textField = this.#texts.get(textKey(message.id, message.field));
      let updated;
      /** @type {Op | null} */
      let local = message.ops;
      try {
        if (!existing) throw new Error('text op on an annotation we do not have');
        updated = applyText(existing, message.field, message.ops, { author: message.author, seq: message.seq, ts: message.ts });
        if (textField && !textField.probe) local = textField.remoteOp(message.ops, message.seq);
      } catch {
        // Our copy of that text no longer matches the server's: start over.
        this.#resync('text op does not fit', { full: true });
        return false;
      }
      this.#touch(message.id, origin, local ? [message.field, local] : undefined);
      this.#server.set(message.id, updated);
      return true;
    }
    return true;
  }

  /**
   * One of our writes was sequenced at `seq` (its ack, or its own broadcast
   * in a catch_up, which then also carries the write as applied).
   * @param {PendingEntry} entry
   * @param {number} seq
   * @param {any} [broadcast]
   * @param {number} [ts] the server's time of the write (acks carry it)
   * @returns {boolean}
   */
  #confirm(entry, seq, broadcast, ts) {
    this.#removePending(entry.opId);
    this.#touch(entry.id, { origin: 'ack', author: this.#author, clientId: this.clientId, seq });
    // The same stamps the server put on it, so every replica holds the same bytes.
    const stamp = { author: this.#author, seq, ts: broadcast?.ts ?? ts ?? this.#now() };
    if (entry.type === 'annotation_update') {
      const payload = broadcast?.payload ?? entry.payload;
      const recreate = broadcast ? Boolean(broadcast.recreate) : Boolean(entry.recreate);
      this.#server.set(entry.id, applyUpdate(this.#server.get(entry.id), payload, recreate, broadcast ? undefined : stamp));
      this.#tombstones.delete(entry.id);
      return true;
    }
    if (entry.type === 'annotation_delete') {
      this.#server.delete(entry.id);
      this.#tombstones.add(entry.id);
      return true;
    }
    const textField = this.#textFieldByOp(entry.opId);
    const applied = broadcast?.ops ?? textField?.pending ?? null;
    const existing = this.#server.get(entry.id);
    if (existing && applied) {
      try {
        this.#server.set(entry.id, applyText(existing, entry.field, applied, stamp));
      } catch {
        this.#resync('own text op does not fit', { full: true });
        return false;
      }
    }
    if (!textField) return true;
    if (textField.probe) {
      this.#finishProbe(textField, true, seq);
      return true;
    }
    const next = textField.sync.serverAck(seq);
    textField.opId = null;
    if (next && !textField.draining) this.#sendTextOp(textField, next);
    if (textField.idle) this.#texts.delete(textKey(textField.id, textField.field));
    return true;
  }

  /** @param {any} message */
  #onAck(message) {
    const entry = typeof message.op_id === 'string' ? this.#pendingEntry(message.op_id) : undefined;
    if (!entry) {
      if (this.#doomed.delete(message.op_id) && !message.duplicate) {
        // A text op we had rebased elsewhere was applied after all.
        this.#resync('unexpected ack', { full: true });
      }
      return;
    }
    if (typeof entry.sentAt === 'number') {
      this.#ackLatency = this.#now() - entry.sentAt;
      this.#events.emit('latency', { kind: 'ack', ms: this.#ackLatency });
    }
    const last = this.#lastSeq ?? 0;
    if (typeof message.seq !== 'number') return;
    if (message.duplicate || message.seq <= last) {
      // Applied before (at message.seq): the state we hold already has it.
      this.#removePending(entry.opId);
      this.#touch(entry.id, { origin: 'ack', author: this.#author, clientId: this.clientId, seq: message.seq });
      const textField = entry.type === 'text_op' ? this.#textFieldByOp(entry.opId) : undefined;
      if (textField?.probe) this.#finishProbe(textField, true, last);
      else if (textField) this.#rebaseField(textField, this.#serverText(textField.id, textField.field) ?? '', last);
      if (message.seq > last) this.#resync('duplicate ack ahead of our state');
      return;
    }
    if (typeof message.prev === 'number' && message.prev > last) {
      this.#resync(`gap before ack: prev ${message.prev} > applied ${last}`);
      return;
    }
    if (entry.type === 'text_op' && this.#textFieldByOp(entry.opId)?.probe) {
      // Applied just now, transformed by the server in a way we did not see:
      // fetch it as our own op in a catch_up, which settles the probe.
      this.#resync('probe applied');
      return;
    }
    if (this.#confirm(entry, message.seq, undefined, typeof message.ts === 'number' ? message.ts : undefined)) {
      this.#lastSeq = message.seq;
    }
  }

  /** @param {any} message */
  #onServerError(message) {
    const opId = typeof message.op_id === 'string' ? message.op_id : null;
    const entry = opId ? this.#pendingEntry(opId) : undefined;
    /** @type {ClientError} */
    const error = { code: String(message.code ?? 'error'), message: String(message.message ?? ''), opId };
    if (!entry) {
      if (opId && this.#doomed.delete(opId)) return; // expected: its field was replaced
      this.#events.emit('error', error);
      return;
    }
    if (message.code === 'rate_limited') {
      // Not refused for what it is: send it again after a pause.
      entry.sentOn = null;
      this.#setTimer('flush', this.#rateLimitDelay, () => this.#flushPending());
      this.#events.emit('error', { ...error, write: stripRuntime(entry) });
      return;
    }
    this.#reject(entry, error);
  }

  /**
   * Drop a refused write and roll back its optimistic effect: the view is
   * recomputed from the server state and the remaining pending writes.
   * @param {PendingEntry} entry
   * @param {ClientError} error
   */
  #reject(entry, error) {
    this.#removePending(entry.opId);
    this.#touch(entry.id, { origin: 'rollback' });
    const textField = entry.type === 'text_op' ? this.#textFieldByOp(entry.opId) : undefined;
    const revision = this.#lastSeq ?? 0;
    if (textField?.probe) {
      this.#finishProbe(textField, false, revision);
    } else if (textField) {
      // Keep the edits made after the refused op, rebased onto the server text.
      const serverText = this.#serverText(textField.id, textField.field) ?? '';
      const withRefused = textField.pending ? applyOps(serverText, textField.pending) : serverText;
      this.#rebaseField(textField, withRefused, revision);
    }
    this.#events.emit('error', { ...error, write: stripRuntime(entry) });
    this.#persist();
  }

  /**
   * The server closed with 1009 (message too big): drop the largest write
   * sent on that socket, or it would be resent, and refused, forever.
   * @param {PendingEntry[]} sent
   */
  #dropOversized(sent) {
    const sized = sent.map((entry) => ({ entry, size: JSON.stringify(entry).length }));
    sized.sort((a, b) => b.size - a.size);
    if (sized.length === 0) {
      this.#events.emit('error', { code: 'too_large', message: 'the server closed with 1009', closeCode: 1009 });
      return;
    }
    this.#reject(sized[0].entry, { code: 'too_large', message: 'refused by the server (close 1009)', opId: sized[0].entry.opId, closeCode: 1009 });
  }

  /** @param {any} message */
  #applySnapshot(message) {
    const data = message.data && typeof message.data === 'object' ? message.data : {};
    for (const id of new Set([...this.#view.keys(), ...Object.keys(data)])) this.#touch(id, { origin: 'snapshot' });
    for (const textField of this.#texts.values()) {
      // Was the op in flight applied before the snapshot? Its resend (same
      // op_id) will tell: a duplicate ack, or a refusal.
      if (!textField.probe && textField.opId && textField.pending) {
        textField.probe = { ancestor: this.#serverText(textField.id, textField.field) ?? '', ops: textField.pending };
      }
    }
    this.#server = new Map(Object.entries(clone(data)));
    for (const id of this.#server.keys()) this.#tombstones.delete(id);
    this.#lastSeq = typeof message.seq === 'number' ? message.seq : 0;
    this.#snapshotArrived = true;
  }

  /**
   * Someone else replaced a whole text field under our unconfirmed edits:
   * our op in flight will be refused; rebase the local edits onto the new
   * text instead of losing them.
   * @param {TextField} textField
   * @param {string} oldText
   * @param {string} newText
   * @param {number} seq
   */
  #textReplaced(textField, oldText, newText, seq) {
    if (textField.opId) {
      this.#doomed.add(textField.opId);
      this.#removePending(textField.opId);
    }
    if (textField.draining) {
      this.#texts.delete(textKey(textField.id, textField.field));
      return;
    }
    const ancestor = textField.probe ? textField.probe.ancestor : oldText;
    const outgoing = textField.restart(newText, seq, rebase(ancestor, textField.text, newText));
    this.#afterRestart(textField, outgoing);
  }

  /**
   * Settle a probe: `included` says the op in flight is in the server text.
   * @param {TextField} textField
   * @param {boolean} included
   * @param {number} revision the seq the server state is at
   */
  #finishProbe(textField, included, revision) {
    const probe = textField.probe;
    if (!probe) return;
    textField.probe = null;
    textField.opId = null;
    const ancestor = included ? applyOps(probe.ancestor, probe.ops) : probe.ancestor;
    this.#rebaseField(textField, ancestor, revision);
  }

  /**
   * Start the field afresh from the server text, re-applying what the local
   * text changed relative to `ancestor`.
   * @param {TextField} textField
   * @param {string} ancestor
   * @param {number} revision the seq the server state is at (the next op's base)
   */
  #rebaseField(textField, ancestor, revision) {
    const serverText = this.#serverText(textField.id, textField.field);
    this.#touch(textField.id, { origin: 'rollback' });
    if (serverText === null || textField.draining) {
      this.#texts.delete(textKey(textField.id, textField.field));
      return;
    }
    const outgoing = textField.restart(serverText, revision, rebase(ancestor, textField.text, serverText));
    this.#afterRestart(textField, outgoing);
  }

  /**
   * @param {TextField} textField
   * @param {{base: number, ops: Op} | null} outgoing
   */
  #afterRestart(textField, outgoing) {
    if (outgoing) this.#sendTextOp(textField, outgoing);
    else if (textField.idle) this.#texts.delete(textKey(textField.id, textField.field));
  }

  /**
   * Local edits of a field that no longer exists (deleted or re-created by
   * someone else) are gone with it: delete wins.
   * @param {TextField} textField
   */
  #forgetText(textField) {
    if (textField.opId) {
      this.#doomed.add(textField.opId);
      this.#removePending(textField.opId);
    }
    this.#texts.delete(textKey(textField.id, textField.field));
  }

  // -- pending writes ---------------------------------------------------------

  /**
   * @param {PendingEntry} entry
   * @returns {string}
   */
  #write(entry) {
    if (this.#closed) throw new Error('the client is closed');
    this.#touch(entry.id, { origin: 'local' });
    const last = this.#pending.at(-1);
    if (last?.type === 'annotation_update' && entry.type === 'annotation_update' && canCoalesce(last, entry)) {
      // Offline typing or clicking piles up writes to one annotation: fold
      // them into the last one that never left, so the queue stays short.
      last.payload = mergePayloads(last.payload, entry.payload);
      entry = last;
    } else {
      this.#pending.push(entry);
      if (this.#live) this.#sendEntries([entry]);
    }
    this.#persist();
    this.#flushChanges();
    return entry.opId;
  }

  /**
   * @param {TextField} textField
   * @param {{base: number, ops: Op}} outgoing
   */
  #sendTextOp(textField, outgoing) {
    const opId = this.#nextOpId();
    textField.opId = opId;
    /** @type {PendingEntry} */
    const entry = { opId, type: 'text_op', id: textField.id, field: textField.field, base: outgoing.base, ops: outgoing.ops };
    this.#pending.push(entry);
    if (this.#live) this.#sendEntries([entry]);
  }

  /** Send every pending write not yet sent on this socket, in order. */
  #flushPending() {
    if (!this.#live) return;
    this.#sendEntries(this.#pending.filter((entry) => entry.sentOn !== this.#generation));
  }

  /** @param {PendingEntry[]} entries */
  #sendEntries(entries) {
    for (let start = 0; start < entries.length; start += BATCH_MAX_MESSAGES) {
      const chunk = entries.slice(start, start + BATCH_MAX_MESSAGES);
      const messages = chunk.map(toMessage);
      if (!this.#connection.send(messages.length === 1 ? messages[0] : messages)) return;
      const now = this.#now();
      for (const entry of chunk) {
        entry.sentOn = this.#generation;
        entry.sent = true;
        entry.sentAt = now;
      }
    }
  }

  /** @param {string} opId */
  #pendingEntry(opId) {
    return this.#pending.find((entry) => entry.opId === opId);
  }

  /** @param {string} opId */
  #removePending(opId) {
    const index = this.#pending.findIndex((entry) => entry.opId === opId);
    if (index >= 0) this.#pending.splice(index, 1);
  }

  /**
   * A pending write replaces the field (or the annotation) before any text
   * op could be sequenced after it.
   * @param {string} id
   * @param {string} field
   */
  #wholeWritePending(id, field) {
    return this.#pending.some(
      (entry) =>
        entry.id === id &&
        (entry.type === 'annotation_delete' ||
          (entry.type === 'annotation_update' && (entry.recreate || field in entry.payload))),
    );
  }

  #nextOpId() {
    this.#opCounter += 1;
    return `${this.#opPrefix}.${this.#opCounter}`;
  }

  // -- text fields --------------------------------------------------------------

  /** @param {string} id */
  #textFieldsOf(id) {
    return [...this.#texts.values()].filter((field) => field.id === id);
  }

  /** @param {string} opId */
  #textFieldByOp(opId) {
    for (const field of this.#texts.values()) if (field.opId === opId) return field;
    return undefined;
  }

  /**
   * The field's text in the server state; null if the annotation is gone.
   * @param {string} id
   * @param {string} field
   * @returns {string | null}
   */
  #serverText(id, field) {
    const annotation = this.#server.get(id);
    if (!annotation) return null;
    return typeof annotation[field] === 'string' ? annotation[field] : '';
  }

  // -- the view and its change events ---------------------------------------

  /**
   * Record that `id` may change; its view before is kept for the event.
   * @param {string} id
   * @param {{origin: Origin, author?: string | null, clientId?: string | null, seq?: number | null}} info
   * @param {[string, Op]} [textOp] an exact op on the field's local text, for carets
   */
  #touch(id, info, textOp) {
    let change = this.#changes.get(id);
    if (!change) {
      change = { before: this.#view.get(id), origin: info.origin, author: null, clientId: null, seq: null, textOps: new Map() };
      this.#changes.set(id, change);
    }
    change.origin = info.origin;
    change.author = info.author ?? change.author;
    change.clientId = info.clientId ?? change.clientId;
    change.seq = info.seq ?? change.seq;
    if (textOp) {
      const list = change.textOps.get(textOp[0]) ?? [];
      list.push(textOp[1]);
      change.textOps.set(textOp[0], list);
    }
  }

  /** Recompute the views of touched annotations and notify what changed. */
  #flushChanges() {
    const changes = this.#changes;
    this.#changes = new Map();
    /** @type {AnnotationChange[]} */
    const events = [];
    for (const [id, change] of changes) {
      const after = this.#computeView(id);
      if (after) this.#view.set(id, after);
      else this.#view.delete(id);
      if (jsonEqual(change.before, after)) continue;
      events.push({
        id,
        annotation: clone(after) ?? null,
        previous: clone(change.before) ?? null,
        origin: change.origin,
        author: change.author,
        clientId: change.clientId,
        seq: change.seq,
        textOps: textDeltas(change.before, after, change.textOps),
      });
    }
    const snapshot = this.#snapshotArrived;
    this.#snapshotArrived = false;
    if (snapshot) {
      const all = this.getAll();
      this.#events.emit('snapshot', all);
      this.#callback(all, true);
    }
    for (const event of events) {
      this.#events.emit('annotation', event);
      if (!snapshot) this.#callback(event.annotation ?? { id: event.id, deleted: true }, false);
    }
    if (this.#pending.length !== this.#pendingReported) {
      this.#pendingReported = this.#pending.length;
      this.#events.emit('pending', this.#pendingReported);
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

  /**
   * view = server + pending writes + local text of unconfirmed text edits.
   * @param {string} id
   * @returns {Annotation | undefined}
   */
  #computeView(id) {
    let annotation = this.#server.get(id);
    let deleted = annotation === undefined && this.#tombstones.has(id);
    for (const entry of this.#pending) {
      if (entry.id !== id) continue;
      if (entry.type === 'annotation_update') {
        // The server refuses to revive a deleted annotation without recreate.
        if (annotation === undefined && deleted && !entry.recreate) continue;
        annotation = applyUpdate(annotation, entry.payload, Boolean(entry.recreate));
        deleted = false;
      } else if (entry.type === 'annotation_delete') {
        annotation = undefined;
        deleted = true;
      }
    }
    if (!annotation) return undefined;
    for (const textField of this.#textFieldsOf(id)) {
      if (!textField.draining) annotation = { ...annotation, [textField.field]: textField.text };
    }
    return annotation;
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
    this.#server = new Map(Object.entries(record.server ?? {}));
    this.#tombstones = new Set(record.tombstones ?? []);
    this.#lastSeq = record.lastSeq;
    // Assume anything restored may have gone out: never fold into it.
    this.#pending = record.pending.map((entry) => ({ ...entry, sent: true, sentOn: null, sentAt: null }));
    for (const textRecord of record.texts) {
      const serverText = this.#serverText(textRecord.id, textRecord.field) ?? '';
      const { field, inFlight } = TextField.fromRecord(textRecord, serverText, this.#lastSeq ?? 0);
      const entry = textRecord.opId ? this.#pendingEntry(textRecord.opId) : undefined;
      if (entry && entry.type === 'text_op' && !textRecord.probe) {
        if (field.opId && inFlight) {
          // Same op_id, rebased onto the persisted state: dedupe still applies.
          entry.base = inFlight.base;
          entry.ops = inFlight.ops;
        } else {
          this.#removePending(entry.opId); // became a no-op
        }
      }
      if (!field.opId && inFlight && !textRecord.probe) this.#sendTextOp(field, inFlight);
      if (!field.idle) this.#texts.set(textKey(field.id, field.field), field);
    }
    for (const id of new Set([...this.#server.keys(), ...this.#pending.map((entry) => entry.id)])) {
      const view = this.#computeView(id);
      if (view) this.#view.set(id, view);
    }
    // Deliver after the constructor returns, once the caller holds the client.
    queueMicrotask(() => {
      if (this.#view.size === 0 || this.#closed) return;
      const all = this.getAll();
      this.#events.emit('snapshot', all);
      this.#callback(all, true);
    });
  }

  /** Save now: after every local write and every ack (pending changed). */
  #persist() {
    this.#clearTimer('persist');
    const saved = this.#store.save({
      lastSeq: this.#lastSeq,
      server: Object.fromEntries(this.#server),
      tombstones: [...this.#tombstones],
      pending: this.#pending.map(stripRuntime),
      texts: [...this.#texts.values()].map((field) => field.toRecord()),
    });
    if (!saved && !this.#storageFailed) {
      this.#storageFailed = true;
      this.#events.emit('error', { code: 'storage', message: 'offline storage refused the queue: unsent edits will not survive a reload' });
    }
  }

  /** Save soon: remote changes only move the cache forward. */
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
      ['pagehide', () => {
        this.#persist();
        this.#store.releaseLease();
      }],
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
    this.#timerHandles.set(name, this.#timers.setTimeout(() => {
      this.#timerHandles.delete(name);
      fn();
    }, ms));
  }

  /** @param {'persist' | 'flush' | 'lease'} name */
  #clearTimer(name) {
    if (!this.#timerHandles.has(name)) return;
    this.#timers.clearTimeout(this.#timerHandles.get(name));
    this.#timerHandles.delete(name);
  }
}

/**
 * @param {string} id
 * @param {string} field
 */
function textKey(id, field) {
  return `${id}\u0000${field}`;
}

/**
 * @param {PendingEntry} entry
 * @returns {PendingWrite}
 */
function stripRuntime(entry) {
  const { sentOn: _sentOn, sentAt: _sentAt, ...write } = entry;
  return /** @type {PendingWrite} */ (write);
}

/**
 * `next` may be folded into `last`: both update the same annotation, and
 * `last` was never sent (so no server knows its op_id), nor re-creates
 * anything `next` would not.
 * @param {PendingEntry} last
 * @param {PendingEntry} next
 */
function canCoalesce(last, next) {
  return last.id === next.id && !last.sent && !(next.type === 'annotation_update' && next.recreate);
}

/**
 * One payload with the effect of `first` then `second`: later fields win;
 * tag deltas compose (add then remove, as the server applies one).
 * @param {Record<string, any>} first
 * @param {Record<string, any>} second
 */
function mergePayloads(first, second) {
  const merged = { ...first, ...second };
  const a = first.tags;
  const b = second.tags;
  if (isTagsDelta(b) && a !== undefined && a !== null) {
    if (isTagsDelta(a)) {
      const add = new Set([...(a.add ?? []).filter((t) => !(b.remove ?? []).includes(t)), ...(b.add ?? [])]);
      const remove = new Set([...(a.remove ?? []).filter((t) => !(b.add ?? []).includes(t)), ...(b.remove ?? [])]);
      merged.tags = { add: [...add].sort(), remove: [...remove].sort() };
    } else {
      merged.tags = applyTagsDelta(a, b);
    }
  }
  return merged;
}

/**
 * The wire message of a pending write.
 * @param {PendingEntry} entry
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
 * Ops turning each changed text field of `before` into that of `after`: the
 * exact ops seen when they account for the change, else a diff.
 * @param {Annotation | undefined} before
 * @param {Annotation | undefined} after
 * @param {Map<string, Op[]>} exact
 * @returns {Record<string, Op[]>}
 */
function textDeltas(before, after, exact) {
  /** @type {Record<string, Op[]>} */
  const deltas = {};
  if (!before || !after) return deltas;
  for (const field of Object.keys(after)) {
    const old = before[field];
    const now = after[field];
    if (typeof now !== 'string' || old === now || (old !== undefined && typeof old !== 'string')) continue;
    const oldText = old ?? '';
    const ops = exact.get(field);
    let replayed = null;
    if (ops) {
      try {
        replayed = ops.reduce((text, op) => applyOps(text, op), oldText);
      } catch {
        replayed = null;
      }
    }
    deltas[field] = ops && replayed === now ? ops : [diffToOp(oldText, now)];
  }
  return deltas;
}

/**
 * The author the server records for our writes: the token's `sub` when
 * there is a token (auth on), else the `user` parameter. Decoded only to
 * label our own writes like the server will; never trusted for anything.
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
    const storage = /** @type {any} */ (globalThis)[name];
    return storage ?? null;
  } catch {
    return null;
  }
}
