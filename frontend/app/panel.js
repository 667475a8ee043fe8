// The side panel: the annotations of the selected entity or edge, editable.
//
// Tags, confidence and highlight are plain writes through the store (tags
// as set deltas; all of them undoable); the note is a NoteEditor. The panel
// re-renders its parts from the store's view on every change of the
// selected target, except the note's textarea, which must keep focus and
// caret while others type.

import { describeTarget } from './demo-graph.js';
import { NoteEditor } from './note-editor.js';
import { KINDS, annotationId, targetKey } from './targets.js';

/** @typedef {import('./targets.js').Target} Target */
/** @typedef {import('/frontend/collab/annotation-client.js').AnnotationStore} AnnotationStore */

export const HIGHLIGHTS = ['#e5484d', '#f5a524', '#30a46c', '#1d6ff2', '#8e4ec6'];
const CONFIDENCES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH'];

export class Panel {
  #root;
  #store;
  /** @type {Target | null} */
  #target = null;
  #note;
  /** @type {Record<string, HTMLElement>} */
  #parts;

  /**
   * @param {HTMLElement} root
   * @param {AnnotationStore} store
   */
  constructor(root, store) {
    this.#root = root;
    this.#store = store;
    root.innerHTML = TEMPLATE;
    const part = (/** @type {string} */ name) => /** @type {HTMLElement} */ (root.querySelector(`[data-part="${name}"]`));
    this.#parts = {
      empty: part('empty'),
      editor: part('editor'),
      title: part('title'),
      kind: part('kind'),
      selectedBy: part('selected-by'),
      tags: part('tags'),
      tagForm: part('tag-form'),
      confidence: part('confidence'),
      swatches: part('swatches'),
      meta: part('meta'),
    };
    this.#note = new NoteEditor(/** @type {HTMLTextAreaElement} */ (part('note')), store);
    this.#wire();
    store.on('change', (change) => {
      if (this.#target && this.#owns(change.id)) this.render();
    });
    store.on('reset', () => this.render());
    store.on('presence', () => this.#renderSelectedBy());
    this.render();
  }

  /** @param {Target | null} target */
  show(target) {
    this.#target = target;
    this.#note.bind(target);
    this.render();
  }

  render() {
    const target = this.#target;
    this.#parts.empty.hidden = target !== null;
    this.#parts.editor.hidden = target === null;
    if (!target) return;
    this.#parts.title.textContent = describeTarget(target.type, target.id);
    this.#parts.kind.textContent = target.type === 'ENTITY' ? 'Entity' : 'Edge';
    const tags = this.#store.get(annotationId('tags', target));
    const highlight = this.#store.get(annotationId('highlight', target));
    const note = this.#store.get(annotationId('note', target));
    this.#renderTags(Array.isArray(tags?.tags) ? tags.tags : []);
    /** @type {HTMLSelectElement} */ (this.#parts.confidence).value = tags?.confidence ?? 'UNKNOWN';
    for (const swatch of this.#parts.swatches.querySelectorAll('button')) {
      swatch.classList.toggle('active', (swatch.dataset.color || null) === (highlight?.color ?? null));
    }
    this.#parts.meta.replaceChildren(
      ...[['Tags', tags], ['Highlight', highlight], ['Note', note]]
        .filter(([, a]) => a && /** @type {any} */ (a).updated_by !== undefined)
        .map(([label, a]) => {
          const line = document.createElement('div');
          const annotation = /** @type {any} */ (a);
          line.textContent = `${label}: last change by ${annotation.updated_by ?? 'someone'}${annotation.updated_at ? `, ${timeAgo(annotation.updated_at)}` : ''}`;
          return line;
        }),
    );
    this.#renderSelectedBy();
  }

  /** @param {string} id */
  #owns(id) {
    if (!this.#target) return false;
    return ['tags', 'highlight', 'note'].some((kind) => annotationId(/** @type {any} */ (kind), /** @type {Target} */ (this.#target)) === id);
  }

  /** @param {string[]} tags */
  #renderTags(tags) {
    this.#parts.tags.replaceChildren(
      ...tags.map((tag) => {
        const chip = document.createElement('li');
        chip.className = 'chip';
        chip.dataset.tag = tag;
        const text = document.createElement('span');
        text.textContent = tag;
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.textContent = '×';
        remove.title = `Remove tag ${tag}`;
        remove.addEventListener('click', () => this.#target && this.#store.removeTags(annotationId('tags', this.#target), [tag]));
        chip.append(text, remove);
        return chip;
      }),
    );
  }

  #renderSelectedBy() {
    if (!this.#target) return;
    const others = this.#store.selecting(targetKey(this.#target));
    this.#parts.selectedBy.textContent = others.length
      ? `Also looking at this: ${others.map((p) => p.state.name ?? p.user ?? 'someone').join(', ')}`
      : '';
  }

  #wire() {
    const form = /** @type {HTMLFormElement} */ (this.#parts.tagForm);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const input = /** @type {HTMLInputElement} */ (form.elements.namedItem('tag'));
      const tags = input.value.split(',').map((t) => t.trim()).filter(Boolean);
      if (!this.#target || tags.length === 0) return;
      this.#writeTags(this.#target, tags);
      input.value = '';
    });
    this.#parts.confidence.addEventListener('change', () => {
      if (!this.#target) return;
      const value = /** @type {HTMLSelectElement} */ (this.#parts.confidence).value;
      this.#writeFields('tags', this.#target, { confidence: value });
    });
    for (const color of [...HIGHLIGHTS, '']) {
      const swatch = document.createElement('button');
      swatch.type = 'button';
      swatch.dataset.color = color;
      swatch.title = color ? `Highlight ${color}` : 'No highlight';
      swatch.className = color ? 'swatch' : 'swatch none';
      if (color) swatch.style.background = color;
      swatch.addEventListener('click', () => this.#target && this.#writeFields('highlight', this.#target, { color: color || null }));
      this.#parts.swatches.append(swatch);
    }
  }

  /**
   * @param {Target} target
   * @param {string[]} tags
   */
  #writeTags(target, tags) {
    const id = annotationId('tags', target);
    if (this.#store.get(id)) this.#store.addTags(id, tags);
    else this.#writeFields('tags', target, { tags: { add: tags } });
  }

  /**
   * Set fields of the target's annotation of `kind`, creating it if needed.
   * @param {'tags' | 'highlight'} kind
   * @param {Target} target
   * @param {Record<string, any>} fields
   */
  #writeFields(kind, target, fields) {
    const id = annotationId(kind, target);
    const exists = this.#store.get(id) !== undefined;
    this.#store.update(id, exists ? fields : { target_type: target.type, target_id: target.id, kind: KINDS[kind], ...fields });
  }
}

/** @param {string} iso */
function timeAgo(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return new Date(iso).toLocaleString();
}

const TEMPLATE = `
  <p class="empty" data-part="empty">Click an entity or an edge to annotate it.</p>
  <div data-part="editor" hidden>
    <header class="target">
      <span class="target-kind" data-part="kind"></span>
      <h2 data-part="title" data-test="target-title"></h2>
      <p class="selected-by" data-part="selected-by" data-test="selected-by"></p>
    </header>
    <section>
      <h3>Tags</h3>
      <ul class="chips" data-part="tags" data-test="tags"></ul>
      <form class="tag-form" data-part="tag-form" data-test="tag-form">
        <input name="tag" placeholder="Add a tag (comma separates)" autocomplete="off" data-test="tag-input">
        <button type="submit">Add</button>
      </form>
    </section>
    <section class="row">
      <label>Confidence
        <select data-part="confidence" data-test="confidence">
          ${CONFIDENCES.map((c) => `<option value="${c}">${c.toLowerCase()}</option>`).join('')}
        </select>
      </label>
      <div>
        <h3>Highlight</h3>
        <div class="swatches" data-part="swatches" data-test="swatches"></div>
      </div>
    </section>
    <section>
      <h3>Note <span class="hint">shared, typed live</span></h3>
      <textarea data-part="note" data-test="note" rows="6" placeholder="Notes on this target…"></textarea>
    </section>
    <footer class="meta" data-part="meta" data-test="meta"></footer>
  </div>
`;
