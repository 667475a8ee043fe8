// The annotation rules of shared/PROTOCOL.md, as pure functions on plain data.
//
// The client folds the same writes in the same order as the server, so its
// copy of the server state is the server's state (modulo the server's exact
// timestamps, which the client approximates for its own acked writes). The
// view the UI shows is that state with the client's pending writes folded on
// top (see delta-sync.js). Nothing here does I/O or keeps state.

import { apply as applyTextOp } from './text-ot.js';

/**
 * @typedef {Record<string, any> & {id: string}} Annotation
 * @typedef {{add?: string[], remove?: string[]}} TagsDelta
 * @typedef {{author?: string | null, seq?: number, ts?: number}} Stamp
 */

/** Stamped and owned by the server: a client that sends them has them ignored. */
export const SERVER_FIELDS = Object.freeze(['created_by', 'updated_by', 'created_at', 'updated_at', 'seq']);

const SERVER_FIELD_SET = new Set(SERVER_FIELDS);

/**
 * Fields a `text_op` may not target (the server refuses them with invalid_op).
 * @param {string} field
 * @returns {boolean}
 */
export function isTextEditable(field) {
  return !SERVER_FIELD_SET.has(field) && !['id', 'tags', 'confidence', 'target_type', 'enclave'].includes(field);
}

/**
 * A payload without the fields the server owns, so an optimistic apply shows
 * what the server will store.
 * @param {Record<string, any>} payload
 * @returns {Record<string, any>}
 */
export function clientFields(payload) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const [name, value] of Object.entries(payload)) {
    if (!SERVER_FIELD_SET.has(name)) out[name] = value;
  }
  return out;
}

/**
 * The tag set after a delta: concurrent additions by different users all
 * survive because each delta applies to the set current at its seq. Sorted,
 * as the server keeps it.
 * @param {unknown} current
 * @param {TagsDelta} delta
 * @returns {string[]}
 */
export function applyTagsDelta(current, delta) {
  const tags = new Set(Array.isArray(current) ? current : []);
  for (const tag of delta.add ?? []) tags.add(tag);
  for (const tag of delta.remove ?? []) tags.delete(tag);
  return [...tags].sort();
}

/**
 * @param {unknown} value
 * @returns {value is TagsDelta}
 */
export function isTagsDelta(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The annotation after an `annotation_update` (field-level last-writer-wins).
 * `existing` undefined (or `recreate`) starts afresh from the payload; a field
 * set to null is removed; absent fields stay. Returns a new object.
 * @param {Annotation | undefined} existing
 * @param {Record<string, any>} payload must hold `id`
 * @param {boolean} recreate
 * @param {Stamp} [stamp] the writer and seq, to stamp updated_by/seq
 * @returns {Annotation}
 */
export function applyUpdate(existing, payload, recreate, stamp) {
  const fresh = existing === undefined || recreate;
  /** @type {Annotation} */
  const result = fresh ? { id: payload.id } : { ...existing };
  for (const [name, value] of Object.entries(payload)) {
    if (value === null || value === undefined) {
      delete result[name];
    } else if (name === 'tags' && isTagsDelta(value)) {
      // As the server: a delta that creates the annotation keeps only its additions.
      result.tags = fresh ? [...new Set(value.add ?? [])].sort() : applyTagsDelta(result.tags, value);
    } else if (name === 'tags' && Array.isArray(value)) {
      result.tags = [...new Set(value)].sort();
    } else {
      result[name] = value;
    }
  }
  if (stamp) stampWrite(result, stamp, fresh);
  return result;
}

/**
 * The annotation after a `text_op` on `field` (ops already transformed to
 * apply to the current text). Throws InvalidOpError when they do not fit.
 * @param {Annotation} existing
 * @param {string} field
 * @param {import('./text-ot.js').Op} ops
 * @param {Stamp} [stamp]
 * @returns {Annotation}
 */
export function applyText(existing, field, ops, stamp) {
  const current = typeof existing[field] === 'string' ? existing[field] : '';
  const result = { ...existing, [field]: applyTextOp(current, ops) };
  if (stamp) stampWrite(result, stamp, false);
  return result;
}

/**
 * The server's stamps, approximated locally for a write the client saw only
 * as an ack (the broadcasts of others' writes carry the real ones).
 * @param {Annotation} annotation mutated
 * @param {Stamp} stamp
 * @param {boolean} fresh
 */
function stampWrite(annotation, stamp, fresh) {
  const at = new Date(stamp.ts ?? Date.now()).toISOString();
  annotation.updated_by = stamp.author ?? null;
  annotation.updated_at = at;
  if (stamp.seq !== undefined) annotation.seq = stamp.seq;
  if (fresh) {
    annotation.created_by = stamp.author ?? null;
    annotation.created_at = at;
  }
}

/**
 * Structural equality of JSON values (annotations, field values).
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  const objB = /** @type {Record<string, unknown>} */ (b);
  const objA = /** @type {Record<string, unknown>} */ (a);
  return keysA.every((key) => Object.prototype.hasOwnProperty.call(objB, key) && jsonEqual(objA[key], objB[key]));
}

/**
 * A deep copy of a JSON value, so callers can never mutate the client's state.
 * @template T
 * @param {T} value
 * @returns {T}
 */
export function clone(value) {
  return value === undefined ? value : JSON.parse(JSON.stringify(value));
}

/**
 * One payload with the effect of `first` then `second`: later fields win;
 * tag deltas compose (add then remove, as the server applies one).
 * @param {Record<string, any>} first
 * @param {Record<string, any>} second
 */
export function mergePayloads(first, second) {
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
