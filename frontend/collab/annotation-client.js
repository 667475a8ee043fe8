// AnnotationStore: the store the UI binds to, on top of CollaborationClient.
//
// It indexes the client's view (server state + pending writes) by id and by
// target (an entity or edge), relays change and presence events, offers the
// writes an annotation UI needs (tag add/remove as set deltas, delete), and
// keeps a per-user undo/redo history of this user's own changes.
//
// Undo is multiplayer undo (as Figma's): it writes the inverse of your own
// last change (the previous field values, the tag delta reversed, a
// re-create after a delete) as a new write, so it never reverts what others
// did meanwhile to other fields. Text edits of notes are not in the history:
// they merge character by character with others' typing, and undoing one
// keystroke at a time is the text editor's business.

import { SERVER_FIELDS, clone } from './annotation-state.js';
import { CollaborationClient } from './delta-sync.js';
import { Emitter } from './emitter.js';

/**
 * @typedef {import('./annotation-state.js').Annotation} Annotation
 * @typedef {import('./delta-sync.js').AnnotationChange} AnnotationChange
 * @typedef {import('./delta-sync.js').PresenceEntry} PresenceEntry
 * @typedef {import('./delta-sync.js').Status} Status
 * @typedef {'ENTITY' | 'EDGE'} TargetType
 * @typedef {{type: 'set', id: string, fields: Record<string, any>}
 *   | {type: 'tags', id: string, add: string[], remove: string[]}
 *   | {type: 'delete', id: string}
 *   | {type: 'recreate', id: string, fields: Record<string, any>}} Action
 *   one undoable change; performing it yields its inverse
 * @typedef {{change: [AnnotationChange], reset: [Annotation[]], presence: [PresenceEntry[]],
 *   status: [Status], history: [{canUndo: boolean, canRedo: boolean}],
 *   error: [import('./delta-sync.js').ClientError], latency: [import('./delta-sync.js').Latency],
 *   pending: [number]}} StoreEvents
 */

const HISTORY_LIMIT = 200;
const STAMPS = new Set(SERVER_FIELDS);

/**
 * The index key of a target.
 * @param {string} targetType
 * @param {string} targetId
 */
export function targetKey(targetType, targetId) {
  return `${targetType}:${targetId}`;
}

export class AnnotationStore {
  /** @type {Emitter<StoreEvents>} */
  #events = new Emitter();
  #client;
  /** @type {Map<string, Annotation>} */
  #byId = new Map();
  /** @type {Map<string, Set<string>>} target key -> annotation ids */
  #byTarget = new Map();
  /** @type {Action[]} */
  #undo = [];
  /** @type {Action[]} */
  #redo = [];
  /** @type {Record<string, any>} */
  #presence = {};
  #newId;

  /**
   * @param {CollaborationClient} client
   * @param {{newId?: () => string}} [options] newId: ids for created annotations
   */
  constructor(client, options = {}) {
    this.#client = client;
    this.#newId = options.newId ?? defaultNewId;
    this.#reset(Object.values(client.getAll()));
    client.on('snapshot', (all) => {
      this.#reset(Object.values(all));
      this.#events.emit('reset', this.all());
    });
    client.on('annotation', (change) => {
      this.#index(change.id, change.annotation);
      this.#events.emit('change', change);
    });
    client.on('presence', (entries) => this.#events.emit('presence', entries));
    client.on('status', (status) => this.#events.emit('status', status));
    client.on('error', (error) => this.#events.emit('error', error));
    client.on('latency', (latency) => this.#events.emit('latency', latency));
    client.on('pending', (count) => this.#events.emit('pending', count));
  }

  /**
   * A store with its own client: `new CollaborationClient(graphId, null, options)`.
   * @param {string} graphId
   * @param {import('./delta-sync.js').ClientOptions} [options]
   */
  static connect(graphId, options) {
    return new AnnotationStore(new CollaborationClient(graphId, null, options));
  }

  get client() {
    return this.#client;
  }

  get user() {
    return this.#client.user;
  }

  // -- reading --------------------------------------------------------------

  /**
   * @param {string} id
   * @returns {Annotation | undefined}
   */
  get(id) {
    return clone(this.#byId.get(id));
  }

  /** @returns {Annotation[]} */
  all() {
    return clone([...this.#byId.values()]);
  }

  /**
   * The annotations of one entity or edge, oldest first.
   * @param {string} targetType
   * @param {string} targetId
   * @returns {Annotation[]}
   */
  byTarget(targetType, targetId) {
    const ids = this.#byTarget.get(targetKey(targetType, targetId)) ?? new Set();
    const found = [...ids].map((id) => this.#byId.get(id)).filter((a) => a !== undefined);
    found.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.id.localeCompare(b.id));
    return clone(found);
  }

  /** @returns {PresenceEntry[]} the other people on this graph */
  get presence() {
    return this.#client.presence;
  }

  /**
   * Who (other than us) has this target selected.
   * @param {string} key a targetKey(), or whatever the UI puts in `selection`
   * @returns {PresenceEntry[]}
   */
  selecting(key) {
    return this.presence.filter((entry) => Array.isArray(entry.state.selection) && entry.state.selection.includes(key));
  }

  get canUndo() {
    return this.#undo.length > 0;
  }

  get canRedo() {
    return this.#redo.length > 0;
  }

  /**
   * @template {keyof StoreEvents} K
   * @param {K} type
   * @param {(...args: StoreEvents[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    return this.#events.on(type, listener);
  }

  // -- writing (undoable) ---------------------------------------------------------

  /**
   * Create an annotation on a target; returns its id.
   * @param {TargetType} targetType
   * @param {string} targetId
   * @param {Record<string, any>} fields
   * @returns {string}
   */
  create(targetType, targetId, fields) {
    const id = this.#newId();
    this.#do({ type: 'set', id, fields: { ...fields, target_type: targetType, target_id: targetId } });
    return id;
  }

  /**
   * Set fields (null removes one).
   * @param {string} id
   * @param {Record<string, any>} fields
   */
  update(id, fields) {
    this.#do({ type: 'set', id, fields: { ...fields } });
  }

  /**
   * @param {string} id
   * @param {string[]} tags
   */
  addTags(id, tags) {
    this.#do({ type: 'tags', id, add: [...tags], remove: [] });
  }

  /**
   * @param {string} id
   * @param {string[]} tags
   */
  removeTags(id, tags) {
    this.#do({ type: 'tags', id, add: [], remove: [...tags] });
  }

  /** @param {string} id */
  delete(id) {
    this.#do({ type: 'delete', id });
  }

  /** Write the inverse of this user's last change. False if there is none. */
  undo() {
    const action = this.#undo.pop();
    if (!action) return false;
    this.#redo.push(this.#perform(action));
    this.#historyChanged();
    return true;
  }

  /** Write again what the last undo reverted. False if there is nothing to redo. */
  redo() {
    const action = this.#redo.pop();
    if (!action) return false;
    this.#undo.push(this.#perform(action));
    this.#historyChanged();
    return true;
  }

  // -- writing (not in the history) -------------------------------------------------

  /**
   * A text edit of a field (e.g. a note's `content`): an op on its current
   * text, as from diffToOp.
   * @param {string} id
   * @param {string} field
   * @param {import('./text-ot.js').Op} ops
   */
  editText(id, field, ops) {
    return this.#client.textEdit(id, field, ops);
  }

  /**
   * Tell others what this user has selected (target keys).
   * @param {string[]} selection
   */
  select(selection) {
    this.setPresence({ selection: [...selection] });
  }

  /**
   * Merge into this user's presence state (name, colour, selection...).
   * @param {Record<string, any>} state
   */
  setPresence(state) {
    this.#presence = { ...this.#presence, ...state };
    this.#client.setPresence(this.#presence);
  }

  close() {
    this.#client.close();
  }

  // -- internals -----------------------------------------------------------------

  /** @param {Action} action a new change by this user: clears the redo history */
  #do(action) {
    this.#undo.push(this.#perform(action));
    if (this.#undo.length > HISTORY_LIMIT) this.#undo.shift();
    this.#redo = [];
    this.#historyChanged();
  }

  /**
   * Write the action; return its inverse, computed from the view before it.
   * @param {Action} action
   * @returns {Action}
   */
  #perform(action) {
    const before = this.#byId.get(action.id);
    /** @type {Action} */
    let inverse;
    switch (action.type) {
      case 'set': {
        if (!before) {
          inverse = { type: 'delete', id: action.id };
        } else {
          /** @type {Record<string, any>} */
          const previous = {};
          for (const name of Object.keys(action.fields)) previous[name] = name in before ? clone(before[name]) : null;
          inverse = { type: 'set', id: action.id, fields: previous };
        }
        // Writing to an annotation deleted earlier (e.g. after undoing its
        // creation) must re-create it, or the server refuses it.
        this.#client.update(action.id, action.fields, { recreate: !before && this.#client.isDeleted(action.id) });
        break;
      }
      case 'tags': {
        const current = new Set(Array.isArray(before?.tags) ? before.tags : []);
        // Reverse only what this change actually did to the set.
        inverse = {
          type: 'tags',
          id: action.id,
          add: action.remove.filter((tag) => current.has(tag)),
          remove: action.add.filter((tag) => !current.has(tag)),
        };
        this.#client.update(action.id, { tags: { add: action.add, remove: action.remove } });
        break;
      }
      case 'delete': {
        inverse = { type: 'recreate', id: action.id, fields: before ? userFields(before) : {} };
        this.#client.deleteAnnotation(action.id);
        break;
      }
      case 'recreate': {
        inverse = { type: 'delete', id: action.id };
        this.#client.recreate(action.id, action.fields);
        break;
      }
    }
    return inverse;
  }

  #historyChanged() {
    this.#events.emit('history', { canUndo: this.canUndo, canRedo: this.canRedo });
  }

  /** @param {Annotation[]} annotations */
  #reset(annotations) {
    this.#byId.clear();
    this.#byTarget.clear();
    for (const annotation of annotations) this.#index(annotation.id, annotation);
  }

  /**
   * @param {string} id
   * @param {Annotation | null} annotation
   */
  #index(id, annotation) {
    const old = this.#byId.get(id);
    if (old) this.#byTarget.get(targetKey(old.target_type, old.target_id))?.delete(id);
    if (!annotation) {
      this.#byId.delete(id);
      return;
    }
    this.#byId.set(id, annotation);
    if (annotation.target_type && annotation.target_id) {
      const key = targetKey(annotation.target_type, annotation.target_id);
      if (!this.#byTarget.has(key)) this.#byTarget.set(key, new Set());
      this.#byTarget.get(key)?.add(id);
    }
  }
}

/**
 * An annotation's own fields, without id and server stamps: what a
 * re-create must send.
 * @param {Annotation} annotation
 */
function userFields(annotation) {
  /** @type {Record<string, any>} */
  const fields = {};
  for (const [name, value] of Object.entries(annotation)) {
    if (name !== 'id' && !STAMPS.has(name)) fields[name] = clone(value);
  }
  return fields;
}

function defaultNewId() {
  const crypto = /** @type {any} */ (globalThis).crypto;
  if (crypto?.randomUUID) return `ann-${crypto.randomUUID()}`;
  return `ann-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}
