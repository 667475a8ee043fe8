// The real server (`intelgraph-collab serve`) as a child process on a free
// port with a throwaway SQLite file, for tests of the JS client against it.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BINARY = path.join(REPO, '.venv', 'bin', 'intelgraph-collab');

/** @returns {Promise<number>} a port nothing listens on (now) */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * @param {number} port
 * @param {number} timeoutMs
 * @param {() => string | null} exited a reason if the process died
 */
async function waitForPort(port, timeoutMs, exited) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reason = exited();
    if (reason) throw new Error(`server exited: ${reason}`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nothing listening on port ${port} after ${timeoutMs} ms`);
}

export class ServerProcess {
  /** @type {import('node:child_process').ChildProcess | null} */
  #child = null;
  #log = '';

  /**
   * @param {{port: number, dir: string, env?: Record<string, string>}} options
   */
  constructor({ port, dir, env = {} }) {
    this.port = port;
    this.dir = dir;
    this.db = path.join(dir, 'collab.db');
    this.env = env;
  }

  /** @param {{env?: Record<string, string>}} [options] */
  static async start(options = {}) {
    if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`make setup\` first`);
    const server = new ServerProcess({ port: await freePort(), dir: mkdtempSync(path.join(tmpdir(), 'collab-js-')), env: options.env });
    await server.start();
    return server;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What the server printed (for failure messages). */
  get log() {
    return this.#log;
  }

  async start() {
    const child = spawn(BINARY, ['serve', '--host', '127.0.0.1', '--port', String(this.port), '--db', this.db], {
      cwd: REPO,
      env: { ...process.env, COLLAB_LOG_LEVEL: 'warning', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    child.stdout?.on('data', (chunk) => (this.#log += chunk));
    child.stderr?.on('data', (chunk) => (this.#log += chunk));
    /** @type {string | null} */
    let exit = null;
    child.once('exit', (code, signal) => (exit = `code ${code} signal ${signal}\n${this.#log}`));
    await waitForPort(this.port, 20_000, () => exit);
  }

  /** SIGKILL, as a crash: nothing flushed, nothing said to clients. */
  async kill() {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Kill, and remove the database. */
  async dispose() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
