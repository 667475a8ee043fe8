// How the demo maps annotation kinds onto the graph: every entity or edge has
// at most one annotation of each kind, with an id derived from the target.
// Two analysts who tag the same entity at the same time thus write to the
// same annotation, and the tag-set deltas merge their tags, instead of
// creating two annotations that each hold half.

/** @typedef {{type: 'ENTITY' | 'EDGE', id: string}} Target */

/** @type {Record<string, string>} */
export const KINDS = { tags: 'tag', highlight: 'highlight', note: 'note' };

/**
 * @param {'tags' | 'highlight' | 'note'} kind
 * @param {Target} target
 */
export function annotationId(kind, target) {
  return `${kind}:${target.type}:${target.id}`;
}

/** @param {Target} target */
export function targetKey(target) {
  return `${target.type}:${target.id}`;
}

/**
 * @param {string} key
 * @returns {Target | null}
 */
export function parseTargetKey(key) {
  const match = /^(ENTITY|EDGE):(.+)$/.exec(key);
  return match ? { type: /** @type {'ENTITY' | 'EDGE'} */ (match[1]), id: match[2] } : null;
}

/**
 * A stable colour per user name, for presence.
 * @param {string} name
 */
export function colorFor(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return `hsl(${hash % 360}, 70%, 45%)`;
}
