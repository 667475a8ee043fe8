// The JS client in Node (with the `ws` package) against the real server, a
// child process on a free port: convergence, authors, dropped connections
// with resends, concurrent typing, and a server crash and restart.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { CollaborationClient } from '../../frontend/collab/delta-sync.js';
import { memoryStorage } from '../../frontend/collab/offline-store.js';
import { ServerProcess } from './support/server.js';

/** @type {ServerProcess} */
let server;
/** @type {CollaborationClient[]} */
const clients = [];
let graphCounter = 0;

before(async () => {
  server = await ServerProcess.start();
});

after(async () => {
  for (const client of clients) client.close();
  await server?.dispose();
});

/** A graph id no other test uses. */
function freshGraph() {
  graphCounter += 1;
  return `it-${process.pid}-${graphCounter}`;
}

/**
 * A client whose sockets the test can cut (terminate: no close handshake,
 * as a network drop) or keep from connecting at all (`blocked`).
 * @param {string} graphId
 * @param {string} user
 * @param {{storage?: any, sessionStorage?: any, on?: ServerProcess}} [options]
 */
function connect(graphId, user, options = {}) {
  /** @type {WebSocket[]} */
  const sockets = [];
  const network = { blocked: false };
  class TrackedWebSocket extends WebSocket {
    /** @param {string} url */
    constructor(url) {
      if (network.blocked) throw new Error('network unreachable (test)');
      super(url);
      sockets.push(this);
    }
  }
  const stores = options;
  const client = new CollaborationClient(graphId, null, {
    url: (options.on ?? server).url,
    user,
    WebSocket: /** @type {any} */ (TrackedWebSocket),
    storage: stores.storage ?? memoryStorage(),
    sessionStorage: stores.sessionStorage ?? memoryStorage(),
    env: null,
    backoffBase: 50,
    backoffCap: 400,
    heartbeatInterval: 500,
    heartbeatTimeout: 1500,
  });
  clients.push(client);
  return {
    client,
    network,
    /** Cut the current socket abruptly. */
    drop() {
      sockets.at(-1)?.terminate();
    },
  };
}

/**
 * Wait until `predicate()` holds (polling a few ms apart), or fail naming `what`.
 * @param {() => boolean} predicate
 * @param {string} what
 * @param {number} [timeout]
 */
async function waitFor(predicate, what, timeout = 8000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${server.log.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** @param {CollaborationClient[]} group */
async function settled(group) {
  await waitFor(
    () =>
      group.every((c) => c.status === 'live' && c.pendingCount === 0) &&
      group.every((c) => c.lastSeq === group[0].lastSeq),
    'all clients live, nothing pending, same seq',
  );
}

describe('the JS client against the real server', () => {
  test('two clients converge, and each sees the other change live with its author', async () => {
    const graphId = freshGraph();
    const alice = connect(graphId, 'alice').client;
    const bob = connect(graphId, 'bob').client;
    /** @type {import('../../frontend/collab/delta-sync.js').AnnotationChange[]} */
    const seenByBob = [];
    bob.on('annotation', (change) => seenByBob.push(change));
    await waitFor(() => alice.status === 'live' && bob.status === 'live', 'both live');

    alice.update('a1', { target_type: 'ENTITY', target_id: 'e1', kind: 'tag', color: 'red', tags: ['x'] });
    await waitFor(() => bob.get('a1')?.color === 'red', 'bob to see the new annotation');
    const change = seenByBob.find((c) => c.id === 'a1' && c.origin === 'remote');
    assert.equal(change?.author, 'alice');
    assert.equal(bob.get('a1')?.created_by, 'alice');

    // Concurrent writes: tag additions both survive; the colour converges.
    alice.addTags('a1', ['from-alice']);
    bob.addTags('a1', ['from-bob']);
    alice.update('a1', { color: 'green' });
    bob.update('a1', { color: 'blue' });
    await settled([alice, bob]);
    assert.deepEqual(alice.get('a1')?.tags, ['from-alice', 'from-bob', 'x']);
    assert.deepEqual(alice.getAll(), bob.getAll(), 'identical replicas, server stamps included');
    assert.ok(['green', 'blue'].includes(alice.get('a1')?.color));
  });

  test('writes made while cut off are resent and nothing is lost or doubled', async () => {
    const graphId = freshGraph();
    const alice = connect(graphId, 'alice');
    const bob = connect(graphId, 'bob').client;
    await waitFor(() => alice.client.status === 'live' && bob.status === 'live', 'both live');
    alice.client.update('n1', { target_type: 'ENTITY', target_id: 'e1', kind: 'note', content: 'log:' });
    await settled([alice.client, bob]);

    // A text op sent just before the cut: its ack may be lost; resending it
    // with the same op_id must not insert it twice.
    alice.client.textEdit('n1', 'content', [4, ' one']);
    alice.drop();
    alice.client.textEdit('n1', 'content', [8, ' two']);
    alice.client.addTags('n1', ['offline']);
    bob.update('n1', { color: 'yellow' });
    await waitFor(() => alice.client.status !== 'live' || alice.client.pendingCount === 0, 'the cut noticed');
    await settled([alice.client, bob]);
    assert.equal(bob.get('n1')?.content, 'log: one two');
    assert.deepEqual(bob.get('n1')?.tags, ['offline']);
    assert.equal(alice.client.get('n1')?.color, 'yellow');
    assert.deepEqual(alice.client.getAll(), bob.getAll());
  });

  test('two clients typing into one note at once end with the same text, holding every keystroke', async () => {
    const graphId = freshGraph();
    const alice = connect(graphId, 'alice');
    const bob = connect(graphId, 'bob');
    await waitFor(() => alice.client.status === 'live' && bob.client.status === 'live', 'both live');
    alice.client.update('n1', { target_type: 'ENTITY', target_id: 'e1', kind: 'note', content: '|' });
    await settled([alice.client, bob.client]);
    const typed = { alice: 'abcdefghij', bob: '0123456789' };
    for (let i = 0; i < 10; i += 1) {
      // Alice types at the end, Bob at the start, interleaved, without waiting.
      const aliceText = alice.client.get('n1')?.content ?? '';
      alice.client.textEdit('n1', 'content', [[...aliceText].length, typed.alice[i]]);
      bob.client.textEdit('n1', 'content', [typed.bob[i], [...(bob.client.get('n1')?.content ?? '')].length]);
      if (i === 4) bob.drop(); // and one of them loses the connection mid-way
    }
    await settled([alice.client, bob.client]);
    const final = alice.client.get('n1')?.content ?? '';
    assert.equal(bob.client.get('n1')?.content, final);
    assert.equal(final, '9876543210|abcdefghij');
  });

  test('random concurrent edits by three clients, with cuts, converge to the server state', async () => {
    const graphId = freshGraph();
    const people = ['alice', 'bob', 'carol'].map((user) => connect(graphId, user));
    const group = people.map((p) => p.client);
    await waitFor(() => group.every((c) => c.status === 'live'), 'all live');
    const random = seeded(Number(process.env.COLLAB_JS_SEED ?? 20251126));
    const pick = (/** @type {any[]} */ items) => items[Math.floor(random() * items.length)];
    const ids = ['a1', 'a2', 'n1'];
    group[0].update('n1', { target_type: 'ENTITY', target_id: 'e1', kind: 'note', content: 'start' });
    await settled(group);
    for (let step = 0; step < 150; step += 1) {
      const person = pick(people);
      const client = person.client;
      const id = pick(ids);
      const current = client.get(id);
      const roll = random();
      if (!current) {
        client.update(id, { target_type: 'ENTITY', target_id: 'e1', kind: 'tag' }, { recreate: client.isDeleted(id) });
      } else if (roll < 0.25 && typeof current.content === 'string') {
        const length = [...current.content].length;
        const at = Math.floor(random() * (length + 1));
        const ops = random() < 0.7 || length === at ? [at, pick(['x', 'yz', '✓']), length - at] : [at, -1, length - at - 1];
        client.textEdit(id, 'content', ops.filter((c) => c !== 0));
      } else if (roll < 0.45) {
        client.update(id, { color: pick(['red', 'green', 'blue']), confidence: pick(['LOW', 'HIGH']) });
      } else if (roll < 0.65) {
        client.addTags(id, [pick(['t1', 't2', 't3'])]);
      } else if (roll < 0.8) {
        client.removeTags(id, [pick(['t1', 't2', 't3'])]);
      } else if (roll < 0.85 && id !== 'n1') {
        client.deleteAnnotation(id);
      } else if (roll < 0.9) {
        person.drop();
      } else {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 5)));
      }
    }
    await settled(group);
    const fresh = connect(graphId, 'dave').client;
    await waitFor(() => fresh.status === 'live' && fresh.lastSeq === group[0].lastSeq, 'a fresh client at the same seq');
    const truth = fresh.getAll();
    for (const client of group) assert.deepEqual(client.getAll(), truth, `${client.user} matches the server`);
  });

  test('a server crash (kill -9) and restart: the client reconnects with since and resends', async () => {
    const graphId = freshGraph();
    const alice = connect(graphId, 'alice').client;
    await waitFor(() => alice.status === 'live', 'live');
    alice.update('a1', { target_type: 'EDGE', target_id: 'x1', kind: 'highlight', color: 'red' });
    await settled([alice]);
    const seq = alice.lastSeq;

    await server.kill();
    await waitFor(() => alice.status !== 'live', 'the client to notice the crash');
    alice.update('a1', { color: 'purple' });
    assert.equal(alice.get('a1')?.color, 'purple', 'shown at once while the server is down');
    await server.start();
    await settled([alice]);
    assert.ok((alice.lastSeq ?? 0) > (seq ?? 0));

    const late = connect(graphId, 'carol').client;
    await waitFor(() => late.get('a1')?.color === 'purple', 'a new client to see the resent write');
    assert.deepEqual(late.getAll(), alice.getAll());
  });
});

describe('the JS client against a server that keeps a short log', () => {
  /** @type {ServerProcess} */
  let trimming;
  before(async () => {
    trimming = await ServerProcess.start({ env: { COLLAB_LOG_RETENTION: '2', COLLAB_SNAPSHOT_EVERY: '4' } });
  });
  after(async () => {
    await trimming?.dispose();
  });

  test('back after the log was trimmed: initial_state, and unsent typing is rebased, not lost', async () => {
    const graphId = freshGraph();
    const alice = connect(graphId, 'alice', { on: trimming });
    const bob = connect(graphId, 'bob', { on: trimming }).client;
    await waitFor(() => alice.client.status === 'live' && bob.status === 'live', 'both live');
    alice.client.update('n1', { target_type: 'ENTITY', target_id: 'e1', kind: 'note', content: 'note' });
    await settled([alice.client, bob]);

    alice.network.blocked = true;
    alice.drop();
    await waitFor(() => alice.client.status !== 'live', 'alice offline');
    alice.client.textEdit('n1', 'content', [4, ' by alice']);
    alice.client.textEdit('n1', 'content', [13, '!']);
    for (let i = 0; i < 12; i += 1) {
      bob.textEdit('n1', 'content', ['b', [...(bob.get('n1')?.content ?? '')].length]);
      bob.update('n1', { color: `c${i}` });
    }
    await settled([bob]);

    /** @type {string[]} */
    const firstMessages = [];
    alice.client.on('snapshot', () => firstMessages.push('initial_state'));
    alice.network.blocked = false;
    alice.client.reconnectNow();
    await settled([alice.client, bob]);
    assert.deepEqual(firstMessages, ['initial_state'], 'the log no longer reached back to alice');
    assert.equal(bob.get('n1')?.content, 'bbbbbbbbbbbbnote by alice!');
    assert.deepEqual(alice.client.getAll(), bob.getAll());
  });
});

/**
 * A deterministic PRNG (mulberry32): the same random run every time.
 * @param {number} seed
 */
function seeded(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
