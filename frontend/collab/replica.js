// Replica: the client's copy of one graph, as a state machine with no I/O.
//
// Messages from the server and the user's writes go in; what to send, what
// changed, what went wrong and whether to resync come out. delta-sync.js
// moves the bytes (socket, storage, timers) around it. State, and the one
// invariant the rest follows from:
//
//   server   the annotations as of `lastSeq`: every sequenced write seen,
//            folded in seq order (others' broadcasts, the acks of our own
//            writes). Identical to the server's state, stamps included.
//   pending  our own writes not yet acked, in the order made, each with an
//            op_id (resent with it after a reconnect: the server dedupes).
//   view     = server + pending folded on top (+ the local text of fields
//            with unconfirmed text edits). What the UI shows.
//
// Figma's rule falls out of it: a remote value for a field with a pending
// local write lands in `server`, but the view still shows the pending value
// until its ack, after which the server state has it too: no flicker back.
// A refused write leaves `pending` and the view is recomputed: a rollback.

import {
  applyText,
  applyUpdate,
  clientFields,
  clone,
  isTextEditable,
  jsonEqual,
  mergePayloads,
} from './annotation-state.js';
import { TextField, rebase, textDeltas } from './text-field.js';
import { apply as applyOps } from './text-ot.js';

/**
 * @typedef {import('./annotation-state.js').Annotation} Annotation
 * @typedef {import('./text-ot.js').Op} Op
 * @typedef {import('./offline-store.js').PendingWrite} PendingWrite
 * @typedef {import('./offline-store.js').PersistedRecord} PersistedRecord
 * @typedef {'local' | 'remote' | 'ack' | 'rollback' | 'snapshot' | 'restore'} Origin
 * @typedef {{id: string, annotation: Annotation | null, previous: Annotation | null, origin: Origin,
 *   author: string | null, clientId: string | null, seq: number | null, textOps: Record<string, Op[]>}} AnnotationChange
 *   textOps: per text field whose local text changed, ops that turn the previous text into the new
 *   one (move a caret with transformPosition)
 * @typedef {{code: string, message: string, opId?: string | null, closeCode?: number, write?: PendingWrite}} ClientError
 * @typedef {{reason: string, full: boolean}} Resync
 *   full: our state cannot be trusted: reconnect without `since` (initial_state)
 */

/** Times a text op refused for a stale base is rebased and sent again before it is dropped. */
const MAX_TEXT_CONFLICTS = 3;

export class Replica {
  /** @type {Map<string, Annotation>} */
  #server = new Map();
  /** ids seen deleted: an update without recreate cannot revive them */
  #tombstones = new Set();
  /** @type {number | null} null: no state yet */
  #lastSeq = null;
  /** @type {PendingWrite[]} */
  #pending = [];
  /** @type {Map<string, TextField>} by `${id}\u0000${field}` */
  #texts = new Map();
  /** @type {Map<string, Annotation>} */
  #view = new Map();
  /** op_ids of text ops bound to be refused (their field was replaced): ignore the refusal */
  #doomed = new Set();
  /** @type {Map<string, {before: Annotation | undefined, origin: Origin, author: string | null,
   *   clientId: string | null, seq: number | null, textOps: Map<string, Op[]>}>} */
  #changes = new Map();
  #snapshotArrived = false;
  /** @type {ClientError[]} */
  #errors = [];
  /** @type {Resync | null} */
  #resync = null;
  #clientId;
  #author;
  #newOpId;
  #now;

  /**
   * @param {{clientId: string, author: string | null, newOpId: () => string, now: () => number}} options
   *   author: the name the server stamps on our writes; newOpId: unique per client_id, forever
   */
  constructor({ clientId, author, newOpId, now }) {
    this.#clientId = clientId;
    this.#author = author;
    this.#newOpId = newOpId;
    this.#now = now;
  }

  // -- reading ----------------------------------------------------------------

  get lastSeq() {
    return this.#lastSeq;
  }

  /** Own writes not yet acked, in order (the entries themselves: do not mutate). */
  get pending() {
    return /** @type {readonly PendingWrite[]} */ (this.#pending);
  }

  /**
   * @param {string} id
   * @returns {Annotation | undefined} the view's annotation (not a copy)
   */
  view(id) {
    return this.#view.get(id);
  }

  /** @returns {Map<string, Annotation>} the whole view (not a copy) */
  get views() {
    return this.#view;
  }

  /**
   * Deleted (not merely unknown): writing it again needs `recreate`.
   * @param {string} id
   */
  isDeleted(id) {
    if (this.#view.has(id)) return false;
    return this.#tombstones.has(id) || this.#pending.some((entry) => entry.type === 'annotation_delete' && entry.id === id);
  }

  /**
   * These writes went out (at least once): the server may know their op_ids,
   * so later writes are never folded into them.
   * @param {readonly PendingWrite[]} entries
   */
  markSent(entries) {
    for (const entry of entries) entry.sent = true;
  }

  /** @param {string} opId */
  pendingEntry(opId) {
    return this.#pending.find((entry) => entry.opId === opId);
  }

  /** The resync this replica needs, once: the caller reconnects. */
  takeResync() {
    const resync = this.#resync;
    this.#resync = null;
    return resync;
  }

  /** Errors to report since the last call. */
  takeErrors() {
    const errors = this.#errors;
    this.#errors = [];
    return errors;
  }

  /**
   * Recompute the views of what was touched; return what changed.
   * `snapshot`: a full state arrived (or was restored) meanwhile.
   * @returns {{changes: AnnotationChange[], snapshot: boolean}}
   */
  takeChanges() {
    const touched = this.#changes;
    this.#changes = new Map();
    /** @type {AnnotationChange[]} */
    const changes = [];
    for (const [id, change] of touched) {
      const after = this.#computeView(id);
      if (after) this.#view.set(id, after);
      else this.#view.delete(id);
      if (jsonEqual(change.before, after)) continue;
      changes.push({
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
    return { changes, snapshot };
  }

  // -- local writes ---------------------------------------------------------------

  /**
   * Set fields (null removes; `tags` a list or `{add, remove}`); creates the
   * annotation if unknown. Returns the op_id.
   * @param {string} id
   * @param {Record<string, any>} fields
   * @param {boolean} recreate
   */
  update(id, fields, recreate) {
    const payload = { ...clientFields(fields), id };
    // A whole-field write supersedes unconfirmed text edits of that field.
    for (const field of this.#textFieldsOf(id)) {
      if (recreate || field.field in payload) field.draining = true;
    }
    /** @type {PendingWrite} */
    const entry = { opId: this.#newOpId(), type: 'annotation_update', id, payload };
    if (recreate) entry.recreate = true;
    return this.#write(entry);
  }

  /** @param {string} id */
  delete(id) {
    for (const field of this.#textFieldsOf(id)) field.draining = true;
    return this.#write({ opId: this.#newOpId(), type: 'annotation_delete', id });
  }

  /**
   * An edit of a text field, as an op on its text in the view. Returns the
   * op_id of the op that carries it (null: buffered behind the one in flight).
   * Throws InvalidOpError, changing nothing, if the op does not fit.
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
      return this.update(id, { [field]: applyOps(currentText, ops) }, false);
    }
    const key = textKey(id, field);
    const textField = this.#texts.get(key) ?? new TextField(id, field, this.#serverText(id, field) ?? '', this.#lastSeq ?? 0);
    const outgoing = textField.sync.localEdit(ops); // throws before changing anything
    this.#texts.set(key, textField);
    this.#touch(id, { origin: 'local' }, [field, ops]);
    if (outgoing && !textField.probe) this.#queueTextOp(textField, outgoing);
    return textField.opId;
  }

  /**
   * @param {PendingWrite} entry
   * @returns {string}
   */
  #write(entry) {
    this.#touch(entry.id, { origin: 'local' });
    const last = this.#pending.at(-1);
    if (last?.type === 'annotation_update' && entry.type === 'annotation_update' && canCoalesce(last, entry)) {
      // Offline typing or clicking piles up writes to one annotation: fold
      // them into the last one that never left, so the queue stays short.
      last.payload = mergePayloads(last.payload, entry.payload);
      return last.opId;
    }
    this.#pending.push(entry);
    return entry.opId;
  }

  /**
   * @param {TextField} textField
   * @param {{base: number, ops: Op}} outgoing
   */
  #queueTextOp(textField, outgoing) {
    const opId = this.#newOpId();
    textField.opId = opId;
    // Any seq from the field's last change on is the same base to the server;
    // the newest stays longest within the log it keeps.
    const base = Math.max(outgoing.base, this.#lastSeq ?? 0);
    this.#pending.push({ opId, type: 'text_op', id: textField.id, field: textField.field, base, ops: outgoing.ops });
  }

  // -- the server's messages ---------------------------------------------------------

  /**
   * initial_state: the whole state at its seq. Pending writes stay, to be
   * resent; for each text op in flight it is now unknown whether it was
   * applied: its resend (same op_id) tells, a duplicate ack or a refusal.
   * @param {any} message
   */
  applySnapshot(message) {
    const data = message.data && typeof message.data === 'object' ? message.data : {};
    for (const id of new Set([...this.#view.keys(), ...Object.keys(data)])) this.#touch(id, { origin: 'snapshot' });
    for (const textField of this.#texts.values()) {
      const pending = textField.pending;
      if (!textField.probe && textField.opId && pending) {
        textField.probe = { ancestor: this.#serverText(textField.id, textField.field) ?? '', ops: pending };
      }
    }
    this.#server = new Map(Object.entries(clone(data)));
    for (const id of this.#server.keys()) this.#tombstones.delete(id);
    this.#lastSeq = typeof message.seq === 'number' ? message.seq : 0;
    this.#snapshotArrived = true;
  }

  /**
   * catch_up: the writes since our `since`, then its seq. False if one of
   * them asked for a resync.
   * @param {any} message
   */
  applyCatchUp(message) {
    for (const op of Array.isArray(message.ops) ? message.ops : []) {
      if (!this.applySequenced(op)) return false;
    }
    if (typeof message.seq === 'number' && message.seq > (this.#lastSeq ?? 0)) this.#lastSeq = message.seq;
    return true;
  }

  /**
   * A sequenced write (broadcast or catch-up entry), in seq order. False when
   * it asked for a resync (stop applying this frame).
   * @param {any} message
   * @returns {boolean}
   */
  applySequenced(message) {
    if (typeof message.seq !== 'number') return true;
    const last = this.#lastSeq ?? 0;
    if (message.seq <= last) return true; // already applied
    if (typeof message.prev === 'number' && message.prev > last) {
      return this.#requestResync(`gap: prev ${message.prev} > applied ${last}`);
    }
    const own =
      message.client_id === this.#clientId && typeof message.op_id === 'string'
        ? this.pendingEntry(message.op_id)
        : undefined;
    // Our own write, sequenced before its ack reached us: it is the ack.
    const ok = own ? this.#confirm(own, message.seq, message) : this.#applyRemote(message);
    if (ok) this.#lastSeq = message.seq;
    return ok;
  }

  /**
   * An ack of one of our writes (`duplicate`: applied before, at its seq).
   * @param {any} message
   */
  ack(message) {
    const entry = typeof message.op_id === 'string' ? this.pendingEntry(message.op_id) : undefined;
    if (!entry) {
      if (this.#doomed.delete(message.op_id) && !message.duplicate) {
        // A text op we had rebased elsewhere was applied after all.
        this.#requestResync('unexpected ack', true);
      }
      return;
    }
    const last = this.#lastSeq ?? 0;
    if (typeof message.seq !== 'number') return;
    if (message.duplicate || message.seq <= last) {
      // The state we hold already has it.
      this.#removePending(entry.opId);
      this.#touch(entry.id, { origin: 'ack', author: this.#author, clientId: this.#clientId, seq: message.seq });
      const textField = entry.type === 'text_op' ? this.#textFieldByOp(entry.opId) : undefined;
      if (textField?.probe) this.#finishProbe(textField, true, last);
      else if (textField) this.#rebaseField(textField, this.#serverText(textField.id, textField.field) ?? '', last);
      if (message.seq > last) this.#requestResync('duplicate ack ahead of our state');
      return;
    }
    if (typeof message.prev === 'number' && message.prev > last) {
      this.#requestResync(`gap before ack: prev ${message.prev} > applied ${last}`);
      return;
    }
    if (entry.type === 'text_op' && this.#textFieldByOp(entry.opId)?.probe) {
      // Applied just now, transformed in a way we did not see: fetch it as
      // our own op in a catch_up, which settles the probe.
      this.#requestResync('probe applied');
      return;
    }
    if (this.#confirm(entry, message.seq, undefined, typeof message.ts === 'number' ? message.ts : undefined)) {
      this.#lastSeq = message.seq;
    }
  }

  /**
   * A refusal. For a pending write: drop it and roll back its effect; a
   * `rate_limited` one stays, for the caller to send again later (true).
   * @param {any} message
   * @returns {boolean} the write stays pending and should be resent after a pause
   */
  refused(message) {
    const opId = typeof message.op_id === 'string' ? message.op_id : null;
    const entry = opId ? this.pendingEntry(opId) : undefined;
    /** @type {ClientError} */
    const error = { code: String(message.code ?? 'error'), message: String(message.message ?? ''), opId };
    if (!entry) {
      if (opId && this.#doomed.delete(opId)) return false; // expected: its field was replaced
      this.#errors.push(error);
      return false;
    }
    if (message.code === 'rate_limited') {
      this.#errors.push({ ...error, write: clone(entry) });
      return true;
    }
    this.#reject(entry, error);
    return false;
  }

  /**
   * The socket is gone: refusals of doomed ops can no longer arrive. After
   * a 1009 (message too big), drop the largest of the writes that were on
   * it, or it would be resent, and refused, forever.
   * @param {number} code
   * @param {PendingWrite[]} onSocket the writes sent on that socket
   */
  connectionLost(code, onSocket) {
    this.#doomed.clear();
    if (code !== 1009) return;
    const largest = [...onSocket].sort((a, b) => JSON.stringify(b).length - JSON.stringify(a).length)[0];
    if (!largest) {
      this.#errors.push({ code: 'too_large', message: 'the server closed with 1009', closeCode: 1009 });
      return;
    }
    this.#reject(largest, { code: 'too_large', message: 'refused by the server (close 1009)', opId: largest.opId, closeCode: 1009 });
  }

  // -- folding sequenced writes -----------------------------------------------------------

  /**
   * @param {any} message a broadcast of someone else's write
   * @returns {boolean} false if our state cannot take it (resync requested)
   */
  #applyRemote(message) {
    const origin = /** @type {const} */ ({
      origin: 'remote',
      author: message.author ?? null,
      clientId: message.client_id ?? null,
      seq: message.seq,
    });
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
        return this.#requestResync('text op does not fit', true);
      }
      this.#touch(message.id, origin, local ? [message.field, local] : undefined);
      this.#server.set(message.id, updated);
    }
    return true;
  }

  /**
   * One of our writes was sequenced at `seq` (its ack, or its own broadcast
   * in a catch_up, which also carries the write as applied).
   * @param {PendingWrite} entry
   * @param {number} seq
   * @param {any} [broadcast]
   * @param {number} [ts] the server's time of the write (acks carry it)
   * @returns {boolean}
   */
  #confirm(entry, seq, broadcast, ts) {
    this.#removePending(entry.opId);
    this.#touch(entry.id, { origin: 'ack', author: this.#author, clientId: this.#clientId, seq });
    // The stamps the server put on it, so every replica holds the same bytes.
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
        return this.#requestResync('own text op does not fit', true);
      }
    }
    if (!textField) return true;
    if (textField.probe) {
      this.#finishProbe(textField, true, seq);
      return true;
    }
    const next = textField.sync.serverAck(seq);
    textField.opId = null;
    textField.conflicts = 0;
    if (next && !textField.draining) this.#queueTextOp(textField, next);
    if (textField.idle) this.#texts.delete(textKey(textField.id, textField.field));
    return true;
  }

  /**
   * Drop a refused write and roll back its optimistic effect.
   * @param {PendingWrite} entry
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
      const serverText = this.#serverText(textField.id, textField.field) ?? '';
      const pending = textField.pending;
      // A text op refused for its base (older than the server's log keeps)
      // is not wrong in itself: rebase every local edit, it included, onto
      // the server text and send it again, a few times at most. Any other
      // refusal drops the op but keeps the edits made after it.
      if (error.code === 'conflict' && textField.conflicts < MAX_TEXT_CONFLICTS) {
        textField.conflicts += 1;
        this.#rebaseField(textField, serverText, revision);
        return;
      }
      this.#rebaseField(textField, pending ? applyOps(serverText, pending) : serverText, revision);
    }
    this.#errors.push({ ...error, write: clone(entry) });
  }

  /**
   * @param {string} reason
   * @param {boolean} [full]
   * @returns {false}
   */
  #requestResync(reason, full = false) {
    this.#resync = { reason, full: full || Boolean(this.#resync?.full) };
    return false;
  }

  // -- text fields ---------------------------------------------------------------------

  /**
   * Someone else replaced a whole text field under our unconfirmed edits:
   * our op in flight will be refused; rebase the local edits onto the new
   * text rather than lose them.
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
    this.#afterRestart(textField, textField.restart(newText, seq, rebase(ancestor, textField.text, newText)));
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
    this.#rebaseField(textField, included ? applyOps(probe.ancestor, probe.ops) : probe.ancestor, revision);
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
    this.#afterRestart(textField, textField.restart(serverText, revision, rebase(ancestor, textField.text, serverText)));
  }

  /**
   * @param {TextField} textField
   * @param {{base: number, ops: Op} | null} outgoing
   */
  #afterRestart(textField, outgoing) {
    if (outgoing) this.#queueTextOp(textField, outgoing);
    else if (textField.idle) this.#texts.delete(textKey(textField.id, textField.field));
  }

  /**
   * Local edits of a field whose annotation is gone or re-created by
   * someone else go with it: delete wins.
   * @param {TextField} textField
   */
  #forgetText(textField) {
    if (textField.opId) {
      this.#doomed.add(textField.opId);
      this.#removePending(textField.opId);
    }
    this.#texts.delete(textKey(textField.id, textField.field));
  }

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

  // -- pending writes --------------------------------------------------------------------

  /** @param {string} opId */
  #removePending(opId) {
    const index = this.#pending.findIndex((entry) => entry.opId === opId);
    if (index >= 0) this.#pending.splice(index, 1);
  }

  /**
   * A pending write replaces the field (or the annotation): a text op sent
   * after it would be based before it, and refused.
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

  // -- the view ----------------------------------------------------------------------------

  /**
   * Note that `id` may change; its view before is kept for the event.
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

  // -- persistence ---------------------------------------------------------------------------

  /** @returns {Omit<PersistedRecord, 'v' | 'clientId' | 'savedAt'>} everything needed to come back */
  toRecord() {
    return {
      lastSeq: this.#lastSeq,
      server: Object.fromEntries(this.#server),
      tombstones: [...this.#tombstones],
      pending: this.#pending.map((entry) => ({ ...entry })),
      texts: [...this.#texts.values()].map((field) => field.toRecord()),
    };
  }

  /**
   * Load a persisted record (after a reload): the state it had, at once.
   * @param {PersistedRecord} record
   */
  restore(record) {
    this.#server = new Map(Object.entries(record.server ?? {}));
    this.#tombstones = new Set(record.tombstones ?? []);
    this.#lastSeq = record.lastSeq;
    // Anything restored may have gone out before: never fold into it.
    this.#pending = record.pending.map((entry) => ({ ...entry, sent: true }));
    for (const textRecord of record.texts) {
      const serverText = this.#serverText(textRecord.id, textRecord.field) ?? '';
      const { field, inFlight } = TextField.fromRecord(textRecord, serverText, this.#lastSeq ?? 0);
      const entry = textRecord.opId ? this.pendingEntry(textRecord.opId) : undefined;
      if (entry?.type === 'text_op' && !textRecord.probe) {
        if (field.opId && inFlight) {
          // Same op_id, rebased onto the persisted state: dedupe still applies.
          entry.base = inFlight.base;
          entry.ops = inFlight.ops;
        } else {
          this.#removePending(entry.opId); // it had become a no-op
        }
      }
      if (!field.opId && inFlight && !textRecord.probe) this.#queueTextOp(field, inFlight);
      if (!field.idle) this.#texts.set(textKey(field.id, field.field), field);
    }
    for (const id of new Set([...this.#server.keys(), ...this.#pending.map((entry) => entry.id)])) {
      const view = this.#computeView(id);
      if (view) this.#view.set(id, view);
    }
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
 * `next` may be folded into `last`: both update the same annotation, `last`
 * never went out (no server knows its op_id), and `next` re-creates nothing.
 * @param {PendingWrite & {type: 'annotation_update'}} last
 * @param {PendingWrite & {type: 'annotation_update'}} next
 */
function canCoalesce(last, next) {
  return last.id === next.id && !last.sent && !next.recreate;
}
