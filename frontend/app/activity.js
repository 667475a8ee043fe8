// One line of the activity feed: what someone else's change did, in words.

import { describeTarget } from './demo-graph.js';

/** @typedef {import('/frontend/collab/delta-sync.js').AnnotationChange} AnnotationChange */

/**
 * @param {AnnotationChange} change
 * @returns {string | null} null when there is nothing worth saying
 */
export function describeChange(change) {
  const after = change.annotation;
  const before = change.previous;
  const annotation = after ?? before;
  if (!annotation) return null;
  const where = annotation.target_type && annotation.target_id ? describeTarget(annotation.target_type, annotation.target_id) : annotation.id;
  if (!after) return `deleted the ${annotation.kind ?? 'annotation'} on ${where}`;
  /** @type {string[]} */
  const parts = [];
  const oldTags = new Set(Array.isArray(before?.tags) ? before.tags : []);
  const newTags = new Set(Array.isArray(after.tags) ? after.tags : []);
  const added = [...newTags].filter((t) => !oldTags.has(t));
  const removed = [...oldTags].filter((t) => !newTags.has(t));
  if (added.length) parts.push(`tagged ${where} ${added.map((t) => `#${t}`).join(' ')}`);
  if (removed.length) parts.push(`removed ${removed.map((t) => `#${t}`).join(' ')} from ${where}`);
  if ((before?.color ?? null) !== (after.color ?? null)) {
    parts.push(after.color ? `highlighted ${where}` : `removed the highlight of ${where}`);
  }
  if ((before?.confidence ?? null) !== (after.confidence ?? null) && after.confidence) {
    parts.push(`set confidence ${after.confidence.toLowerCase()} on ${where}`);
  }
  if ((before?.content ?? '') !== (after.content ?? '')) parts.push(`edited the note on ${where}`);
  return parts.length ? parts.join('; ') : null;
}
