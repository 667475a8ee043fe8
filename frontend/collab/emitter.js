// A minimal typed event emitter shared by the client and the store.
//
// A listener that throws must not break the sync loop that emitted the
// event (the state is already updated), so errors are reported, not thrown.

/**
 * @template {Record<string, any[]>} Events name -> listener arguments
 */
export class Emitter {
  /** @type {Map<keyof Events, Set<(...args: any[]) => void>>} */
  #listeners = new Map();

  /**
   * Subscribe; returns the function that unsubscribes.
   * @template {keyof Events} K
   * @param {K} type
   * @param {(...args: Events[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    let set = this.#listeners.get(type);
    if (!set) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener);
    return () => this.off(type, listener);
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {(...args: Events[K]) => void} listener
   */
  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  /**
   * @template {keyof Events} K
   * @param {K} type
   * @param {Events[K]} args
   */
  emit(type, ...args) {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }
}

/** @param {unknown} error */
function reportListenerError(error) {
  // queueMicrotask rethrows outside the emitter: the page's error handlers
  // (and test runners) still see it, but the emitting code path completes.
  queueMicrotask(() => {
    throw error;
  });
}
