// Tests of TextFieldSync (frontend/collab/text-ot-client.js): its states one
// by one, the committed multi-client histories (written by the Python
// simulation, tests/vectors/text_ot_sim.py) replayed event by event against a
// JS server, and fresh seeded random histories checked for convergence and
// intent.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { TextFieldSync } from '../../frontend/collab/text-ot-client.js';
import {
  InvalidOpError,
  apply,
  check,
  codePointLength,
  compose,
  normalize,
  transformAgainst,
} from '../../frontend/collab/text-ot.js';

const HISTORIES = JSON.parse(
  readFileSync(new URL('../vectors/text_ot_histories.json', import.meta.url), 'utf8'),
).histories;

describe('TextFieldSync states', () => {
  test('a local edit is sent at once, the next is buffered, the ack releases it', () => {
    const sync = new TextFieldSync('ab', 5);
    assert.equal(sync.state, 'synchronized');
    assert.deepEqual(sync.localEdit([2, 'c']), { base: 5, ops: [2, 'c'] });
    assert.equal(sync.state, 'awaiting');
    assert.equal(sync.localEdit([3, 'd']), null);
    assert.equal(sync.localEdit([4, 'e']), null);
    assert.equal(sync.state, 'awaiting_with_buffer');
    assert.equal(sync.text, 'abcde');
    assert.deepEqual(sync.serverAck(9), { base: 9, ops: [3, 'de'] });
    assert.equal(sync.revision, 9);
    assert.equal(sync.state, 'awaiting');
    assert.equal(sync.serverAck(12), null);
    assert.equal(sync.state, 'synchronized');
    assert.equal(sync.revision, 12);
  });

  test('a remote insert at the same position goes left of ours: it was sequenced first', () => {
    const sync = new TextFieldSync('', 0);
    sync.localEdit(['x']);
    sync.localEdit([1, 'z']);
    const applied = sync.serverOp(['y'], 1);
    assert.deepEqual(applied, ['y', 2]);
    assert.equal(sync.text, 'yxz');
    assert.deepEqual(sync.serverAck(2), { base: 2, ops: [2, 'z'] });
  });

  test('a remote op is transformed past the in-flight op and the buffer', () => {
    const sync = new TextFieldSync('hello', 3);
    sync.localEdit([-1, 4]); // in flight: delete "h"
    sync.localEdit([4, '!']); // buffered: "ello!"
    const applied = sync.serverOp([5, ' world'], 4); // remote append, sequenced first
    assert.equal(sync.text, 'ello world!');
    assert.deepEqual(applied, [4, ' world', 1]);
    assert.equal(sync.revision, 4);
  });

  test('positions are code points: emoji are one character', () => {
    const sync = new TextFieldSync('\u{1F600}\u{1F600}', 0);
    sync.localEdit([1, '\u{1F389}', 1]);
    sync.serverOp([2, '\u2728'], 1);
    assert.equal(sync.text, '\u{1F600}\u{1F389}\u{1F600}\u2728');
  });

  test('inFlight is the op exactly as first sent; pendingOp follows the server text', () => {
    const sync = new TextFieldSync('ab', 2);
    const sent = sync.localEdit([2, 'c']);
    assert.deepEqual(sync.pendingOp(), [2, 'c']);
    sync.serverOp(['x', 2], 3);
    assert.deepEqual(sync.inFlight(), sent);
    assert.deepEqual(sync.pendingOp(), [3, 'c']); // applies to the server text 'xab'
    assert.equal(apply('xab', sync.pendingOp()), sync.text);
    sync.serverAck(4);
    assert.equal(sync.pendingOp(), null);
  });

  test('a duplicate ack (after a resend) and a stale broadcast are ignored', () => {
    const sync = new TextFieldSync('', 0);
    sync.localEdit(['a']);
    sync.localEdit([1, 'b']);
    assert.deepEqual(sync.serverAck(4), { base: 4, ops: [1, 'b'] }); // seen in a catch_up
    assert.equal(sync.serverAck(4), null); // the resend's duplicate ack
    assert.equal(sync.state, 'awaiting');
    assert.equal(sync.serverOp(['zz', 2], 3), null); // older than the revision
    assert.equal(sync.text, 'ab');
  });

  test('an edit that does not fit changes nothing; a no-op is not sent', () => {
    const sync = new TextFieldSync('abc', 1);
    assert.throws(() => sync.localEdit([2, 'x']), InvalidOpError);
    assert.throws(() => sync.localEdit([0]), InvalidOpError);
    assert.equal(sync.localEdit([3]), null);
    assert.equal(sync.state, 'synchronized');
    sync.localEdit([3, 'd']);
    assert.throws(() => sync.serverOp([9], 2), InvalidOpError);
    assert.equal(sync.text, 'abcd');
    assert.equal(sync.revision, 1);
  });

  test('reset drops in-flight and buffered edits', () => {
    const sync = new TextFieldSync('a', 1);
    sync.localEdit([1, 'b']);
    sync.localEdit([2, 'c']);
    sync.reset('server', 10);
    assert.equal(sync.text, 'server');
    assert.equal(sync.state, 'synchronized');
    assert.equal(sync.inFlight(), null);
    assert.equal(sync.serverAck(11), null);
    assert.deepEqual(sync.localEdit([6, '!']), { base: 10, ops: [6, '!'] });
  });
});

// -- simulated server and clients: a line-by-line twin of text_ot_sim.py ----

class Server {
  constructor(text) {
    this.text = text;
    this.seq = 0;
    /** @type {Array<{seq: number, client: number|null, opId: string|null, ops: any[]|null}>} */
    this.log = [];
    this.seen = new Map();
    /** the text after each seq */
    this.texts = [text];
  }

  /** PROTOCOL.md: dedupe by (client_id, op_id), transform since base, apply. */
  receive(client, opId, base, ops) {
    const known = this.seen.get(`${client}/${opId}`);
    if (known !== undefined) return { entry: this.log[known - 1], duplicate: true };
    const history = this.log.filter((e) => e.seq > base && e.ops !== null).map((e) => e.ops);
    const op = transformAgainst(check(ops), history);
    this.text = apply(this.text, op);
    const entry = this.append(client, opId, op);
    this.seen.set(`${client}/${opId}`, entry.seq);
    return { entry, duplicate: false };
  }

  otherWrite() {
    return this.append(null, null, null);
  }

  append(client, opId, ops) {
    this.seq += 1;
    const entry = { seq: this.seq, client, opId, ops };
    this.log.push(entry);
    this.texts.push(this.text);
    return entry;
  }

  since(seq) {
    return this.log.slice(seq);
  }
}

/** A client and the slice of delta-sync.js that drives its TextFieldSync. */
class SimClient {
  constructor(index, text) {
    this.index = index;
    this.sync = new TextFieldSync(text, 0);
    this.connected = true;
    this.lastSeq = 0;
    this.up = [];
    this.down = [];
    this.inFlightOpId = null;
    this.nextOpId = 0;
    this.snapshots = [];
  }

  send(outgoing) {
    if (outgoing === null) return;
    this.nextOpId += 1;
    this.inFlightOpId = String(this.nextOpId);
    if (this.connected) this.up.push({ opId: this.inFlightOpId, base: outgoing.base, ops: outgoing.ops });
  }
}

class Simulation {
  constructor(initial, clients) {
    this.server = new Server(initial);
    this.clients = Array.from({ length: clients }, (_, i) => new SimClient(i, initial));
    this.inserted = new Set(initial);
    this.deleted = new Set();
  }

  run(event) {
    this.step(event);
    // After every event: local text = server text at the revision + the
    // in-flight op as transformed (pendingOp) + the buffer.
    for (const client of this.clients) {
      const { sync } = client;
      const known = this.server.texts[sync.revision];
      const pending = sync.pendingOp();
      const afterPending = pending === null ? known : apply(known, pending);
      if (sync.state !== 'awaiting_with_buffer') {
        assert.equal(afterPending, sync.text, `client ${client.index}: pendingOp out of step`);
      }
    }
  }

  step(event) {
    if (event.type === 'other') return this.broadcast(this.server.otherWrite(), null);
    const client = this.clients[event.client];
    switch (event.type) {
      case 'edit':
        return this.edit(client, event.ops);
      case 'up':
        return this.deliverUp(client);
      case 'down':
        return this.deliverDown(client);
      case 'drop':
        for (let i = 0; i < event.arrive; i++) this.deliverUp(client);
        client.up = [];
        client.down = [];
        client.connected = false;
        return undefined;
      case 'connect': {
        client.connected = true;
        // The server's first message; the client resends at once, without
        // waiting for it, so the resend may come back as a duplicate ack.
        client.down.push({ kind: 'catch_up', items: this.server.since(client.lastSeq) });
        const sent = client.sync.inFlight();
        if (sent !== null) client.up.push({ opId: client.inFlightOpId, base: sent.base, ops: sent.ops });
        return undefined;
      }
      default:
        throw new Error(`unknown event ${event.type}`);
    }
  }

  edit(client, ops) {
    const before = Array.from(client.sync.text);
    let position = 0;
    for (const c of normalize(ops)) {
      if (typeof c === 'string') for (const ch of c) this.inserted.add(ch);
      else if (c > 0) position += c;
      else {
        for (const ch of before.slice(position, position - c)) this.deleted.add(ch);
        position -= c;
      }
    }
    client.send(client.sync.localEdit(ops));
    client.snapshots.push(client.sync.text);
  }

  deliverUp(client) {
    const message = client.up.shift();
    assert.ok(message, `client ${client.index} has nothing to send`);
    const { entry, duplicate } = this.server.receive(client.index, message.opId, message.base, message.ops);
    if (client.connected) client.down.push({ kind: 'ack', seq: entry.seq });
    if (!duplicate) this.broadcast(entry, client.index);
  }

  broadcast(entry, writer) {
    for (const other of this.clients) {
      if (other.index !== writer && other.connected) other.down.push({ kind: 'entry', entry });
    }
  }

  deliverDown(client) {
    const message = client.down.shift();
    assert.ok(message, `client ${client.index} has nothing to receive`);
    if (message.kind === 'ack') {
      // Passed on even when a duplicate: TextFieldSync must ignore it.
      client.send(client.sync.serverAck(message.seq));
      client.lastSeq = Math.max(client.lastSeq, message.seq);
    } else if (message.kind === 'catch_up') {
      for (const entry of message.items) this.applyEntry(client, entry);
    } else {
      this.applyEntry(client, message.entry);
    }
  }

  applyEntry(client, entry) {
    if (entry.ops !== null) {
      if (entry.client === client.index) {
        // Our own write in a catch_up stands for its ack.
        assert.equal(entry.opId, client.inFlightOpId, 'own op in catch_up is not in flight');
        client.send(client.sync.serverAck(entry.seq));
      } else {
        client.sync.serverOp(entry.ops, entry.seq);
      }
    }
    client.lastSeq = entry.seq;
  }

  lastTextSeq() {
    return this.server.log.filter((e) => e.ops !== null).reduce((_, e) => e.seq, 0);
  }
}

function assertConverged(sim, label) {
  const final = sim.server.text;
  for (const client of sim.clients) {
    assert.equal(client.sync.text, final, `${label}: client ${client.index} diverged`);
    assert.equal(client.sync.state, 'synchronized', `${label}: client ${client.index} has edits left`);
    assert.equal(client.sync.revision, sim.lastTextSeq(), `${label}: client ${client.index} revision`);
  }
  const chars = Array.from(final);
  assert.equal(new Set(chars).size, chars.length, `${label}: a character is present twice`);
  const expected = [...sim.inserted].filter((ch) => !sim.deleted.has(ch)).sort();
  assert.deepEqual([...chars].sort(), expected, `${label}: an insert was lost or a delete missed`);
  const order = new Map(chars.map((ch, i) => [ch, i]));
  for (const client of sim.clients) {
    for (const snapshot of client.snapshots) {
      const kept = Array.from(snapshot).filter((ch) => order.has(ch)).map((ch) => order.get(ch));
      assert.deepEqual(kept, [...kept].sort((x, y) => x - y), `${label}: characters changed order`);
    }
  }
}

describe('committed histories (Python simulation) replayed through TextFieldSync', () => {
  test(`${HISTORIES.length} histories end as the Python server did`, () => {
    assert.ok(HISTORIES.length >= 100);
    for (const history of HISTORIES) {
      const label = `history seed ${history.seed}`;
      assert.ok(history.clients >= 3 && history.clients <= 5, label);
      const sim = new Simulation(history.initial, history.clients);
      for (const event of history.events) sim.run(event);
      assert.equal(sim.server.text, history.final_text, label);
      assert.equal(sim.server.seq, history.final_seq, label);
      assert.deepEqual(
        sim.server.log.filter((e) => e.ops !== null).map((e) => [e.seq, e.ops]),
        history.server_log,
        label,
      );
      assertConverged(sim, label);
    }
  });
});

// -- fresh random histories, generated here ---------------------------------

function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Unique characters: astral (two UTF-16 units), CJK, Latin Extended. */
function tagger() {
  let count = 0;
  const starts = [0x1f300, 0x4e00, 0x0100];
  return (n) => {
    let out = '';
    for (let i = 0; i < n; i++, count++) out += String.fromCodePoint(starts[count % 3] + count);
    return out;
  };
}

function randomEdit(random, text, tag) {
  const length = codePointLength(text);
  const position = Math.floor(random() * (length + 1));
  const deleted = Math.min(Math.floor(random() * 4), length - position);
  const inserted = tag(deleted ? Math.floor(random() * 3) : 1 + Math.floor(random() * 3));
  return normalize([position, inserted, -deleted, length - position - deleted]);
}

function randomHistory(seed) {
  const random = prng(seed);
  const pick = (items) => items[Math.floor(random() * items.length)];
  const tag = tagger();
  const sim = new Simulation(tag(pick([0, 3, 8])), 3 + Math.floor(random() * 3));
  const steps = 15 + Math.floor(random() * 50);
  for (let step = 0; step < steps; step++) {
    const moves = [];
    for (const c of sim.clients) {
      moves.push(() => {
        let op = randomEdit(random, c.sync.text, tag);
        // Sometimes two edits in one op, as a fast typist's coalesced input.
        if (random() < 0.25) op = compose(op, randomEdit(random, apply(c.sync.text, op), tag));
        return { type: 'edit', client: c.index, ops: op };
      });
      if (!c.connected) {
        moves.push(() => ({ type: 'connect', client: c.index }));
        continue;
      }
      if (c.up.length) moves.push(() => ({ type: 'up', client: c.index }), () => ({ type: 'up', client: c.index }));
      if (c.down.length) moves.push(() => ({ type: 'down', client: c.index }), () => ({ type: 'down', client: c.index }));
      if (random() < 0.1) {
        moves.push(() => ({ type: 'drop', client: c.index, arrive: Math.floor(random() * (c.up.length + 1)) }));
      }
    }
    if (random() < 0.1) moves.push(() => ({ type: 'other' }));
    sim.run(pick(moves)());
  }
  for (const c of sim.clients) if (!c.connected) sim.run({ type: 'connect', client: c.index });
  for (;;) {
    const moves = sim.clients.flatMap((c) => [
      ...(c.up.length ? [{ type: 'up', client: c.index }] : []),
      ...(c.down.length ? [{ type: 'down', client: c.index }] : []),
    ]);
    if (!moves.length) break;
    sim.run(pick(moves));
  }
  return sim;
}

describe('fresh seeded random histories', () => {
  test('300 histories of 3-5 clients converge and keep every intent', () => {
    for (let seed = 1; seed <= 300; seed++) assertConverged(randomHistory(seed), `js seed ${seed}`);
  });
});
