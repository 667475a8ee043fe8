// The client's state for one collaboratively edited text field (id, field).
//
// It wraps TextFieldSync (the ot.js-style state machine of text-ot-client.js)
// with what the connection layer needs besides: the op_id of the op in
// flight, and two special modes:
//
// - draining: a later whole-field write of ours (update/delete/recreate)
//   supersedes the local edits, so the buffer is never sent;
// - probe: after an initial_state (a resync from a trimmed log) it is
//   unknown whether the op in flight was applied; its resend answers that
//   (duplicate ack: applied; error: not), and then the local edits are
//   rebased onto the new server text with `rebase`.
//
// A TextField exists only while the field has local edits the server has
// not confirmed; the client drops it once it is idle.

import { TextFieldSync } from './text-ot-client.js';
import { apply, diffToOp, isNoop, transform } from './text-ot.js';

/** @typedef {import('./text-ot.js').Op} Op */
/** @typedef {{ancestor: string, ops: Op}} Probe */
/**
 * What survives a reload (see offline-store.js): enough to rebuild the
 * field's state on top of the persisted server state.
 * @typedef {{id: string, field: string, opId: string | null, pending: Op | null,
 *   text: string, draining: boolean, probe: Probe | null}} TextFieldRecord
 */

/**
 * A three-way merge through OT: the op that brings the changes made from
 * `ancestor` to `ours` onto `theirs`. Used where the exact history between
 * ancestor and theirs is not known (a snapshot, a rollback, a whole-field
 * replacement): both sides are diffed, and theirs counts as sequenced first.
 * @param {string} ancestor
 * @param {string} ours
 * @param {string} theirs
 * @returns {Op} an op on `theirs`
 */
export function rebase(ancestor, ours, theirs) {
  const mine = diffToOp(ancestor, ours);
  const their = diffToOp(ancestor, theirs);
  return transform(their, mine)[1];
}

export class TextField {
  /**
   * @param {string} id
   * @param {string} field
   * @param {string} serverText the field's text in the server state
   * @param {number} revision the seq that state is at
   */
  constructor(id, field, serverText, revision) {
    this.id = id;
    this.field = field;
    this.sync = new TextFieldSync(serverText, revision);
    /** @type {string | null} op_id of the op in flight */
    this.opId = null;
    this.draining = false;
    /** refusals for a stale base since the last ack (bounded retries) */
    this.conflicts = 0;
    /** @type {Probe | null} */
    this.probe = null;
  }

  /** The local text: server text + op in flight + buffered edits. */
  get text() {
    return this.sync.text;
  }

  /**
   * The op in flight, transformed to apply to the server text the client
   * knows: folded into the server state when its ack (which has no ops) comes.
   * @returns {Op | null}
   */
  get pending() {
    return this.probe ? null : this.sync.pendingOp();
  }

  /** Nothing unconfirmed: the field can be forgotten. */
  get idle() {
    return this.opId === null && this.probe === null;
  }

  /**
   * A remote op on this field, in seq order (not while probing). Returns the
   * op as applied to the local text; throws, changing nothing, if it does not
   * fit the server text we know.
   * @param {Op} ops
   * @param {number} seq
   * @returns {Op | null}
   */
  remoteOp(ops, seq) {
    return this.sync.serverOp(ops, seq);
  }

  /**
   * Start afresh from `serverText` and re-apply `op` (local edits rebased
   * onto it) as a new local edit. Returns what to send, or null.
   * @param {string} serverText
   * @param {number} revision
   * @param {Op} op an op on serverText
   * @returns {{base: number, ops: Op} | null}
   */
  restart(serverText, revision, op) {
    this.sync.reset(serverText, revision);
    this.opId = null;
    this.probe = null;
    if (this.draining || isNoop(op)) return null;
    return this.sync.localEdit(op);
  }

  /** @returns {TextFieldRecord} */
  toRecord() {
    return {
      id: this.id,
      field: this.field,
      opId: this.opId,
      pending: this.pending,
      text: this.text,
      draining: this.draining,
      probe: this.probe,
    };
  }

  /**
   * Rebuild from a record on top of the persisted server text. Returns the
   * field and the in-flight op as the sync now holds it (to update the
   * pending write's base/ops), or null when the op in flight had become a
   * no-op (the caller drops that pending write: applied or not, it changes
   * nothing).
   * @param {TextFieldRecord} record
   * @param {string} serverText
   * @param {number} revision
   * @returns {{field: TextField, inFlight: {base: number, ops: Op} | null}}
   */
  static fromRecord(record, serverText, revision) {
    const field = new TextField(record.id, record.field, serverText, revision);
    field.draining = record.draining;
    if (record.probe) {
      // While probing the sync only holds the local text; nothing is sent from it.
      field.sync.reset(record.text, revision);
      field.probe = record.probe;
      field.opId = record.opId;
      return { field, inFlight: null };
    }
    /** @type {{base: number, ops: Op} | null} */
    let inFlight = null;
    let afterInFlight = serverText;
    if (record.opId !== null && record.pending !== null && !isNoop(record.pending)) {
      inFlight = field.sync.localEdit(record.pending);
      field.opId = record.opId;
      afterInFlight = apply(serverText, record.pending);
    }
    const buffer = diffToOp(afterInFlight, record.text);
    if (!isNoop(buffer)) {
      const sent = field.sync.localEdit(buffer);
      if (sent) {
        // The in-flight op vanished: the buffer becomes the op to send; the
        // caller gives it a fresh op_id.
        inFlight = sent;
        field.opId = null;
      }
    }
    return { field, inFlight };
  }
}

/**
 * Ops turning each changed text field of `before` into that of `after`: the
 * exact ops seen when they account for the change, else a diff.
 * @param {Record<string, any> | undefined} before
 * @param {Record<string, any> | undefined} after
 * @param {Map<string, Op[]>} exact
 * @returns {Record<string, Op[]>}
 */
export function textDeltas(before, after, exact) {
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
        replayed = ops.reduce((text, op) => apply(text, op), oldText);
      } catch {
        replayed = null;
      }
    }
    deltas[field] = ops && replayed === now ? ops : [diffToOp(oldText, now)];
  }
  return deltas;
}
