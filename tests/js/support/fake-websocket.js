// A fake WebSocket class (the browser API's shape, as the client uses it)
// whose instances the test plays the server through: open it, feed it
// frames, read what the client sent, close it with a code.

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 3;

/**
 * A fresh fake WebSocket class with its own list of sockets, so tests never
 * share state.
 */
export function createFakeWebSocket() {
  /** @type {FakeSocket[]} */
  const sockets = [];

  class FakeSocket {
    /** @param {string} url */
    constructor(url) {
      this.url = new URL(url);
      this.readyState = CONNECTING;
      /** @type {string[]} raw frames the client sent */
      this.frames = [];
      /** @type {{code?: number, reason?: string} | null} set when the client closed it */
      this.closedByClient = null;
      /** @type {((event: any) => void) | null} */ this.onopen = null;
      /** @type {((event: any) => void) | null} */ this.onmessage = null;
      /** @type {((event: any) => void) | null} */ this.onclose = null;
      /** @type {((event: any) => void) | null} */ this.onerror = null;
      sockets.push(this);
    }

    /** @param {string} data */
    send(data) {
      if (this.readyState !== OPEN) throw new Error('send on a socket that is not open');
      this.frames.push(data);
    }

    /**
     * @param {number} [code]
     * @param {string} [reason]
     */
    close(code, reason) {
      this.closedByClient = { code, reason };
      this.readyState = CLOSED;
    }

    // -- the test's (server's) side ---------------------------------------

    /** The query parameters the client connected with. */
    get params() {
      return Object.fromEntries(this.url.searchParams);
    }

    open() {
      this.readyState = OPEN;
      this.onopen?.({});
      return this;
    }

    /**
     * Deliver one frame: a message object or an array (a batch).
     * @param {unknown} message
     */
    receive(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
      return this;
    }

    /**
     * Open and send the first message: initial_state (no `since`) or an
     * empty catch_up.
     * @param {{seq?: number, data?: Record<string, any>, ops?: any[]}} [state]
     */
    hello({ seq = 0, data = {}, ops } = {}) {
      this.open();
      if (ops !== undefined || this.params.since !== undefined) {
        return this.receive({ type: 'catch_up', seq, ops: ops ?? [] });
      }
      return this.receive({ type: 'initial_state', seq, data });
    }

    /**
     * The server (or network) closes the socket.
     * @param {number} code
     * @param {string} [reason]
     */
    serverClose(code, reason = '') {
      this.readyState = CLOSED;
      this.onclose?.({ code, reason });
    }

    /** Every message the client sent, batches flattened, in order. */
    get sent() {
      return this.frames.flatMap((frame) => {
        const parsed = JSON.parse(frame);
        return Array.isArray(parsed) ? parsed : [parsed];
      });
    }

    /**
     * @param {string} type
     * @returns {any[]}
     */
    sentOfType(type) {
      return this.sent.filter((message) => message.type === type);
    }

    /** Sent writes (everything but ping and presence). */
    get writes() {
      return this.sent.filter((message) => !['ping', 'presence'].includes(message.type));
    }
  }

  return {
    /** The constructor to pass as options.WebSocket. */
    WebSocket: FakeSocket,
    sockets,
    /** The newest socket. */
    last() {
      const socket = sockets[sockets.length - 1];
      if (!socket) throw new Error('the client opened no socket');
      return socket;
    },
  };
}
