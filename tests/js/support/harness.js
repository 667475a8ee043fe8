// One CollaborationClient wired to fakes: a fake WebSocket class, a fake
// clock, a fake window and in-memory Web Storage. `reload()` makes a new
// client on the same storages, as a page reload does.

import { CollaborationClient } from '../../../frontend/collab/delta-sync.js';
import { memoryStorage } from '../../../frontend/collab/offline-store.js';
import { createClock } from './fake-clock.js';
import { createFakeWebSocket } from './fake-websocket.js';
import { createWindow } from './fake-window.js';

/**
 * @param {{graphId?: string, options?: Record<string, any>, storage?: any, sessionStorage?: any,
 *   clock?: ReturnType<typeof createClock>, env?: ReturnType<typeof createWindow>}} [setup]
 */
export function harness(setup = {}) {
  const clock = setup.clock ?? createClock();
  const fake = createFakeWebSocket();
  const env = setup.env ?? createWindow();
  const storage = setup.storage ?? memoryStorage();
  const sessionStorage = setup.sessionStorage ?? memoryStorage();
  /** @type {Array<[any, boolean]>} */
  const updates = [];
  /** @type {Record<string, any[]>} */
  const events = { status: [], annotation: [], presence: [], error: [], latency: [], snapshot: [], pending: [] };
  const graphId = setup.graphId ?? 'g1';

  function create() {
    const client = new CollaborationClient(graphId, (data, isInitial) => updates.push([data, isInitial]), {
      url: 'http://collab.test',
      user: 'alice',
      WebSocket: fake.WebSocket,
      timers: clock,
      now: clock.now,
      random: seededRandom(),
      env,
      autoConnect: false,
      storage,
      sessionStorage,
      ...setup.options,
    });
    for (const type of Object.keys(events)) client.on(/** @type {any} */ (type), (event) => events[type].push(event));
    if (setup.options?.autoConnect !== false) client.connect();
    return client;
  }

  const h = {
    clock,
    fake,
    env,
    storage,
    sessionStorage,
    updates,
    events,
    client: create(),
    get socket() {
      return fake.last();
    },
    /** Close this client and start a new one on the same storages (a page reload). */
    reload() {
      env.dispatch('pagehide');
      h.client.close();
      h.client = create();
      return h.client;
    },
  };
  return h;
}

/**
 * A broadcast of someone else's annotation_update.
 * @param {number} seq
 * @param {Record<string, any>} payload
 * @param {Record<string, any>} [extra]
 */
export function remoteUpdate(seq, payload, extra = {}) {
  return { type: 'annotation_update', seq, prev: seq - 1, op_id: `r${seq}`, client_id: 'other', author: 'bob', ts: 1, payload, ...extra };
}

/**
 * @param {number} seq
 * @param {string} id
 * @param {string} field
 * @param {any[]} ops
 */
export function remoteText(seq, id, field, ops) {
  return { type: 'text_op', seq, prev: seq - 1, op_id: `r${seq}`, client_id: 'other', author: 'bob', ts: 1, id, field, base: seq - 1, ops };
}

let seed = 1;

/** A deterministic PRNG (mulberry32), a new stream per client. */
function seededRandom() {
  let state = (seed++ * 0x9e3779b9) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
