// Fake timers and clock: the client takes `timers` and `now` as options, so
// tests drive time explicitly (backoff schedules, heartbeat deadlines)
// instead of sleeping.

/**
 * @returns {{now: () => number, setTimeout: (fn: () => void, ms: number) => number,
 *   clearTimeout: (id: number) => void, advance: (ms: number) => void, pending: () => number[]}}
 */
export function createClock(start = 1_700_000_000_000) {
  let now = start;
  let nextId = 1;
  /** @type {Map<number, {at: number, fn: () => void, order: number}>} */
  const timers = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + Math.max(0, ms), fn, order: id });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    /** Run every timer due within `ms`, in time order, advancing the clock to each. */
    advance(ms) {
      const target = now + ms;
      for (;;) {
        let next = null;
        let nextKey = -1;
        for (const [key, timer] of timers) {
          if (timer.at <= target && (next === null || timer.at < next.at || (timer.at === next.at && timer.order < next.order))) {
            next = timer;
            nextKey = key;
          }
        }
        if (next === null) break;
        timers.delete(nextKey);
        now = next.at;
        next.fn();
      }
      now = target;
    },
    /** Due times (ms from now) of the timers still waiting, sorted. */
    pending() {
      return [...timers.values()].map((timer) => timer.at - now).sort((a, b) => a - b);
    },
  };
}

/**
 * A random source replaying `values` (then repeating the last one).
 * @param {number[]} values
 */
export function randomFrom(values) {
  let index = 0;
  return () => values[Math.min(index++, values.length - 1)];
}
