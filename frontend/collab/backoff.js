// Reconnect delays: exponential backoff with "full jitter" (AWS Architecture
// Blog, "Exponential Backoff And Jitter"): the delay is uniform in
// [0, min(cap, base * 2^attempt)). Full jitter spreads a crowd of clients
// that lost the same server over the whole window, so they do not come back
// in synchronized waves when it restarts.

export class Backoff {
  #base;
  #cap;
  #random;
  #attempt = 0;

  /**
   * @param {{base?: number, cap?: number, random?: () => number}} [options]
   *   base: ms of the first window; cap: the largest window (ms);
   *   random: uniform in [0, 1), injectable for tests.
   */
  constructor({ base = 500, cap = 30_000, random = Math.random } = {}) {
    this.#base = base;
    this.#cap = cap;
    this.#random = random;
  }

  /** Failed attempts since the last success. */
  get attempt() {
    return this.#attempt;
  }

  /** The upper bound of the next delay's window (ms). */
  get window() {
    // 2 ** 30 already exceeds any sane cap; bounding the exponent keeps it finite.
    return Math.min(this.#cap, this.#base * 2 ** Math.min(this.#attempt, 30));
  }

  /**
   * The delay before the next attempt (ms); counts the attempt.
   * @returns {number}
   */
  next() {
    const delay = this.#random() * this.window;
    this.#attempt += 1;
    return delay;
  }

  /** A connection succeeded: the next failure starts from the base again. */
  reset() {
    this.#attempt = 0;
  }
}
