// The demo's investigation graph: a fixed, made-up dataset (entities and the
// edges between them) that every window of a graph id shows identically, so
// annotations can refer to its ids. Positions are fixed: no layout jitter
// between windows, and tests can click an element where they expect it.

/**
 * @typedef {'PERSON' | 'ORG' | 'ACCOUNT' | 'LOCATION' | 'PHONE' | 'VESSEL'} EntityType
 * @typedef {{id: string, label: string, type: EntityType, x: number, y: number}} Entity
 * @typedef {{id: string, source: string, target: string, label: string}} Edge
 */

export const TITLE = 'Operation Harbor Lights';

/** @type {Entity[]} */
export const ENTITIES = [
  { id: 'p-sorokin', label: 'Viktor Sorokin', type: 'PERSON', x: 120, y: 80 },
  { id: 'p-marsh', label: 'Elena Marsh', type: 'PERSON', x: 560, y: 80 },
  { id: 'p-okafor', label: 'J. Okafor', type: 'PERSON', x: 980, y: 380 },
  { id: 'o-harbor', label: 'Harbor Lights Holdings', type: 'ORG', x: 120, y: 260 },
  { id: 'o-bluewater', label: 'Bluewater Freight', type: 'ORG', x: 560, y: 260 },
  { id: 'o-crescent', label: 'Crescent Trade FZE', type: 'ORG', x: 560, y: 460 },
  { id: 'a-cy4471', label: 'Account CY-4471', type: 'ACCOUNT', x: 120, y: 460 },
  { id: 'a-ae2090', label: 'Account AE-2090', type: 'ACCOUNT', x: 340, y: 560 },
  { id: 'l-limassol', label: 'Limassol, CY', type: 'LOCATION', x: -80, y: 360 },
  { id: 'l-jebelali', label: 'Jebel Ali, AE', type: 'LOCATION', x: 780, y: 560 },
  { id: 'ph-357', label: '+357 99 ···12', type: 'PHONE', x: 340, y: 0 },
  { id: 'v-nordic', label: 'MV Nordic Star', type: 'VESSEL', x: 780, y: 140 },
];

/** @type {Edge[]} */
export const EDGES = [
  { id: 'x-sorokin-harbor', source: 'p-sorokin', target: 'o-harbor', label: 'director of' },
  { id: 'x-marsh-bluewater', source: 'p-marsh', target: 'o-bluewater', label: 'director of' },
  { id: 'x-okafor-crescent', source: 'p-okafor', target: 'o-crescent', label: 'shareholder' },
  { id: 'x-harbor-cy4471', source: 'o-harbor', target: 'a-cy4471', label: 'holds' },
  { id: 'x-crescent-ae2090', source: 'o-crescent', target: 'a-ae2090', label: 'holds' },
  { id: 'x-cy4471-ae2090', source: 'a-cy4471', target: 'a-ae2090', label: 'wire $2.4M' },
  { id: 'x-harbor-limassol', source: 'o-harbor', target: 'l-limassol', label: 'registered in' },
  { id: 'x-crescent-jebelali', source: 'o-crescent', target: 'l-jebelali', label: 'registered in' },
  { id: 'x-sorokin-phone', source: 'p-sorokin', target: 'ph-357', label: 'called' },
  { id: 'x-marsh-phone', source: 'p-marsh', target: 'ph-357', label: 'called' },
  { id: 'x-bluewater-nordic', source: 'o-bluewater', target: 'v-nordic', label: 'operates' },
  { id: 'x-nordic-jebelali', source: 'v-nordic', target: 'l-jebelali', label: 'docked at' },
  { id: 'x-harbor-bluewater', source: 'o-harbor', target: 'o-bluewater', label: 'contracts' },
];

/**
 * The label of an entity or edge, for the panel and the activity feed.
 * @param {'ENTITY' | 'EDGE'} type
 * @param {string} id
 */
export function describeTarget(type, id) {
  if (type === 'ENTITY') return ENTITIES.find((e) => e.id === id)?.label ?? id;
  const edge = EDGES.find((e) => e.id === id);
  if (!edge) return id;
  const name = (/** @type {string} */ end) => ENTITIES.find((e) => e.id === end)?.label ?? end;
  return `${name(edge.source)} → ${name(edge.target)} (${edge.label})`;
}
