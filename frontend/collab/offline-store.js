// What a tab keeps in Web Storage so that nothing the analyst did is lost to
// a reload, a crash or a closed tab: its client_id, and one record per
// (graph, client_id) holding the server state it last knew (with its seq),
// its pending writes and its unconfirmed text edits.
//
// The record is written whole, as one value, so it is always a consistent
// snapshot: pending writes relative to that exact server state and seq.
// After a reload the client shows the record at once (even offline),
// reconnects with `since` = its seq, and resends the pending writes with
// their original op_ids: the server's (client_id, op_id) dedupe makes that
// safe, which is why the client_id must come back with them.
//
// client_id: kept in sessionStorage (per tab, survives reloads). A lease in
// localStorage says which page instance uses it, so that
// - a duplicated tab (which copies sessionStorage) notices the original is
//   alive and takes a new client_id instead of sharing one;
// - a new tab adopts the record of a closed tab whose lease ran out, with
//   its pending writes (sent under that tab's client_id: dedupe still works).

/**
 * @typedef {Pick<Storage, 'getItem' | 'setItem' | 'removeItem' | 'key'> & {readonly length: number}} StorageLike
 * @typedef {import('./text-field.js').TextFieldRecord} TextFieldRecord
 * @typedef {{opId: string, type: 'annotation_update', id: string, payload: Record<string, any>, recreate?: boolean, sent?: boolean}
 *   | {opId: string, type: 'annotation_delete', id: string, sent?: boolean}
 *   | {opId: string, type: 'text_op', id: string, field: string, base: number, ops: import('./text-ot.js').Op, sent?: boolean}} PendingWrite
 *   sent: it went out at least once (the server may know its op_id)
 * @typedef {{v: 1, clientId: string, savedAt: number, lastSeq: number | null,
 *   server: Record<string, import('./annotation-state.js').Annotation>, tombstones: string[],
 *   pending: PendingWrite[], texts: TextFieldRecord[]}} PersistedRecord
 * @typedef {{instance: string, at: number, released?: boolean}} Lease
 */

const PREFIX = 'intelgraph-collab:v1:';

/**
 * A Storage held in memory: the default where Web Storage does not exist
 * (Node), and the fake used by tests (pass the same one to a new client to
 * simulate a reload).
 * @returns {StorageLike}
 */
export function memoryStorage() {
  /** @type {Map<string, string>} */
  const items = new Map();
  return {
    get length() {
      return items.size;
    },
    key: (index) => [...items.keys()][index] ?? null,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  };
}

/**
 * @param {number} length
 * @param {() => number} random
 * @returns {string}
 */
export function randomId(length, random) {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet[Math.floor(random() * alphabet.length)];
  return out;
}

export class OfflineStore {
  #graphId;
  #storage;
  #session;
  #now;
  #random;
  #leaseTtl;
  /** @type {string | null} */
  #clientId = null;

  /**
   * @param {{graphId: string, storage: StorageLike, sessionStorage: StorageLike,
   *   instance: string, now?: () => number, random?: () => number, leaseTtl?: number}} options
   *   instance: unique per page load (a fresh random id); leaseTtl: ms after
   *   which an unrenewed lease counts as abandoned.
   */
  constructor({ graphId, storage, sessionStorage, instance, now = Date.now, random = Math.random, leaseTtl = 60_000 }) {
    this.#graphId = graphId;
    this.#storage = storage;
    this.#session = sessionStorage;
    this.instance = instance;
    this.#now = now;
    this.#random = random;
    this.#leaseTtl = leaseTtl;
  }

  /** Renew the lease at least this often (ms). */
  get leaseRenewInterval() {
    return Math.floor(this.#leaseTtl / 3);
  }

  /**
   * Decide this tab's client_id and take its lease.
   * @param {string} [explicit] a client_id chosen by the caller: used as is
   * @returns {string}
   */
  claimClientId(explicit) {
    const sessionKey = `${PREFIX}client:${this.#graphId}`;
    let clientId = explicit ?? this.#read(this.#session, sessionKey);
    if (!explicit && clientId && this.#leaseHeldByOther(clientId)) clientId = null;
    if (!clientId) clientId = this.#adoptOrphan() ?? `c-${randomId(16, this.#random)}`;
    if (!explicit) this.#write(this.#session, sessionKey, clientId);
    this.#clientId = clientId;
    this.renewLease();
    return clientId;
  }

  /** @returns {PersistedRecord | null} */
  load() {
    if (!this.#clientId) return null;
    return parseRecord(this.#read(this.#storage, this.#stateKey(this.#clientId)));
  }

  /**
   * Write the record; false when storage refused it (quota, private mode).
   * @param {Omit<PersistedRecord, 'v' | 'clientId' | 'savedAt'>} state
   * @returns {boolean}
   */
  save(state) {
    if (!this.#clientId) return false;
    const record = { v: 1, clientId: this.#clientId, savedAt: this.#now(), ...state };
    return this.#write(this.#storage, this.#stateKey(this.#clientId), JSON.stringify(record));
  }

  renewLease() {
    if (!this.#clientId) return;
    /** @type {Lease} */
    const lease = { instance: this.instance, at: this.#now() };
    this.#write(this.#storage, this.#leaseKey(this.#clientId), JSON.stringify(lease));
  }

  /** The page is going away (or into the back/forward cache): free the client_id. */
  releaseLease() {
    if (!this.#clientId) return;
    /** @type {Lease} */
    const lease = { instance: this.instance, at: this.#now(), released: true };
    this.#write(this.#storage, this.#leaseKey(this.#clientId), JSON.stringify(lease));
  }

  /** @param {string} clientId */
  #leaseHeldByOther(clientId) {
    const lease = /** @type {Lease | null} */ (parseJson(this.#read(this.#storage, this.#leaseKey(clientId))));
    if (!lease || lease.released || lease.instance === this.instance) return false;
    return this.#now() - lease.at < this.#leaseTtl;
  }

  /**
   * The client_id of an abandoned record of this graph: one with unsent work
   * first, else the newest (its server state spares a full download). Other
   * abandoned records without unsent work are removed, so storage holds
   * about one record per open tab.
   * @returns {string | null}
   */
  #adoptOrphan() {
    const prefix = `${PREFIX}state:${this.#graphId}:`;
    /** @type {Array<{clientId: string, record: PersistedRecord}>} */
    const orphans = [];
    for (const key of this.#keys()) {
      if (!key.startsWith(prefix)) continue;
      const clientId = key.slice(prefix.length);
      if (this.#leaseHeldByOther(clientId)) continue;
      const record = parseRecord(this.#read(this.#storage, key));
      if (record) orphans.push({ clientId, record });
      else this.#remove(clientId);
    }
    if (orphans.length === 0) return null;
    const hasWork = (/** @type {PersistedRecord} */ r) => r.pending.length > 0 || r.texts.length > 0;
    orphans.sort(
      (a, b) => Number(hasWork(b.record)) - Number(hasWork(a.record)) || b.record.savedAt - a.record.savedAt,
    );
    const [chosen, ...rest] = orphans;
    for (const { clientId, record } of rest) if (!hasWork(record)) this.#remove(clientId);
    return chosen.clientId;
  }

  /** @param {string} clientId */
  #remove(clientId) {
    try {
      this.#storage.removeItem(this.#stateKey(clientId));
      this.#storage.removeItem(this.#leaseKey(clientId));
    } catch {
      // Storage unavailable: nothing to clean.
    }
  }

  /** @returns {string[]} */
  #keys() {
    /** @type {string[]} */
    const keys = [];
    try {
      for (let i = 0; i < this.#storage.length; i += 1) {
        const key = this.#storage.key(i);
        if (key !== null) keys.push(key);
      }
    } catch {
      // Storage unavailable: no orphans to find.
    }
    return keys;
  }

  /** @param {string} clientId */
  #stateKey(clientId) {
    return `${PREFIX}state:${this.#graphId}:${clientId}`;
  }

  /** @param {string} clientId */
  #leaseKey(clientId) {
    return `${PREFIX}lease:${this.#graphId}:${clientId}`;
  }

  /**
   * @param {StorageLike} storage
   * @param {string} key
   * @returns {string | null}
   */
  #read(storage, key) {
    try {
      return storage.getItem(key);
    } catch {
      return null;
    }
  }

  /**
   * @param {StorageLike} storage
   * @param {string} key
   * @param {string} value
   * @returns {boolean}
   */
  #write(storage, key, value) {
    try {
      storage.setItem(key, value);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * @param {string | null} text
 * @returns {unknown}
 */
function parseJson(text) {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * @param {string | null} text
 * @returns {PersistedRecord | null}
 */
function parseRecord(text) {
  const record = /** @type {PersistedRecord | null} */ (parseJson(text));
  if (!record || record.v !== 1 || !Array.isArray(record.pending) || !Array.isArray(record.texts)) return null;
  return record;
}
