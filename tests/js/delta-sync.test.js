// Unit tests of CollaborationClient against a fake WebSocket and fake time:
// the protocol rules of shared/PROTOCOL.md as the client must follow them.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Backoff } from '../../frontend/collab/backoff.js';
import { CollaborationClient } from '../../frontend/collab/delta-sync.js';
import { createClock, randomFrom } from './support/fake-clock.js';
import { createFakeWebSocket } from './support/fake-websocket.js';
import { harness, remoteText, remoteUpdate } from './support/harness.js';

const A1 = { id: 'a1', target_type: 'ENTITY', target_id: 'e1', kind: 'tag', color: 'red', tags: ['x'] };

describe('connecting', () => {
  test('sends client_id, user, token and batch=1, and no since without state', () => {
    const h = harness({ options: { token: 'tok' } });
    const params = h.socket.params;
    assert.equal(h.socket.url.pathname, '/ws/collaborate/g1');
    assert.equal(h.socket.url.protocol, 'ws:');
    assert.equal(params.client_id, h.client.clientId);
    assert.equal(params.user, 'alice');
    assert.equal(params.token, 'tok');
    assert.equal(params.batch, '1');
    assert.equal(params.since, undefined);
    assert.deepEqual(h.events.status, ['connecting']);
  });

  test('batch: false connects without batch=1', () => {
    const h = harness({ options: { batch: false } });
    assert.equal(h.socket.params.batch, undefined);
  });

  test('initial_state goes live and reaches the original callback as (data, true)', () => {
    const h = harness();
    h.socket.hello({ seq: 7, data: { a1: A1 } });
    assert.equal(h.client.status, 'live');
    assert.equal(h.client.lastSeq, 7);
    assert.deepEqual(h.updates, [[{ a1: A1 }, true]]);
    assert.deepEqual(h.client.get('a1'), A1);
  });

  test('client_id is stable across a reload of the tab and differs between tabs', () => {
    const h = harness();
    const first = h.client.clientId;
    assert.equal(h.reload().clientId, first);
    const otherTab = harness({ storage: h.storage });
    assert.notEqual(otherTab.client.clientId, first);
  });

  test('a duplicated tab (same sessionStorage, original alive) takes a new client_id', () => {
    const h = harness();
    const twin = harness({ storage: h.storage, sessionStorage: h.sessionStorage, clock: h.clock });
    assert.notEqual(twin.client.clientId, h.client.clientId);
  });
});

describe('applying the server stream', () => {
  test('broadcasts apply in seq order, single and batched, duplicates ignored', () => {
    const h = harness();
    h.socket.hello({ seq: 0 });
    h.socket.receive(remoteUpdate(1, { id: 'a1', color: 'red' }));
    h.socket.receive([remoteUpdate(2, { id: 'a1', color: 'blue' }), remoteUpdate(3, { id: 'a2', color: 'green' })]);
    h.socket.receive(remoteUpdate(2, { id: 'a1', color: 'stale' }));
    assert.equal(h.client.lastSeq, 3);
    assert.equal(h.client.get('a1')?.color, 'blue');
    assert.equal(h.client.get('a2')?.color, 'green');
    const perAnnotation = h.updates.filter(([, initial]) => !initial).map(([data]) => [data.id, data.color]);
    assert.deepEqual(perAnnotation, [['a1', 'red'], ['a1', 'blue'], ['a2', 'green']]);
    const change = h.events.annotation.at(-1);
    assert.equal(change.author, 'bob');
    assert.equal(change.origin, 'remote');
  });

  test('a gap (prev > applied seq) resyncs with since and stops applying the frame', () => {
    const h = harness();
    h.socket.hello({ seq: 5 });
    const first = h.socket;
    first.receive([remoteUpdate(6, { id: 'a1', color: 'red' }), remoteUpdate(8, { id: 'a1', color: 'blue' }), remoteUpdate(9, { id: 'a9', color: 'x' })]);
    assert.equal(h.client.lastSeq, 6);
    assert.equal(h.client.get('a9'), undefined);
    assert.ok(first.closedByClient, 'the socket with the gap is closed');
    assert.equal(h.client.status, 'resyncing');
    h.clock.advance(0);
    const second = h.socket;
    assert.notEqual(second, first);
    assert.equal(second.params.since, '6');
    second.hello({ seq: 9, ops: [remoteUpdate(7, { id: 'a1', color: 'green' }), remoteUpdate(8, { id: 'a1', color: 'blue' }), remoteUpdate(9, { id: 'a9', color: 'x' })] });
    assert.equal(h.client.status, 'live');
    assert.equal(h.client.lastSeq, 9);
    assert.equal(h.client.get('a1')?.color, 'blue');
    assert.equal(h.client.get('a9')?.color, 'x');
  });

  test('a hidden write (prev skips seqs, no gap) is not a gap', () => {
    const h = harness();
    h.socket.hello({ seq: 5 });
    h.socket.receive({ ...remoteUpdate(9, { id: 'a1', color: 'red' }), prev: 5 });
    assert.equal(h.client.lastSeq, 9);
    assert.equal(h.fake.sockets.length, 1);
  });
});

describe('pending writes and acks', () => {
  test('a write shows at once, is sent with an op_id, and the ack confirms it', () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const opId = h.client.sendAnnotationUpdate({ id: 'a1', color: 'blue' });
    assert.equal(h.client.get('a1')?.color, 'blue');
    assert.deepEqual(h.socket.writes, [{ type: 'annotation_update', op_id: opId, payload: { id: 'a1', color: 'blue' } }]);
    assert.equal(h.client.pendingCount, 1);
    h.clock.advance(40);
    h.socket.receive({ type: 'ack', op_id: opId, seq: 4 });
    assert.equal(h.client.pendingCount, 0);
    assert.equal(h.client.lastSeq, 4);
    assert.equal(h.client.get('a1')?.color, 'blue');
    assert.equal(h.client.get('a1')?.seq, 4);
    assert.equal(h.client.ackLatency, 40);
    assert.deepEqual(h.events.latency.filter((l) => l.kind === 'ack'), [{ kind: 'ack', ms: 40 }]);
  });

  test("an acked write carries the server's stamps: the ack's ts, and the token's user", () => {
    const token = ['e30', btoa(JSON.stringify({ sub: 'alice@agency', role: 'editor' })).replace(/=+$/, ''), 'sig'].join('.');
    const h = harness({ options: { token, user: 'ignored-with-auth' } });
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const opId = h.client.update('a1', { color: 'blue' });
    h.socket.receive({ type: 'ack', op_id: opId, seq: 4, ts: Date.UTC(2025, 0, 2, 3, 4, 5, 6) });
    const a1 = h.client.get('a1');
    assert.equal(a1?.updated_at, '2025-01-02T03:04:05.006Z');
    assert.equal(a1?.updated_by, 'alice@agency');
    assert.equal(a1?.seq, 4);
    assert.deepEqual(h.events.pending, [1, 0]);
  });

  test("Figma's rule: a remote value for a field with a pending write is held until the ack", () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const opId = h.client.update('a1', { color: 'blue' });
    h.socket.receive(remoteUpdate(4, { id: 'a1', color: 'green', confidence: 'HIGH' }));
    assert.equal(h.client.get('a1')?.color, 'blue', 'held: ours is pending');
    assert.equal(h.client.get('a1')?.confidence, 'HIGH', 'other fields show at once');
    const colors = h.events.annotation.map((change) => change.annotation?.color);
    assert.ok(!colors.includes('green'), 'the UI never saw the older remote value');
    h.socket.receive({ type: 'ack', op_id: opId, seq: 5 });
    assert.equal(h.client.get('a1')?.color, 'blue', 'ours was sequenced last: it wins');
    h.socket.receive(remoteUpdate(6, { id: 'a1', color: 'green' }));
    assert.equal(h.client.get('a1')?.color, 'green', 'a later remote write wins');
  });

  test('pending writes are resent with the same op_ids after a reconnect, in one batch', () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const first = h.client.update('a1', { color: 'blue' });
    const second = h.client.addTags('a1', ['y']);
    h.socket.serverClose(1006);
    assert.equal(h.client.status, 'offline');
    const third = h.client.update('a1', { label: 'L' });
    assert.equal(h.client.get('a1')?.label, 'L');
    h.clock.advance(30_000);
    const again = h.socket;
    assert.equal(again.params.since, '3');
    again.hello({ seq: 3 });
    assert.deepEqual(again.writes.map((m) => m.op_id), [first, second, third]);
    assert.equal(again.frames.filter((f) => f.startsWith('[')).length, 1, 'sent as one batch frame');
  });

  test('a duplicate ack drops the pending write without applying it twice', () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const opId = h.client.addTags('a1', ['y']);
    h.socket.serverClose(1006);
    h.clock.advance(30_000);
    // The server had applied it at 4 but the ack was lost; a snapshot already holds it.
    h.socket.open().receive({ type: 'initial_state', seq: 5, data: { a1: { ...A1, tags: ['x', 'y'], seq: 4 } } });
    assert.equal(h.client.lastSeq, 5);
    h.socket.receive({ type: 'ack', op_id: opId, seq: 4, duplicate: true });
    assert.equal(h.client.pendingCount, 0);
    assert.equal(h.client.lastSeq, 5);
    assert.deepEqual(h.client.get('a1')?.tags, ['x', 'y']);
  });

  test("the client's own unacked write in a catch_up counts as its ack and is not resent", () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const opId = h.client.update('a1', { color: 'blue' });
    const other = h.client.update('a1', { label: 'later' });
    h.socket.serverClose(1006);
    h.clock.advance(30_000);
    const own = { ...remoteUpdate(4, { id: 'a1', color: 'blue', updated_by: 'alice', seq: 4 }), client_id: h.client.clientId, op_id: opId, author: 'alice' };
    h.socket.hello({ seq: 4, ops: [own] });
    assert.equal(h.client.pendingCount, 1);
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [other]);
    assert.equal(h.client.get('a1')?.color, 'blue');
    assert.equal(h.client.lastSeq, 4);
  });

  test('an error for a pending write rolls back its optimistic effect and is reported', () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const refused = h.client.update('a1', { color: 'blue' });
    const kept = h.client.update('a1', { label: 'kept' });
    h.socket.receive({ type: 'error', code: 'forbidden', message: 'viewer', op_id: refused });
    assert.equal(h.client.get('a1')?.color, 'red');
    assert.equal(h.client.get('a1')?.label, 'kept');
    assert.equal(h.client.pendingCount, 1);
    assert.equal(h.events.error.length, 1);
    assert.equal(h.events.error[0].code, 'forbidden');
    assert.equal(h.events.error[0].opId, refused);
    assert.equal(h.events.annotation.at(-1).origin, 'rollback');
    assert.ok(kept);
  });

  test('rate_limited keeps the write and sends it again after a pause', () => {
    const h = harness({ options: { rateLimitDelay: 1000 } });
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    const opId = h.client.update('a1', { color: 'blue' });
    h.socket.receive({ type: 'error', code: 'rate_limited', message: 'slow down', op_id: opId });
    assert.equal(h.client.get('a1')?.color, 'blue');
    h.clock.advance(999);
    assert.equal(h.socket.writes.length, 1);
    h.clock.advance(1);
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [opId, opId]);
  });

  test('tag deltas: concurrent additions from others survive in the view', () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    h.client.addTags('a1', ['mine']);
    assert.deepEqual(h.socket.writes[0].payload.tags, { add: ['mine'] });
    h.socket.receive(remoteUpdate(4, { id: 'a1', tags: ['theirs', 'x'] }));
    assert.deepEqual(h.client.get('a1')?.tags, ['mine', 'theirs', 'x']);
    h.client.removeTags('a1', ['x']);
    assert.deepEqual(h.socket.writes[1].payload.tags, { remove: ['x'] });
    assert.deepEqual(h.client.get('a1')?.tags, ['mine', 'theirs']);
  });

  test('delete wins: an update of a deleted annotation does not revive it in the view', () => {
    const h = harness();
    h.socket.hello({ seq: 3, data: { a1: A1 } });
    h.socket.receive({ type: 'annotation_delete', seq: 4, prev: 3, op_id: 'r', client_id: 'other', author: 'bob', ts: 1, id: 'a1' });
    assert.equal(h.client.get('a1'), undefined);
    assert.deepEqual(h.updates.at(-1), [{ id: 'a1', deleted: true }, false]);
    assert.equal(h.client.isDeleted('a1'), true);
    assert.equal(h.client.isDeleted('never-existed'), false);
    h.client.update('a1', { color: 'blue' });
    assert.equal(h.client.get('a1'), undefined);
    h.client.recreate('a1', { color: 'blue', target_type: 'ENTITY', target_id: 'e1' });
    assert.equal(h.client.get('a1')?.color, 'blue');
    assert.equal(h.socket.writes.at(-1).recreate, true);
  });
});

describe('reconnecting', () => {
  test('backoff: full jitter, window doubling from 500 ms, capped at 30 s', () => {
    const fake = createFakeWebSocket();
    const clock = createClock();
    const client = new CollaborationClient('g1', null, {
      url: 'http://collab.test',
      WebSocket: fake.WebSocket,
      timers: clock,
      now: clock.now,
      random: () => 0.999,
      env: null,
    });
    /** @type {number[]} */
    const delays = [];
    for (let attempt = 0; attempt < 9; attempt += 1) {
      const before = fake.sockets.length;
      const failedAt = clock.now();
      fake.last().serverClose(1006);
      let waited = 0;
      while (fake.sockets.length === before && waited < 60_000) {
        clock.advance(10);
        waited += 10;
      }
      delays.push(Math.round((clock.now() - failedAt) / 10) * 10);
    }
    const windows = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
    delays.forEach((delay, i) => assert.ok(Math.abs(delay - windows[i] * 0.999) <= 10, `attempt ${i}: ${delay} vs ${windows[i]}`));
    client.close();
  });

  test('full jitter: each delay is uniform over [0, window), not a fixed step', () => {
    const backoff = new Backoff({ base: 500, cap: 30_000, random: randomFrom([0, 0.25, 0.5, 0.999, 0.1]) });
    const delays = [0, 1, 2, 3, 4].map(() => backoff.next());
    assert.deepEqual(delays, [0, 250, 1000, 3996, 800]);
    backoff.reset();
    assert.equal(backoff.window, 500);
  });

  test("the browser's online and visibilitychange events retry at once", () => {
    const h = harness({ options: { random: () => 0.999 } });
    h.socket.hello();
    h.socket.serverClose(1006);
    h.clock.advance(100);
    assert.equal(h.fake.sockets.length, 1, 'still waiting out the backoff');
    h.env.dispatch('online');
    assert.equal(h.fake.sockets.length, 2);
    h.socket.serverClose(1006);
    h.env.setVisibility('visible');
    assert.equal(h.fake.sockets.length, 3);
  });

  test('browser offline: the socket is dropped and no attempt is made until online', () => {
    const h = harness();
    h.socket.hello({ seq: 1, data: { a1: A1 } });
    h.env.goOffline();
    assert.equal(h.client.status, 'offline');
    assert.ok(h.fake.sockets[0].closedByClient);
    h.client.update('a1', { color: 'offline-edit' });
    h.clock.advance(120_000);
    assert.equal(h.fake.sockets.length, 1);
    h.env.goOnline();
    assert.equal(h.fake.sockets.length, 2);
    h.socket.hello({ seq: 1 });
    assert.equal(h.socket.writes[0].payload.color, 'offline-edit');
  });

  test('heartbeat: pings measure the RTT, and a silent socket is declared dead within seconds', () => {
    const h = harness({ options: { heartbeatInterval: 2000, heartbeatTimeout: 3000 } });
    h.socket.hello();
    h.clock.advance(0);
    assert.equal(h.socket.sentOfType('ping').length, 1);
    h.clock.advance(25);
    h.socket.receive({ type: 'pong' });
    assert.equal(h.client.rtt, 25);
    assert.deepEqual(h.events.latency[0], { kind: 'ping', ms: 25 });
    h.clock.advance(2000);
    assert.equal(h.socket.sentOfType('ping').length, 2);
    // The network silently dies: no pong, nothing at all.
    const deadSince = h.clock.now();
    h.clock.advance(2999);
    assert.equal(h.client.status, 'live');
    h.clock.advance(1);
    assert.equal(h.client.status, 'offline');
    assert.equal(h.fake.sockets[0].closedByClient?.code, 4000);
    assert.ok(h.clock.now() - deadSince <= 5000);
    h.clock.advance(500);
    assert.equal(h.fake.sockets.length, 2, 'and it reconnects');
  });

  test('heartbeat: traffic without the pong (a long catch-up) is not death', () => {
    const h = harness({ options: { heartbeatInterval: 2000, heartbeatTimeout: 3000 } });
    h.socket.hello();
    h.clock.advance(0);
    h.clock.advance(2000);
    h.socket.receive(remoteUpdate(1, { id: 'a1', color: 'red' }));
    h.clock.advance(2000);
    assert.equal(h.fake.sockets[0].closedByClient, null, 'alive: data came after the ping');
    h.clock.advance(3000);
    assert.equal(h.fake.sockets[0].closedByClient?.code, 4000, 'then silence: dead');
  });

  for (const [code, name] of [[4401, 'unauthenticated'], [4403, 'forbidden'], [1008, 'policy_violation']]) {
    test(`close ${code}: stop, report ${name}, never retry`, () => {
      const h = harness();
      h.socket.open();
      h.socket.serverClose(code, 'no');
      assert.equal(h.client.status, 'closed');
      assert.equal(h.events.error[0].code, name);
      assert.equal(h.events.error[0].closeCode, code);
      h.clock.advance(10 * 60_000);
      h.env.goOnline();
      assert.equal(h.fake.sockets.length, 1);
    });
  }

  test('close 1013: reconnect with since (resyncing), nothing lost', () => {
    const h = harness();
    h.socket.hello({ seq: 4, data: { a1: A1 } });
    const opId = h.client.update('a1', { color: 'blue' });
    h.socket.serverClose(1013, 'too slow');
    assert.equal(h.client.status, 'resyncing');
    h.clock.advance(1000);
    assert.equal(h.socket.params.since, '4');
    assert.equal(h.client.status, 'resyncing');
    h.socket.hello({ seq: 4 });
    assert.equal(h.client.status, 'live');
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [opId]);
  });

  test('close 1009: report, drop the oversized write, reconnect and send the rest', () => {
    const h = harness();
    h.socket.hello({ seq: 1, data: { a1: A1 } });
    const small = h.client.update('a1', { color: 'blue' });
    h.client.update('a1', { text: 'x'.repeat(5000) });
    h.socket.serverClose(1009, 'too big');
    assert.equal(h.events.error[0].code, 'too_large');
    assert.equal(h.client.get('a1')?.text, undefined, 'rolled back');
    h.clock.advance(1000);
    h.socket.hello({ seq: 1 });
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [small]);
  });
});

describe('offline queue across a reload', () => {
  test('edits made offline survive a reload, show at once, and are sent with their op_ids', async () => {
    const h = harness();
    h.socket.hello({ seq: 2, data: { a1: A1 } });
    h.env.goOffline();
    const first = h.client.update('a1', { color: 'blue' });
    const second = h.client.update('a2', { target_type: 'ENTITY', target_id: 'e2', tags: { add: ['offline'] } });
    const clientId = h.client.clientId;
    const reloaded = h.reload();
    assert.equal(reloaded.clientId, clientId);
    assert.equal(reloaded.get('a1')?.color, 'blue');
    assert.deepEqual(reloaded.get('a2')?.tags, ['offline']);
    assert.equal(reloaded.pendingCount, 2);
    await Promise.resolve();
    assert.deepEqual(h.updates.at(-1)?.[1], true, 'the restored state reaches the callback');
    h.env.goOnline();
    assert.equal(h.socket.params.since, '2');
    h.socket.hello({ seq: 2 });
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [first, second]);
    h.socket.receive([{ type: 'ack', op_id: first, seq: 3 }, { type: 'ack', op_id: second, seq: 4 }]);
    assert.equal(reloaded.pendingCount, 0);
    const again = h.reload();
    assert.equal(again.pendingCount, 0, 'acked writes are not resent after the next reload');
  });

  test('unsent writes to one annotation fold into one; sent or restored ones never do', () => {
    const h = harness();
    h.socket.hello({ seq: 2, data: { a1: A1 } });
    const live = h.client.update('a1', { label: 'sent' });
    h.env.goOffline();
    const folded = h.client.update('a1', { color: 'blue' });
    assert.equal(h.client.addTags('a1', ['y']), folded);
    assert.equal(h.client.removeTags('a1', ['x', 'y']), folded);
    assert.equal(h.client.addTags('a1', ['z']), folded);
    assert.equal(h.client.update('a1', { color: 'green' }), folded);
    assert.equal(h.client.pendingCount, 2);
    assert.deepEqual(h.client.get('a1')?.tags, ['z']);
    const reloaded = h.reload();
    const after = reloaded.update('a1', { color: 'black' });
    assert.notEqual(after, folded, 'a restored write may have been sent: not folded into');
    h.env.goOnline();
    h.socket.hello({ seq: 2 });
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [live, folded, after]);
    assert.deepEqual(h.socket.writes[1].payload, { id: 'a1', color: 'green', tags: { add: ['z'], remove: ['x', 'y'] } });
    h.socket.receive([
      { type: 'ack', op_id: live, seq: 3, ts: 1 },
      { type: 'ack', op_id: folded, seq: 4, ts: 2 },
      { type: 'ack', op_id: after, seq: 5, ts: 3 },
    ]);
    assert.deepEqual(reloaded.get('a1')?.tags, ['z']);
    assert.equal(reloaded.get('a1')?.color, 'black');
  });

  test("a new tab adopts a closed tab's unsent edits with its client_id", () => {
    const h = harness();
    h.socket.hello({ seq: 2, data: { a1: A1 } });
    h.env.goOffline();
    const opId = h.client.update('a1', { color: 'blue' });
    const clientId = h.client.clientId;
    h.env.dispatch('pagehide');
    h.client.close();
    const newTab = harness({ storage: h.storage, env: h.env });
    assert.equal(newTab.client.clientId, clientId);
    assert.equal(newTab.client.get('a1')?.color, 'blue');
    h.env.goOnline();
    newTab.socket.hello({ seq: 2 });
    assert.deepEqual(newTab.socket.writes.map((m) => m.op_id), [opId]);
  });
});

describe('presence', () => {
  test('own presence is sent when live and again after a reconnect; others are tracked', () => {
    const h = harness();
    h.client.setPresence({ selection: ['e1'], name: 'alice' });
    assert.equal(h.socket.frames.length, 0, 'not before the session is up');
    h.socket.hello();
    assert.deepEqual(h.socket.sentOfType('presence'), [{ type: 'presence', state: { selection: ['e1'], name: 'alice' } }]);
    h.socket.receive([
      { type: 'presence', client_id: 'b', user: 'bob', state: { selection: ['e2'] } },
      { type: 'presence', client_id: 'c', user: 'carol', state: {} },
    ]);
    assert.deepEqual(h.client.presence.map((p) => p.user), ['bob', 'carol']);
    h.socket.receive({ type: 'presence_leave', client_id: 'c' });
    assert.deepEqual(h.client.presence, [{ clientId: 'b', user: 'bob', state: { selection: ['e2'] } }]);
    h.socket.serverClose(1006);
    assert.deepEqual(h.client.presence, [], 'unknown while disconnected');
    h.clock.advance(1000);
    h.socket.hello();
    assert.equal(h.socket.sentOfType('presence').length, 1);
  });
});

describe('text fields', () => {
  const NOTE = { id: 'n1', target_type: 'ENTITY', target_id: 'e1', kind: 'note', content: 'hello' };

  test('one op in flight; later edits are buffered and sent on the ack', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const first = h.client.textEdit('n1', 'content', [5, ' world']);
    assert.equal(h.client.get('n1')?.content, 'hello world');
    h.client.textEdit('n1', 'content', [11, '!']);
    assert.equal(h.client.get('n1')?.content, 'hello world!');
    assert.deepEqual(h.socket.writes, [{ type: 'text_op', op_id: first, id: 'n1', field: 'content', base: 5, ops: [5, ' world'] }]);
    h.socket.receive({ type: 'ack', op_id: first, seq: 6 });
    const second = h.socket.writes[1];
    assert.equal(second.base, 6);
    assert.deepEqual(second.ops, [11, '!']);
    assert.notEqual(second.op_id, first);
    h.socket.receive({ type: 'ack', op_id: second.op_id, seq: 7 });
    assert.equal(h.client.pendingCount, 0);
    assert.equal(h.client.get('n1')?.content, 'hello world!');
  });

  test('remote ops are transformed past local ones, with ops to move the caret', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const mine = h.client.textEdit('n1', 'content', [5, '!']);
    h.socket.receive(remoteText(6, 'n1', 'content', ['Oh ', 5]));
    assert.equal(h.client.get('n1')?.content, 'Oh hello!');
    const change = h.events.annotation.at(-1);
    assert.deepEqual(change.textOps.content, [['Oh ', 6]]);
    assert.equal(change.author, 'bob');
    h.socket.receive({ type: 'ack', op_id: mine, seq: 7 });
    assert.equal(h.client.get('n1')?.content, 'Oh hello!');
    assert.equal(h.client.pendingCount, 0);
  });

  test('after a reconnect: own op in the catch_up acks it and the buffer goes out', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const first = h.client.textEdit('n1', 'content', [5, '1']);
    h.client.textEdit('n1', 'content', [6, '2']);
    h.socket.serverClose(1006);
    h.clock.advance(1000);
    const own = { ...remoteText(6, 'n1', 'content', [5, '1']), client_id: h.client.clientId, op_id: first };
    h.socket.hello({ seq: 7, ops: [own, remoteText(7, 'n1', 'content', ['>', 6])] });
    assert.equal(h.client.get('n1')?.content, '>hello12');
    const writes = h.socket.writes;
    // The buffer went in flight at seq 6 (the ack), before op 7 was seen:
    // based on 6, the server transforms it past op 7.
    assert.equal(writes.length, 1);
    assert.equal(writes[0].base, 6);
    assert.deepEqual(writes[0].ops, [6, '2']);
  });

  test('an unacked op is resent with the same op_id and base after a reconnect', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const first = h.client.textEdit('n1', 'content', [5, '1']);
    h.socket.serverClose(1006);
    h.clock.advance(1000);
    h.socket.hello({ seq: 6, ops: [remoteText(6, 'n1', 'content', ['>', 5])] });
    assert.deepEqual(h.socket.writes, [{ type: 'text_op', op_id: first, id: 'n1', field: 'content', base: 5, ops: [5, '1'] }]);
    assert.equal(h.client.get('n1')?.content, '>hello1');
  });

  test('a whole-field replacement by someone else: local edits rebased onto it, refusal ignored', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const doomed = h.client.textEdit('n1', 'content', [5, ' there']);
    h.socket.receive(remoteUpdate(6, { id: 'n1', content: 'HELLO' }));
    assert.equal(h.client.get('n1')?.content, 'HELLO there');
    const rebased = h.socket.writes.at(-1);
    assert.notEqual(rebased.op_id, doomed);
    assert.equal(rebased.base, 6);
    h.socket.receive({ type: 'error', code: 'conflict', message: 'replaced', op_id: doomed });
    assert.equal(h.events.error.length, 0);
    h.socket.receive({ type: 'ack', op_id: rebased.op_id, seq: 7 });
    assert.equal(h.client.get('n1')?.content, 'HELLO there');
    assert.equal(h.client.pendingCount, 0);
  });

  test('a refused text op is rolled back but later edits are kept', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const refused = h.client.textEdit('n1', 'content', ['A', 5]);
    h.client.textEdit('n1', 'content', [6, 'B']);
    h.socket.receive({ type: 'error', code: 'invalid_op', message: 'no', op_id: refused });
    assert.equal(h.client.get('n1')?.content, 'helloB');
    assert.deepEqual(h.socket.writes.at(-1).ops, [5, 'B']);
    assert.equal(h.events.error[0].code, 'invalid_op');
  });

  test('a text op refused for a stale base is rebased and sent again, nothing lost (a few times at most)', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    let opId = h.client.textEdit('n1', 'content', [5, '!']);
    h.socket.receive(remoteText(6, 'n1', 'content', ['>', 5]));
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      h.socket.receive({ type: 'error', code: 'conflict', message: 'base older than the retained log', op_id: opId });
      const retry = h.socket.writes.at(-1);
      assert.notEqual(retry.op_id, opId);
      assert.equal(retry.base, 6, 'based on the newest state');
      assert.deepEqual(retry.ops, [6, '!']);
      opId = retry.op_id;
    }
    assert.equal(h.events.error.length, 0);
    assert.equal(h.client.get('n1')?.content, '>hello!');
    h.socket.receive({ type: 'error', code: 'conflict', message: 'again', op_id: opId });
    assert.equal(h.events.error.length, 1, 'then it gives up and reports');
    assert.equal(h.client.get('n1')?.content, '>hello');
  });

  test('after an initial_state: a duplicate ack of the op in flight means it is included', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const op = h.client.textEdit('n1', 'content', [5, '1']);
    h.client.textEdit('n1', 'content', [6, '2']);
    h.socket.serverClose(1006);
    h.clock.advance(1000);
    // The log was trimmed: a snapshot holding our op (at 6) and someone's edit.
    h.socket.open().receive({ type: 'initial_state', seq: 9, data: { n1: { ...NOTE, content: '>hello1' } } });
    assert.equal(h.client.get('n1')?.content, 'hello12', 'local text kept while the probe is out');
    assert.deepEqual(h.socket.writes.map((m) => m.op_id), [op]);
    h.socket.receive({ type: 'ack', op_id: op, seq: 6, duplicate: true });
    assert.equal(h.client.get('n1')?.content, '>hello12');
    assert.deepEqual(h.socket.writes.at(-1).ops, [7, '2']);
    assert.equal(h.socket.writes.at(-1).base, 9);
  });

  test('after an initial_state: a refusal of the op in flight means it is not included', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const op = h.client.textEdit('n1', 'content', [5, '1']);
    h.socket.serverClose(1006);
    h.clock.advance(1000);
    h.socket.open().receive({ type: 'initial_state', seq: 9, data: { n1: { ...NOTE, content: '>hello' } } });
    h.socket.receive({ type: 'error', code: 'conflict', message: 'base too old', op_id: op });
    assert.equal(h.client.get('n1')?.content, '>hello1');
    assert.deepEqual(h.socket.writes.at(-1).ops, [6, '1']);
    assert.equal(h.events.error[0].code, 'conflict');
  });

  test('text edits made offline survive a reload', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    h.env.goOffline();
    const first = h.client.textEdit('n1', 'content', [5, '1']);
    h.client.textEdit('n1', 'content', [6, '2']);
    const reloaded = h.reload();
    assert.equal(reloaded.get('n1')?.content, 'hello12');
    h.env.goOnline();
    h.socket.hello({ seq: 6, ops: [remoteText(6, 'n1', 'content', ['>', 5])] });
    assert.equal(reloaded.get('n1')?.content, '>hello12');
    const [write] = h.socket.writes;
    assert.equal(write.op_id, first);
    h.socket.receive({ type: 'ack', op_id: first, seq: 7 });
    const buffered = h.socket.writes.at(-1);
    assert.equal(buffered.base, 7);
    h.socket.receive({ type: 'ack', op_id: buffered.op_id, seq: 8 });
    assert.equal(reloaded.get('n1')?.content, '>hello12');
    assert.equal(reloaded.pendingCount, 0);
  });

  test('a whole-field write of our own supersedes buffered text edits of that field', () => {
    const h = harness();
    h.socket.hello({ seq: 5, data: { n1: NOTE } });
    const typed = h.client.textEdit('n1', 'content', [5, '1']);
    h.client.textEdit('n1', 'content', [6, '2']);
    const replaced = h.client.update('n1', { content: 'fresh' });
    assert.equal(h.client.get('n1')?.content, 'fresh');
    h.client.textEdit('n1', 'content', [5, '!']);
    assert.deepEqual(h.socket.writes.at(-1).payload, { id: 'n1', content: 'fresh!' }, 'sent whole: a text op would be refused');
    h.socket.receive({ type: 'ack', op_id: typed, seq: 6 });
    assert.equal(h.socket.writes.filter((m) => m.type === 'text_op').length, 1, 'the buffer was dropped, not sent');
    h.socket.receive([{ type: 'ack', op_id: replaced, seq: 7 }, { type: 'ack', op_id: h.socket.writes.at(-1).op_id, seq: 8 }]);
    assert.equal(h.client.get('n1')?.content, 'fresh!');
    assert.equal(h.client.pendingCount, 0);
  });

  test('editing text of an annotation not yet on the server sends the whole field', () => {
    const h = harness();
    h.socket.hello({ seq: 1 });
    h.client.update('n2', { target_type: 'ENTITY', target_id: 'e1', kind: 'note', content: '' });
    h.client.textEdit('n2', 'content', ['hi']);
    assert.deepEqual(h.socket.writes.at(-1).payload, { id: 'n2', content: 'hi' });
  });
});
