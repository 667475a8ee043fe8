// The demo page: one investigation graph, annotated live by everyone who
// opens the same /graphs/{graph_id}. Wires the store (sync) to the views.
//
// URL: /graphs/{graph_id} (default graph "demo" at /), ?user=NAME (else a
// name kept for this tab), ?token=JWT when the server has auth on.

import { AnnotationStore } from '/frontend/collab/annotation-client.js';

import { describeChange } from './activity.js';
import { TITLE, describeTarget } from './demo-graph.js';
import { GraphView } from './graph-view.js';
import { Panel } from './panel.js';
import { colorFor, parseTargetKey, targetKey } from './targets.js';

/** @typedef {import('./targets.js').Target} Target */

const STATUS_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Offline',
  resyncing: 'Resyncing…',
  closed: 'Disconnected',
};

const graphId = graphIdOf(location.pathname);
const params = new URLSearchParams(location.search);
const user = params.get('user') || tabUserName();
const store = AnnotationStore.connect(graphId, { user, token: params.get('token') || undefined });
const client = store.client;
/** @type {Record<string, any>} this user's presence state */
const me = { name: user, color: colorFor(user) };
store.setPresence(me);

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
$('graph-id').textContent = graphId;
$('case-title').textContent = TITLE;
document.title = `${TITLE} · ${graphId} · IntelGraph Collab`;

const panel = new Panel($('panel'), store);
const graph = new GraphView($('graph'), select);
/** @type {Target | null} */
let selected = null;

/** @param {Target | null} target */
function select(target) {
  selected = target;
  graph.select(target);
  panel.show(target);
  store.select(target ? [targetKey(target)] : []);
}

// -- the graph shows what the annotations say --------------------------------

/** @param {Target} target */
function decorate(target) {
  const annotations = store.byTarget(target.type, target.id);
  const tags = [...new Set(annotations.flatMap((a) => (Array.isArray(a.tags) ? a.tags : [])))].sort();
  const color = annotations.find((a) => a.kind === 'highlight' && a.color)?.color ?? null;
  const confidence = annotations.find((a) => a.kind === 'tag' && a.confidence)?.confidence ?? null;
  graph.decorate(target, { tags, color, confidence });
}

function decorateAll() {
  for (const element of graph.cy.elements()) decorate({ type: element.isNode() ? 'ENTITY' : 'EDGE', id: element.id() });
}

store.on('reset', decorateAll);
store.on('change', (change) => {
  for (const annotation of [change.previous, change.annotation]) {
    if (annotation?.target_type && annotation.target_id) decorate({ type: annotation.target_type, id: annotation.target_id });
  }
  if (change.origin === 'remote') noteActivity(change);
});
decorateAll();

// -- who is here ----------------------------------------------------------------

function renderPeople() {
  const people = $('people');
  const entries = [{ user, state: me, self: true }, ...store.presence.map((p) => ({ ...p, self: false }))];
  people.replaceChildren(
    ...entries.map((entry) => {
      const name = entry.state.name ?? entry.user ?? 'someone';
      const chip = document.createElement('span');
      chip.className = 'person';
      chip.style.setProperty('--person', entry.state.color ?? colorFor(name));
      /** @type {Target[]} */
      const selection = Array.isArray(entry.state.selection)
        ? entry.state.selection.map(parseTargetKey).filter((t) => t !== null)
        : [];
      const looking = selection.length ? ` → ${selection.map((t) => describeTarget(t.type, t.id)).join(', ')}` : '';
      chip.textContent = `${entry.self ? `${name} (you)` : name}${entry.self ? '' : looking}`;
      chip.title = entry.self ? 'You. Open with ?user=NAME to choose your name.' : `${name}${looking}`;
      return chip;
    }),
  );
  /** @type {Map<string, string>} */
  const marks = new Map();
  for (const entry of store.presence) {
    for (const key of Array.isArray(entry.state.selection) ? entry.state.selection : []) {
      const target = parseTargetKey(key);
      if (target) marks.set(target.id, entry.state.color ?? colorFor(entry.user ?? ''));
    }
  }
  graph.showRemoteSelections(marks);
}
store.on('presence', renderPeople);
renderPeople();

// -- activity feed -------------------------------------------------------------------

/** @param {import('/frontend/collab/delta-sync.js').AnnotationChange} change */
function noteActivity(change) {
  const annotation = change.annotation ?? change.previous;
  if (annotation?.target_type && annotation.target_id) graph.flash({ type: annotation.target_type, id: annotation.target_id });
  const text = describeChange(change);
  if (!text) return;
  const list = $('activity-list');
  const last = /** @type {HTMLElement | null} */ (list.firstElementChild);
  const line = `${change.author ?? 'someone'} ${text}`;
  // Typing arrives keystroke by keystroke: one line per burst, not per key.
  if (last && last.dataset.line === line) {
    last.dataset.count = String(Number(last.dataset.count ?? '1') + 1);
    return;
  }
  const item = document.createElement('li');
  item.dataset.line = line;
  const who = document.createElement('strong');
  who.textContent = change.author ?? 'someone';
  who.style.color = colorFor(change.author ?? '');
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  item.append(who, ` ${text} `, time);
  list.prepend(item);
  while (list.children.length > 40) list.lastElementChild?.remove();
}

store.on('error', (error) => {
  const list = $('activity-list');
  const item = document.createElement('li');
  item.className = 'error';
  item.textContent = `Refused (${error.code}): ${error.message}`;
  list.prepend(item);
});

// -- connection status, latency, unsent edits --------------------------------------

function renderStatus() {
  const status = $('status');
  status.dataset.status = client.status;
  const pending = client.pendingCount;
  status.textContent = `${STATUS_TEXT[client.status]}${pending ? ` · ${pending} unsent` : ''}`;
  status.title = client.status === 'closed' ? 'Access refused or connection closed: reload to retry' : `client ${client.clientId}`;
}
store.on('status', renderStatus);
store.on('pending', renderStatus);
renderStatus();

const latency = { ping: /** @type {number | null} */ (null), ack: /** @type {number | null} */ (null) };
store.on('latency', ({ kind, ms }) => {
  latency[kind] = ms;
  const parts = [];
  if (latency.ping !== null) parts.push(`RTT ${latency.ping.toFixed(0)} ms`);
  if (latency.ack !== null) parts.push(`write ${latency.ack.toFixed(0)} ms`);
  $('latency').textContent = parts.join(' · ');
  $('latency').title = 'RTT: heartbeat round trip. Write: your last edit until its durable ack.';
});

// -- undo / redo --------------------------------------------------------------------------

const undoButton = /** @type {HTMLButtonElement} */ ($('undo'));
const redoButton = /** @type {HTMLButtonElement} */ ($('redo'));
undoButton.addEventListener('click', () => store.undo());
redoButton.addEventListener('click', () => store.redo());
store.on('history', ({ canUndo, canRedo }) => {
  undoButton.disabled = !canUndo;
  redoButton.disabled = !canRedo;
});
undoButton.disabled = redoButton.disabled = true;
document.addEventListener('keydown', (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  if (target.closest('input, textarea, select') || !(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== 'z') return;
  event.preventDefault();
  if (event.shiftKey) store.redo();
  else store.undo();
});

// For tests and the curious: the live objects.
Object.assign(window, { collab: { store, client, graph, select: (/** @type {Target | null} */ t) => select(t), get selected() { return selected; } } });

/** @param {string} path */
function graphIdOf(path) {
  const match = /^\/graphs\/([^/]+)/.exec(path);
  return match ? decodeURIComponent(match[1]) : 'demo';
}

/** A name for this tab when none is given: kept across reloads of the tab. */
function tabUserName() {
  const key = 'intelgraph-collab:user';
  const saved = sessionStorage.getItem(key);
  if (saved) return saved;
  const names = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken', 'Radia', 'Tim'];
  const name = `${names[Math.floor(Math.random() * names.length)]}-${Math.floor(Math.random() * 90 + 10)}`;
  sessionStorage.setItem(key, name);
  return name;
}
