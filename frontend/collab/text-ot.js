// Operational transform for plain text: the `text_op` of shared/PROTOCOL.md.
//
// The JavaScript twin of src/intelgraph_collab/sync/text_ot.py, with the same
// semantics; both are held to tests/vectors/text_ot.json.
//
// An op is an array of components walking the whole text left to right:
// a positive integer retains that many characters, a non-empty string inserts
// it, a negative integer deletes that many characters.
//
// Every position and length here counts Unicode CODE POINTS, as the server
// does, not UTF-16 units as JavaScript strings do: an emoji is one character.
// A <textarea> reports UTF-16 offsets; convert them with utf16ToCodePoint /
// codePointToUtf16.
//
// Tie-break: in transform(a, b), `a` is the op sequenced first by the server;
// when both insert at the same position, a's insert ends up to the left.

/** @typedef {number | string} Component */
/** @typedef {Component[]} Op */

export const DEFAULT_MAX_COMPONENTS = 10000;

// A lone surrogate would merge with a neighbour into one astral code point
// once strings are concatenated, and positions would drift from the server's.
const LONE_SURROGATE = /\p{Cs}/u;

/** An op that is malformed or does not fit the text it is applied to. */
export class InvalidOpError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'InvalidOpError';
    /** The PROTOCOL.md error code the server uses for the same refusal. */
    this.code = 'invalid_op';
  }
}

/**
 * Number of code points in a string.
 * @param {string} text
 * @returns {number}
 */
export function codePointLength(text) {
  let count = 0;
  // for...of iterates code points; a surrogate pair counts once.
  for (const _ of text) count += 1;
  return count;
}

/**
 * Code-point offset of a UTF-16 offset into `text` (e.g. a textarea's
 * selectionStart). An offset between the two halves of a surrogate pair
 * (which no caret should report) rounds down to before the pair.
 * @param {string} text
 * @param {number} utf16Offset
 * @returns {number}
 */
export function utf16ToCodePoint(text, utf16Offset) {
  const limit = Math.min(Math.max(0, utf16Offset), text.length);
  let units = 0;
  let points = 0;
  for (const ch of text) {
    if (units + ch.length > limit) break;
    units += ch.length;
    points += 1;
  }
  return points;
}

/**
 * UTF-16 offset of a code-point offset into `text` (to set a textarea's
 * selection). Offsets past the end clamp to the end.
 * @param {string} text
 * @param {number} codePointOffset
 * @returns {number}
 */
export function codePointToUtf16(text, codePointOffset) {
  let units = 0;
  let points = 0;
  for (const ch of text) {
    if (points >= codePointOffset) break;
    units += ch.length;
    points += 1;
  }
  return units;
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function jsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a non-integer number';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/**
 * Validate an untrusted op and return it normalized; throws InvalidOpError.
 * Checks the shape only: whether it spans a text is apply's business.
 * @param {unknown} op
 * @param {{maxComponents?: number}} [options]
 * @returns {Op}
 */
export function check(op, options = {}) {
  const maxComponents = options.maxComponents ?? DEFAULT_MAX_COMPONENTS;
  if (!Array.isArray(op)) {
    throw new InvalidOpError(`a text op must be an array of components, got ${jsonType(op)}`);
  }
  if (op.length > maxComponents) {
    throw new InvalidOpError(`a text op may have at most ${maxComponents} components, got ${op.length}`);
  }
  op.forEach((component, index) => {
    const where = `component ${index}`;
    if (typeof component === 'number' && Number.isInteger(component)) {
      if (component === 0) throw new InvalidOpError(`${where}: a retain or delete of 0 characters is not allowed`);
      if (Math.abs(component) > Number.MAX_SAFE_INTEGER) {
        throw new InvalidOpError(`${where}: ${component} is out of range`);
      }
    } else if (typeof component === 'string') {
      if (component === '') throw new InvalidOpError(`${where}: an insert must not be empty`);
      if (LONE_SURROGATE.test(component)) {
        throw new InvalidOpError(`${where}: an insert must not contain lone UTF-16 surrogates`);
      }
    } else {
      throw new InvalidOpError(
        `${where}: expected a non-zero integer or a non-empty string, got ${jsonType(component)}`,
      );
    }
  });
  return normalize(/** @type {Op} */ (op));
}

/**
 * Appends components while keeping the op canonical: no empty components,
 * no two adjacent of the same kind, and an insert never right after a delete
 * (the insert goes first, as ot.js does), so equal edits have equal ops.
 */
class Builder {
  constructor() {
    /** @type {Op} */
    this.op = [];
  }

  /** @param {number} n */
  retain(n) {
    if (n <= 0) return;
    const op = this.op;
    const last = op[op.length - 1];
    if (typeof last === 'number' && last > 0) op[op.length - 1] = last + n;
    else op.push(n);
  }

  /** @param {string} text */
  insert(text) {
    if (text === '') return;
    const op = this.op;
    const last = op[op.length - 1];
    if (typeof last === 'string') {
      op[op.length - 1] = last + text;
    } else if (typeof last === 'number' && last < 0) {
      const before = op[op.length - 2];
      if (typeof before === 'string') op[op.length - 2] = before + text;
      else op.splice(op.length - 1, 0, text);
    } else {
      op.push(text);
    }
  }

  /** @param {number} n */
  delete(n) {
    if (n <= 0) return;
    const op = this.op;
    const last = op[op.length - 1];
    if (typeof last === 'number' && last < 0) op[op.length - 1] = last - n;
    else op.push(-n);
  }

  /** @param {Component} component */
  add(component) {
    if (typeof component === 'string') this.insert(component);
    else if (component > 0) this.retain(component);
    else this.delete(-component);
  }
}

/**
 * The canonical form of an op: adjacent components of a kind merged, empty
 * ones dropped, an insert before an adjacent delete. Trailing retains stay:
 * an op always spans the whole text it applies to.
 * @param {Op} op
 * @returns {Op}
 */
export function normalize(op) {
  const builder = new Builder();
  for (const component of op) builder.add(component);
  return builder.op;
}

/**
 * Length in code points of the text the op applies to.
 * @param {Op} op
 * @returns {number}
 */
export function baseLength(op) {
  let length = 0;
  for (const c of op) if (typeof c === 'number') length += Math.abs(c);
  return length;
}

/**
 * Length in code points of the text the op produces.
 * @param {Op} op
 * @returns {number}
 */
export function targetLength(op) {
  let length = 0;
  for (const c of op) {
    if (typeof c === 'string') length += codePointLength(c);
    else if (c > 0) length += c;
  }
  return length;
}

/**
 * True when the op changes nothing (it only retains).
 * @param {Op} op
 * @returns {boolean}
 */
export function isNoop(op) {
  return op.every((c) => typeof c === 'number' && c > 0);
}

/**
 * The text after the op; throws InvalidOpError if the op does not span it.
 * @param {string} text
 * @param {Op} op
 * @returns {string}
 */
export function apply(text, op) {
  const chars = Array.from(text);
  const expected = baseLength(op);
  if (expected !== chars.length) {
    throw new InvalidOpError(`the op spans ${expected} characters but the text has ${chars.length}`);
  }
  /** @type {string[]} */
  const pieces = [];
  let position = 0;
  for (const c of op) {
    if (typeof c === 'string') {
      pieces.push(c);
    } else if (c > 0) {
      pieces.push(chars.slice(position, position + c).join(''));
      position += c;
    } else {
      position -= c;
    }
  }
  return pieces.join('');
}

/** @typedef {'retain' | 'insert' | 'delete'} Kind */

/**
 * Reads an op component by component, splitting one on demand, so that
 * transform and compose can walk two ops in lockstep. Inserts are held as
 * arrays of code points so that splitting never cuts a surrogate pair.
 */
class Reader {
  /** @param {Op} op */
  constructor(op) {
    /** @type {Array<{kind: Kind, length: number, chars: string[] | null}>} */
    this.parts = [];
    for (const c of op) {
      if (typeof c === 'string') {
        const chars = Array.from(c);
        if (chars.length > 0) this.parts.push({ kind: 'insert', length: chars.length, chars });
      } else if (c !== 0) {
        this.parts.push({ kind: c > 0 ? 'retain' : 'delete', length: Math.abs(c), chars: null });
      }
    }
    this.index = 0;
    this.used = 0;
  }

  done() {
    return this.index >= this.parts.length;
  }

  /** @returns {Kind | null} */
  kind() {
    return this.done() ? null : this.parts[this.index].kind;
  }

  /** Length of what is left of the current component (0 when done). */
  remaining() {
    return this.done() ? 0 : this.parts[this.index].length - this.used;
  }

  /** @returns {Component} what is left of the current component */
  takeWhole() {
    return this.take(this.remaining());
  }

  /**
   * Consume up to n characters' worth of the current component.
   * @param {number} n
   * @returns {Component}
   */
  take(n) {
    const part = this.parts[this.index];
    const count = Math.min(n, part.length - this.used);
    /** @type {Component} */
    let piece;
    if (part.chars) piece = part.chars.slice(this.used, this.used + count).join('');
    else piece = part.kind === 'retain' ? count : -count;
    this.used += count;
    if (this.used === part.length) {
      this.index += 1;
      this.used = 0;
    }
    return piece;
  }
}

/**
 * How much two readers can consume together; never 0 for ops whose lengths
 * the caller checked (refuse rather than loop forever).
 * @param {Reader} ra
 * @param {Reader} rb
 */
function step(ra, rb) {
  const n = Math.min(ra.remaining(), rb.remaining());
  if (n === 0) throw new InvalidOpError('the ops do not span the same text');
  return n;
}

/**
 * Rebase two concurrent ops on the same text over each other: returns
 * [aPrime, bPrime] with apply(apply(s, a), bPrime) === apply(apply(s, b), aPrime).
 * `a` is the op sequenced first: at the same position, a's insert goes left.
 * @param {Op} a
 * @param {Op} b
 * @returns {[Op, Op]}
 */
export function transform(a, b) {
  if (baseLength(a) !== baseLength(b)) {
    throw new InvalidOpError(
      `concurrent ops span ${baseLength(a)} and ${baseLength(b)} characters: they do not apply to the same text`,
    );
  }
  const aPrime = new Builder();
  const bPrime = new Builder();
  const ra = new Reader(a);
  const rb = new Reader(b);
  while (!(ra.done() && rb.done())) {
    // Inserts consume no base text, so they go first; a's first: the tie-break.
    if (ra.kind() === 'insert') {
      bPrime.retain(ra.remaining());
      aPrime.add(ra.takeWhole());
      continue;
    }
    if (rb.kind() === 'insert') {
      aPrime.retain(rb.remaining());
      bPrime.add(rb.takeWhole());
      continue;
    }
    const n = step(ra, rb);
    const kindA = ra.kind();
    const kindB = rb.kind();
    ra.take(n);
    rb.take(n);
    if (kindA === 'retain' && kindB === 'retain') {
      aPrime.retain(n);
      bPrime.retain(n);
    } else if (kindA === 'delete' && kindB === 'retain') {
      aPrime.delete(n);
    } else if (kindA === 'retain' && kindB === 'delete') {
      bPrime.delete(n);
    }
    // delete/delete: both removed the same characters; nothing is left to do.
  }
  return [aPrime.op, bPrime.op];
}

/**
 * Bring an op made at some base up to date with the ops sequenced since
 * (in sequence order): each of them was sequenced first, so each wins the
 * insert tie-break. The server does exactly this fold.
 * @param {Op} incoming
 * @param {Iterable<Op>} history
 * @returns {Op}
 */
export function transformAgainst(incoming, history) {
  let current = incoming;
  for (const sequenced of history) current = transform(sequenced, current)[1];
  return current;
}

/**
 * One op with the effect of `a` then `b`:
 * apply(apply(s, a), b) === apply(s, compose(a, b)).
 * @param {Op} a
 * @param {Op} b
 * @returns {Op}
 */
export function compose(a, b) {
  if (targetLength(a) !== baseLength(b)) {
    throw new InvalidOpError(
      `the first op produces ${targetLength(a)} characters but the second spans ${baseLength(b)}: they cannot be composed`,
    );
  }
  const out = new Builder();
  const ra = new Reader(a);
  const rb = new Reader(b);
  while (!(ra.done() && rb.done())) {
    // a's deletes touch text b never sees; b's inserts touch text a never made.
    if (ra.kind() === 'delete') {
      out.add(ra.takeWhole());
      continue;
    }
    if (rb.kind() === 'insert') {
      out.add(rb.takeWhole());
      continue;
    }
    // a retains or inserts exactly the characters b retains or deletes.
    const n = step(ra, rb);
    const kindB = rb.kind();
    const piece = ra.take(n);
    rb.take(n);
    if (typeof piece === 'string') {
      if (kindB === 'retain') out.insert(piece);
      // inserted by a, deleted by b: it never existed.
    } else if (kindB === 'retain') {
      out.retain(n);
    } else {
      out.delete(n);
    }
  }
  return out.op;
}

/**
 * Where a caret at `position` (code points, before the op) is after it.
 * A caret inside a deleted range moves to where the range was. An insert
 * exactly at the caret pushes it right only for the caret owner's own edit
 * (`own`); a remote insert at the caret leaves it before the new text.
 * The position is clamped to the text the op applies to.
 * @param {number} position
 * @param {Op} op
 * @param {boolean} [own]
 * @returns {number}
 */
export function transformPosition(position, op, own = false) {
  const caret = Math.min(Math.max(0, position), baseLength(op));
  let result = 0;
  let index = 0; // position in the text before the op
  for (const c of op) {
    if (typeof c === 'string') {
      if (index < caret || (index === caret && own)) result += codePointLength(c);
    } else if (c > 0) {
      result += Math.min(c, Math.max(0, caret - index));
      index += c;
    } else {
      index -= c;
    }
  }
  return result;
}

/**
 * The minimal op that turns `oldText` into `newText` (a textarea edit): the
 * common prefix and suffix are retained, the middle replaced. Works in code
 * points, so an emoji is never split.
 *
 * `cursorHint` is the caret after the edit, in code points of `newText`
 * (convert selectionEnd with utf16ToCodePoint). It settles ambiguous edits:
 * typing "a" at 0 in "aa" gives "aaa", which a plain diff would read as an
 * insert at 2; with the caret at 1 the insert is put at 0, where the user
 * typed it, so carets and concurrent edits land where people expect.
 * @param {string} oldText
 * @param {string} newText
 * @param {number} [cursorHint]
 * @returns {Op}
 */
export function diffToOp(oldText, newText, cursorHint) {
  const before = Array.from(oldText);
  const after = Array.from(newText);
  const shorter = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < shorter && before[prefix] === after[prefix]) prefix += 1;
  if (cursorHint !== undefined) {
    // Whatever was typed ends at the caret, so the change starts at or before
    // (caret - characters gained).
    const grown = Math.max(0, after.length - before.length);
    prefix = Math.min(prefix, Math.max(0, cursorHint - grown));
  }
  let suffix = 0;
  while (
    suffix < shorter - prefix &&
    before[before.length - 1 - suffix] === after[after.length - 1 - suffix]
  ) {
    suffix += 1;
  }
  const builder = new Builder();
  builder.retain(prefix);
  builder.insert(after.slice(prefix, after.length - suffix).join(''));
  builder.delete(before.length - prefix - suffix);
  builder.retain(suffix);
  return builder.op;
}
