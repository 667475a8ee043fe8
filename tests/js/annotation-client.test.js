// Unit tests of AnnotationStore (annotation-client.js): the target index,
// presence, tag deltas, and per-user undo/redo as inverse writes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AnnotationStore, targetKey } from '../../frontend/collab/annotation-client.js';
import { harness, remoteUpdate } from './support/harness.js';

const STAMPS = { created_by: 'bob', updated_by: 'bob', created_at: '2025-01-01T00:00:00.000Z', updated_at: '2025-01-01T00:00:00.000Z', seq: 2 };
const A1 = { id: 'a1', target_type: 'ENTITY', target_id: 'e1', kind: 'tag', tags: ['x'], color: 'red', ...STAMPS };
const A2 = { id: 'a2', target_type: 'EDGE', target_id: 'e1->e2', kind: 'highlight', color: 'blue', ...STAMPS };

function live() {
  const h = harness();
  let next = 0;
  const store = new AnnotationStore(h.client, { newId: () => `new-${++next}` });
  /** @type {any[]} */
  const changes = [];
  store.on('change', (change) => changes.push(change));
  h.socket.hello({ seq: 2, data: { a1: A1, a2: A2 } });
  /** The write messages the client sent, in order. */
  const writes = () => h.socket.writes;
  return { h, store, changes, writes };
}

describe('index and events', () => {
  test('annotations by id and by target follow snapshots, remote changes and deletes', () => {
    const { h, store, changes } = live();
    assert.deepEqual(store.byTarget('ENTITY', 'e1').map((a) => a.id), ['a1']);
    assert.deepEqual(store.byTarget('EDGE', 'e1->e2').map((a) => a.id), ['a2']);
    h.socket.receive(remoteUpdate(3, { id: 'a3', target_type: 'ENTITY', target_id: 'e1', kind: 'note', seq: 3 }));
    assert.deepEqual(store.byTarget('ENTITY', 'e1').map((a) => a.id), ['a1', 'a3']);
    assert.equal(changes.at(-1).author, 'bob');
    h.socket.receive(remoteUpdate(4, { id: 'a3', target_id: 'e9' }));
    assert.deepEqual(store.byTarget('ENTITY', 'e1').map((a) => a.id), ['a1'], 're-targeted');
    assert.deepEqual(store.byTarget('ENTITY', 'e9').map((a) => a.id), ['a3']);
    h.socket.receive({ type: 'annotation_delete', seq: 5, prev: 4, client_id: 'other', author: 'bob', ts: 1, op_id: 'd', id: 'a1' });
    assert.deepEqual(store.byTarget('ENTITY', 'e1'), []);
    assert.equal(store.get('a1'), undefined);
    assert.equal(store.all().length, 2);
  });

  test('create indexes the new annotation at once (optimistic) and sends it', () => {
    const { store, writes } = live();
    const id = store.create('ENTITY', 'e2', { kind: 'tag', tags: ['lead'] });
    assert.equal(id, 'new-1');
    assert.deepEqual(store.byTarget('ENTITY', 'e2').map((a) => a.id), ['new-1']);
    assert.deepEqual(writes()[0].payload, { id: 'new-1', kind: 'tag', tags: ['lead'], target_type: 'ENTITY', target_id: 'e2' });
  });
});

describe('presence', () => {
  test('select() shares the selection merged with the rest of the state; selecting() finds others', () => {
    const { h, store } = live();
    store.setPresence({ name: 'alice', color: '#e11' });
    store.select([targetKey('ENTITY', 'e1')]);
    assert.deepEqual(h.socket.sentOfType('presence').at(-1).state, { name: 'alice', color: '#e11', selection: ['ENTITY:e1'] });
    /** @type {any[]} */
    const seen = [];
    store.on('presence', (entries) => seen.push(entries));
    h.socket.receive({ type: 'presence', client_id: 'b', user: 'bob', state: { selection: ['ENTITY:e1'] } });
    assert.deepEqual(store.selecting('ENTITY:e1').map((p) => p.user), ['bob']);
    assert.deepEqual(store.selecting('ENTITY:e2'), []);
    assert.equal(seen.length, 1);
  });
});

describe('tags', () => {
  test('add and remove go out as set deltas', () => {
    const { store, writes } = live();
    store.addTags('a1', ['y', 'z']);
    store.removeTags('a1', ['x']);
    assert.deepEqual(writes().map((m) => m.payload.tags), [{ add: ['y', 'z'], remove: [] }, { add: [], remove: ['x'] }]);
    assert.deepEqual(store.get('a1')?.tags, ['y', 'z']);
  });
});

describe('undo and redo', () => {
  test('undo writes the previous values of the fields changed; redo writes them again', () => {
    const { store, writes } = live();
    store.update('a1', { color: 'green', label: 'new' });
    assert.equal(store.canUndo, true);
    assert.equal(store.undo(), true);
    assert.deepEqual(writes().at(-1).payload, { id: 'a1', color: 'red', label: null });
    assert.equal(store.get('a1')?.color, 'red');
    assert.equal(store.get('a1')?.label, undefined);
    assert.equal(store.redo(), true);
    assert.deepEqual(writes().at(-1).payload, { id: 'a1', color: 'green', label: 'new' });
    assert.equal(store.get('a1')?.color, 'green');
  });

  test("undo leaves others' changes to other fields alone", () => {
    const { h, store } = live();
    store.update('a1', { color: 'green' });
    h.socket.receive(remoteUpdate(3, { id: 'a1', confidence: 'HIGH' }));
    store.undo();
    assert.equal(store.get('a1')?.color, 'red');
    assert.equal(store.get('a1')?.confidence, 'HIGH');
  });

  test('undo of a tag change reverses only what it did', () => {
    const { store, writes } = live();
    store.addTags('a1', ['x', 'y']); // x was already there
    store.undo();
    assert.deepEqual(writes().at(-1).payload.tags, { add: [], remove: ['y'] });
    assert.deepEqual(store.get('a1')?.tags, ['x']);
    store.redo();
    assert.deepEqual(writes().at(-1).payload.tags, { add: ['y'], remove: [] });
    assert.deepEqual(store.get('a1')?.tags, ['x', 'y']);
  });

  test('undo of a delete re-creates the annotation with its fields; redo deletes it again', () => {
    const { store, writes } = live();
    store.delete('a2');
    assert.equal(store.get('a2'), undefined);
    store.undo();
    const recreate = writes().at(-1);
    assert.equal(recreate.recreate, true);
    assert.deepEqual(recreate.payload, { id: 'a2', target_type: 'EDGE', target_id: 'e1->e2', kind: 'highlight', color: 'blue' });
    assert.equal(store.get('a2')?.color, 'blue');
    store.redo();
    assert.deepEqual(writes().at(-1), { type: 'annotation_delete', op_id: writes().at(-1).op_id, id: 'a2' });
    assert.equal(store.get('a2'), undefined);
  });

  test('undo of a create deletes it; a new change clears the redo history', () => {
    const { store, writes } = live();
    /** @type {any[]} */
    const history = [];
    store.on('history', (state) => history.push(state));
    const id = store.create('ENTITY', 'e3', { kind: 'tag' });
    store.undo();
    assert.deepEqual(writes().at(-1), { type: 'annotation_delete', op_id: writes().at(-1).op_id, id });
    assert.equal(store.canRedo, true);
    store.update('a1', { color: 'black' });
    assert.equal(store.canRedo, false);
    assert.equal(store.redo(), false);
    assert.deepEqual(history.at(-1), { canUndo: true, canRedo: false });
  });

  test('writing again to an annotation whose creation was undone re-creates it', () => {
    const { store, writes } = live();
    const id = store.create('ENTITY', 'e3', { kind: 'tag' });
    store.undo();
    store.update(id, { kind: 'tag', target_type: 'ENTITY', target_id: 'e3', color: 'red' });
    assert.equal(writes().at(-1).recreate, true);
    assert.equal(store.get(id)?.color, 'red');
  });

  test("only this user's changes are undone, most recent first", () => {
    const { h, store } = live();
    store.update('a1', { color: 'one' });
    store.update('a1', { color: 'two' });
    h.socket.receive(remoteUpdate(3, { id: 'a2', color: 'theirs' }));
    store.undo();
    assert.equal(store.get('a1')?.color, 'one');
    assert.equal(store.get('a2')?.color, 'theirs');
    store.undo();
    assert.equal(store.get('a1')?.color, 'red');
    assert.equal(store.undo(), false);
  });
});
