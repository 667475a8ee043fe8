// The OT client state machine of one collaboratively edited text field.
//
// As ot.js's Client: at most one op is in flight (sent, not yet acked); local
// edits made meanwhile are composed into one buffered op, sent when the ack
// comes. Remote ops are transformed past the in-flight op and the buffer
// before they are applied, so local edits show at once and never flicker.
//
//   synchronized --localEdit--> awaiting --localEdit--> awaiting_with_buffer
//        ^                        |  ^                        |
//        +-------serverAck--------+  +--------serverAck-------+
//
// No I/O here: the caller (delta-sync.js) sends what the methods return,
// keeps the op_id of the in-flight op, and routes acks and broadcasts of
// this field here in seq order. Positions are code points (see text-ot.js).

import { apply, check, compose, isNoop, normalize, transform } from './text-ot.js';

/** @typedef {import('./text-ot.js').Op} Op */
/** @typedef {{base: number, ops: Op}} OutgoingOp */
/** @typedef {'synchronized' | 'awaiting' | 'awaiting_with_buffer'} SyncState */

export class TextFieldSync {
  /** @type {string} */ #text = '';
  /** @type {number} */ #revision = 0;
  /**
   * The op in flight exactly as it was sent: a resend after a reconnect must
   * be the same message (same base, same ops) so the server can dedupe it or
   * transform it from its base again.
   * @type {OutgoingOp | null}
   */
  #sent = null;
  /**
   * The in-flight op transformed past every remote op applied since it was
   * sent: what it still has to do to the server text we know.
   * @type {Op | null}
   */
  #pending = null;
  /** @type {Op | null} local edits made while an op was in flight, composed */
  #buffer = null;

  /**
   * @param {string} text the field's server text
   * @param {number} revision the server seq that text reflects
   */
  constructor(text, revision) {
    this.reset(text, revision);
  }

  /** The local text: the server's, plus the in-flight op, plus the buffer. */
  get text() {
    return this.#text;
  }

  /**
   * The seq of the last server op applied to this field (own acks included):
   * the `base` of the next op sent.
   */
  get revision() {
    return this.#revision;
  }

  /** @returns {SyncState} */
  get state() {
    if (this.#sent === null) return 'synchronized';
    return this.#buffer === null ? 'awaiting' : 'awaiting_with_buffer';
  }

  /**
   * A local edit (an op on the current local text, e.g. from diffToOp),
   * applied at once. Returns the op to send now as a `text_op` with a fresh
   * op_id, or null when it was buffered (or changes nothing). Throws
   * InvalidOpError, changing nothing, when the op does not span the text.
   * @param {Op} ops
   * @returns {OutgoingOp | null}
   */
  localEdit(ops) {
    const op = check(ops);
    const text = apply(this.#text, op);
    if (isNoop(op)) return null;
    this.#text = text;
    if (this.#sent === null) {
      this.#sent = { base: this.#revision, ops: op };
      this.#pending = op;
      return copy(this.#sent);
    }
    this.#buffer = this.#buffer === null ? op : compose(this.#buffer, op);
    return null;
  }

  /**
   * The in-flight op was sequenced at `seq` (its ack, or its own broadcast
   * found in a catch_up). Returns the buffered op to send next (base = seq)
   * with a fresh op_id, or null. An ack that is not newer than the revision
   * (a duplicate after a resend, or one from before a reset) is ignored.
   * @param {number} seq
   * @returns {OutgoingOp | null}
   */
  serverAck(seq) {
    // A real ack always comes after every op applied so far (seq order).
    if (this.#sent === null || seq <= this.#revision) return null;
    this.#revision = seq;
    this.#sent = null;
    this.#pending = null;
    if (this.#buffer === null) return null;
    this.#sent = { base: seq, ops: this.#buffer };
    this.#pending = this.#buffer;
    this.#buffer = null;
    return copy(this.#sent);
  }

  /**
   * A remote op on this field, broadcast with `seq` (the server already
   * transformed it against everything up to seq - 1). It was sequenced before
   * our in-flight op and buffer, so it wins the insert tie-break against
   * both. Returns the op as applied to the local text (to move carets with
   * transformPosition), or null if seq is not newer than the revision (an op
   * already applied). Throws InvalidOpError if the op does not fit the
   * server text we know: the caller must resync.
   * @param {Op} ops
   * @param {number} seq
   * @returns {Op | null}
   */
  serverOp(ops, seq) {
    if (seq <= this.#revision) return null;
    let op = normalize(ops);
    let pending = this.#pending;
    let buffer = this.#buffer;
    if (pending !== null) [op, pending] = transform(op, pending);
    if (buffer !== null) [op, buffer] = transform(op, buffer);
    // Compute everything before changing anything, so a throw leaves no trace.
    const text = apply(this.#text, op);
    this.#text = text;
    this.#pending = pending;
    this.#buffer = buffer;
    this.#revision = seq;
    return op;
  }

  /**
   * The op in flight, exactly as first sent, to resend after a reconnect
   * with the same op_id; null when nothing is in flight.
   * @returns {OutgoingOp | null}
   */
  inFlight() {
    return this.#sent === null ? null : copy(this.#sent);
  }

  /**
   * The op in flight transformed past every remote op applied since it was
   * sent: it applies to the server text at `revision`, so the caller can fold
   * it into its copy of the server state when the ack (which carries no ops)
   * comes. Null when nothing is in flight.
   * @returns {Op | null}
   */
  pendingOp() {
    return this.#pending === null ? null : [...this.#pending];
  }

  /**
   * Start afresh from the server's text (initial_state, or a whole-field
   * replacement): in-flight and buffered edits are dropped.
   * @param {string} text
   * @param {number} revision
   */
  reset(text, revision) {
    this.#text = text;
    this.#revision = revision;
    this.#sent = null;
    this.#pending = null;
    this.#buffer = null;
  }
}

/**
 * @param {OutgoingOp} outgoing
 * @returns {OutgoingOp}
 */
function copy(outgoing) {
  return { base: outgoing.base, ops: [...outgoing.ops] };
}
