// A <textarea> bound to the `content` of one note annotation, as text ops.
//
// Invariant: `#shadow` is the text the textarea showed when the client's
// view last agreed with it. Each input is sent as diffToOp(shadow, value)
// (an op on the view's text), so typing merges character by character with
// others' typing. A remote edit replaces the value and moves the caret and
// selection through the same ops (transformPosition), so the local caret
// stays where the user put it. During an IME composition nothing is sent
// and the textarea is left alone; at its end both sides are reconciled with
// one transform.

import {
  apply,
  codePointToUtf16,
  diffToOp,
  isNoop,
  transform,
  transformPosition,
  utf16ToCodePoint,
} from '/frontend/collab/text-ot.js';

import { KINDS, annotationId } from './targets.js';

/** @typedef {import('/frontend/collab/text-ot.js').Op} Op */
/** @typedef {import('./targets.js').Target} Target */

export class NoteEditor {
  #textarea;
  #store;
  /** @type {Target | null} */
  #target = null;
  /** @type {string | null} */
  #id = null;
  #shadow = '';
  #composing = false;

  /**
   * @param {HTMLTextAreaElement} textarea
   * @param {import('/frontend/collab/annotation-client.js').AnnotationStore} store
   */
  constructor(textarea, store) {
    this.#textarea = textarea;
    this.#store = store;
    textarea.addEventListener('input', () => {
      if (!this.#composing) this.#commit();
    });
    textarea.addEventListener('compositionstart', () => {
      this.#composing = true;
    });
    textarea.addEventListener('compositionend', () => {
      this.#composing = false;
      this.#commit();
    });
    store.on('change', (change) => {
      if (change.id === this.#id && change.origin !== 'local') this.#remote(change);
    });
    store.on('reset', () => this.#remote(null));
    this.bind(null);
  }

  /** @param {Target | null} target the entity or edge whose note to edit */
  bind(target) {
    this.#target = target;
    this.#id = target ? annotationId('note', target) : null;
    this.#textarea.disabled = target === null;
    this.#shadow = this.#viewText();
    this.#textarea.value = this.#shadow;
  }

  #viewText() {
    const note = this.#id ? this.#store.get(this.#id) : undefined;
    return typeof note?.content === 'string' ? note.content : '';
  }

  /** Send what the user typed since the shadow. */
  #commit() {
    if (!this.#id || !this.#target) return;
    const textarea = this.#textarea;
    const value = textarea.value;
    const view = this.#viewText();
    const caret = utf16ToCodePoint(value, textarea.selectionEnd);
    let local = diffToOp(this.#shadow, value, caret);
    if (view !== this.#shadow) {
      // Remote edits landed meanwhile (during a composition): both were made
      // on the shadow; theirs was sequenced first.
      const [remote, rebased] = transform(diffToOp(this.#shadow, view), local);
      local = rebased;
      this.#replace(apply(value, remote), [remote]);
    }
    try {
      const note = this.#store.get(this.#id);
      if (!note) {
        const client = this.#store.client;
        client.update(
          this.#id,
          { target_type: this.#target.type, target_id: this.#target.id, kind: KINDS.note, content: textarea.value },
          { recreate: client.isDeleted(this.#id) },
        );
      } else if (!isNoop(local)) {
        this.#store.editText(this.#id, 'content', local);
      }
      this.#shadow = this.#viewText();
    } catch (error) {
      console.error('note edit refused locally; reloading the note', error);
      this.#remote(null);
    }
  }

  /**
   * The view's text changed under us: show it, carets moved along.
   * @param {import('/frontend/collab/delta-sync.js').AnnotationChange | null} change
   */
  #remote(change) {
    if (this.#composing) return; // reconciled at compositionend
    const next = this.#viewText();
    if (next === this.#textarea.value) {
      this.#shadow = next;
      return;
    }
    const exact = change?.textOps?.content;
    const from = typeof change?.previous?.content === 'string' ? change.previous.content : '';
    const ops = exact && from === this.#textarea.value ? exact : [diffToOp(this.#textarea.value, next)];
    this.#replace(next, ops);
    this.#shadow = next;
  }

  /**
   * Set the textarea's value, mapping the selection through `ops`.
   * @param {string} next
   * @param {Op[]} ops ops that turn the current value into `next`
   */
  #replace(next, ops) {
    const textarea = this.#textarea;
    const focused = document.activeElement === textarea;
    const value = textarea.value;
    let start = utf16ToCodePoint(value, textarea.selectionStart);
    let end = utf16ToCodePoint(value, textarea.selectionEnd);
    for (const op of ops) {
      start = transformPosition(start, op);
      end = transformPosition(end, op);
    }
    const scroll = textarea.scrollTop;
    textarea.value = next;
    if (focused) textarea.setSelectionRange(codePointToUtf16(next, start), codePointToUtf16(next, end));
    textarea.scrollTop = scroll;
  }
}
