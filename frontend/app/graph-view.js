// The investigation graph drawn with Cytoscape.js, decorated with what the
// annotations say (highlight colour, tags, confidence) and with who else has
// selected what. It knows nothing about sync: app.js tells it what to draw.

import cytoscape from '/vendor/cytoscape.esm.min.mjs';

import { EDGES, ENTITIES } from './demo-graph.js';

/** @typedef {import('./targets.js').Target} Target */
/** @typedef {{tags: string[], color: string | null, confidence: string | null}} Decoration */

const TYPE_STYLE = {
  PERSON: { shape: 'ellipse', color: '#4f7fe8' },
  ORG: { shape: 'round-rectangle', color: '#8a63d2' },
  ACCOUNT: { shape: 'diamond', color: '#1f9d8f' },
  LOCATION: { shape: 'hexagon', color: '#d08a1e' },
  PHONE: { shape: 'tag', color: '#6b7785' },
  VESSEL: { shape: 'barrel', color: '#2f8fc4' },
};

export class GraphView {
  /** @type {import('cytoscape').Core} */
  #cy;

  /**
   * @param {HTMLElement} container
   * @param {(target: Target | null) => void} onSelect
   */
  constructor(container, onSelect) {
    /** @type {import('cytoscape').ElementDefinition[]} */
    const elements = [
      ...ENTITIES.map((e) => ({
        group: /** @type {const} */ ('nodes'),
        data: { id: e.id, label: e.label, display: e.label, type: e.type, ...TYPE_STYLE[e.type] },
        position: { x: e.x, y: e.y },
      })),
      ...EDGES.map((e) => ({ group: /** @type {const} */ ('edges'), data: { ...e, display: e.label } })),
    ];
    this.#cy = cytoscape({
      container,
      elements,
      layout: { name: 'preset', padding: 40 },
      style: STYLE,
      selectionType: 'single',
      boxSelectionEnabled: false,
    });
    this.#cy.on('tap', 'node, edge', (/** @type {any} */ event) => {
      const element = event.target;
      onSelect({ type: element.isNode() ? 'ENTITY' : 'EDGE', id: element.id() });
    });
    this.#cy.on('tap', (/** @type {any} */ event) => {
      if (event.target === this.#cy) onSelect(null);
    });
  }

  /** The Cytoscape instance (tests read element positions from it). */
  get cy() {
    return this.#cy;
  }

  /** @param {Target | null} target */
  select(target) {
    this.#cy.elements(':selected').unselect();
    if (target) this.#cy.getElementById(target.id).select();
  }

  /**
   * Draw what the annotations of one target say.
   * @param {Target} target
   * @param {Decoration} decoration
   */
  decorate(target, { tags, color, confidence }) {
    const element = this.#cy.getElementById(target.id);
    if (element.empty()) return;
    const base = element.data('label');
    const tagLine = tags.length ? `\n${tags.slice(0, 3).map((t) => `#${t}`).join(' ')}${tags.length > 3 ? ' …' : ''}` : '';
    element.data('display', `${base}${confidence && confidence !== 'UNKNOWN' ? ` [${confidence[0]}]` : ''}${tagLine}`);
    if (color) element.data('highlight', color);
    else element.removeData('highlight');
  }

  /**
   * Mark what the others have selected, in their colours.
   * @param {Map<string, string>} colorsById element id -> colour
   */
  showRemoteSelections(colorsById) {
    this.#cy.batch(() => {
      this.#cy.elements('[remote]').removeData('remote');
      for (const [id, color] of colorsById) this.#cy.getElementById(id).data('remote', color);
    });
  }

  /**
   * Briefly flash a target that someone else just changed.
   * @param {Target} target
   */
  flash(target) {
    this.#cy.getElementById(target.id).flashClass('flash', 900);
  }
}

// Typed loosely: Cytoscape's typings do not admit `data(...)` mappers given as strings.
/** @type {any[]} */
const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(display)',
      shape: 'data(shape)',
      'background-color': 'data(color)',
      width: 46,
      height: 46,
      color: '#1d2430',
      'font-size': 12,
      'text-valign': 'bottom',
      'text-margin-y': 6,
      'text-wrap': 'wrap',
      'text-max-width': 160,
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.85,
      'text-background-padding': 2,
      'border-width': 2,
      'border-color': '#ffffff',
    },
  },
  {
    selector: 'edge',
    style: {
      label: 'data(display)',
      width: 2,
      'line-color': '#9aa5b5',
      'target-arrow-color': '#9aa5b5',
      'target-arrow-shape': 'triangle',
      'curve-style': 'bezier',
      'font-size': 10,
      color: '#4a5566',
      'text-rotation': 'autorotate',
      'text-wrap': 'wrap',
      'text-background-color': '#f6f7f9',
      'text-background-opacity': 0.9,
      'text-background-padding': 2,
    },
  },
  { selector: 'node[highlight]', style: { 'border-color': 'data(highlight)', 'border-width': 6 } },
  { selector: 'edge[highlight]', style: { 'line-color': 'data(highlight)', 'target-arrow-color': 'data(highlight)', width: 5 } },
  {
    selector: '[remote]',
    style: { 'underlay-color': 'data(remote)', 'underlay-padding': 10, 'underlay-opacity': 0.35 },
  },
  { selector: ':selected', style: { 'overlay-color': '#1d6ff2', 'overlay-opacity': 0.18, 'overlay-padding': 8 } },
  { selector: '.flash', style: { 'overlay-color': '#ffb400', 'overlay-opacity': 0.45, 'overlay-padding': 12 } },
];
