// The few browser globals the client listens to (online/offline,
// visibilitychange, pagehide/pageshow), as a controllable fake.

export function createWindow() {
  /** @type {Map<string, Set<() => void>>} */
  const listeners = new Map();
  const env = {
    navigator: { onLine: true },
    document: { visibilityState: 'visible' },
    /** @param {string} type @param {() => void} fn */
    addEventListener(type, fn) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type)?.add(fn);
    },
    /** @param {string} type @param {() => void} fn */
    removeEventListener(type, fn) {
      listeners.get(type)?.delete(fn);
    },
    /** @param {string} type */
    dispatch(type) {
      for (const fn of [...(listeners.get(type) ?? [])]) fn();
    },
    goOffline() {
      env.navigator.onLine = false;
      env.dispatch('offline');
    },
    goOnline() {
      env.navigator.onLine = true;
      env.dispatch('online');
    },
    /** @param {'visible' | 'hidden'} state */
    setVisibility(state) {
      env.document.visibilityState = state;
      env.dispatch('visibilitychange');
    },
  };
  return env;
}
