// Tests of the JavaScript text OT twin (frontend/collab/text-ot.js): the
// shared vectors the Python engine also passes, random TP1 and compose with a
// seeded PRNG, and code-point / UTF-16 conversion.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  DEFAULT_MAX_COMPONENTS,
  InvalidOpError,
  apply,
  baseLength,
  check,
  codePointLength,
  codePointToUtf16,
  compose,
  diffToOp,
  isNoop,
  normalize,
  targetLength,
  transform,
  transformAgainst,
  transformPosition,
  utf16ToCodePoint,
} from '../../frontend/collab/text-ot.js';

const CASES = JSON.parse(readFileSync(new URL('../vectors/text_ot.json', import.meta.url), 'utf8'));

/** Mulberry32: a small seeded PRNG, so failures replay. */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'b', '\u00e9', '\u0301', '\u{1F600}', '\u{1F389}', '\u4e2d', '\u200d'];

function randomInt(random, lo, hi) {
  return lo + Math.floor(random() * (hi - lo + 1));
}

function randomText(random, maxLength) {
  let text = '';
  for (let i = randomInt(random, 0, maxLength); i > 0; i--) text += ALPHABET[randomInt(random, 0, ALPHABET.length - 1)];
  return text;
}

/** A random op spanning `text`, in code points. */
function randomOp(random, text) {
  const op = [];
  let left = codePointLength(text);
  for (;;) {
    if (random() < 0.4) op.push(randomText(random, 3) || 'z');
    if (left === 0) break;
    const n = randomInt(random, 1, left);
    op.push(random() < 0.6 ? n : -n);
    left -= n;
  }
  return normalize(op);
}

describe('shared vectors', () => {
  test('apply', () => {
    for (const c of CASES.apply) assert.equal(apply(c.text, check(c.op)), c.result, c.name);
  });

  test('apply refuses an op that does not span the text', () => {
    for (const c of CASES.apply_invalid) {
      assert.throws(() => apply(c.text, check(c.op)), InvalidOpError, c.name);
    }
  });

  test('normalize', () => {
    for (const c of CASES.normalize) {
      assert.deepEqual(normalize(c.op), c.normalized);
      assert.deepEqual(check(c.op), c.normalized);
    }
  });

  test('check refuses invalid ops', () => {
    for (const c of CASES.invalid) {
      const maxComponents = c.max_components ?? DEFAULT_MAX_COMPONENTS;
      assert.throws(() => check(c.op, { maxComponents }), (error) => {
        assert.ok(error instanceof InvalidOpError, c.name);
        assert.equal(error.code, 'invalid_op');
        return true;
      }, c.name);
    }
  });

  test('transform', () => {
    for (const c of CASES.transform) {
      const [aPrime, bPrime] = transform(c.a, c.b);
      assert.deepEqual([aPrime, bPrime], [c.a_prime, c.b_prime], c.name);
      assert.equal(apply(apply(c.text, c.a), bPrime), c.result, c.name);
      assert.equal(apply(apply(c.text, c.b), aPrime), c.result, c.name);
    }
  });

  test('transform refuses ops on different texts', () => {
    for (const c of CASES.transform_invalid) assert.throws(() => transform(c.a, c.b), InvalidOpError);
  });

  test('compose', () => {
    for (const c of CASES.compose) {
      const composed = compose(c.a, c.b);
      assert.deepEqual(composed, c.composed, c.name);
      assert.equal(apply(c.text, composed), c.result, c.name);
    }
  });

  test('compose refuses ops that do not chain', () => {
    for (const c of CASES.compose_invalid) assert.throws(() => compose(c.a, c.b), InvalidOpError);
  });

  test('transformPosition', () => {
    for (const c of CASES.transform_position) {
      assert.equal(transformPosition(c.position, c.op, c.own), c.result, c.name);
    }
  });

  test('code points <-> UTF-16 offsets', () => {
    for (const c of CASES.utf16) {
      assert.equal(c.utf16_offsets.length, codePointLength(c.text) + 1);
      c.utf16_offsets.forEach((units, points) => {
        assert.equal(codePointToUtf16(c.text, points), units);
        assert.equal(utf16ToCodePoint(c.text, units), points);
      });
    }
  });

  test('diffToOp', () => {
    for (const c of CASES.diff) {
      const op = diffToOp(c.old, c.new, c.caret);
      assert.deepEqual(op, c.op, c.name);
      assert.equal(apply(c.old, op), c.new, c.name);
    }
  });
});

describe('code points, not UTF-16 units', () => {
  test('an emoji is one position', () => {
    const text = 'a\u{1F600}b';
    assert.equal(text.length, 4);
    assert.equal(codePointLength(text), 3);
    assert.equal(apply(text, [1, -1, 1]), 'ab');
    assert.throws(() => apply(text, [4]), InvalidOpError);
    assert.equal(targetLength(['\u{1F600}\u{1F389}']), 2);
    assert.equal(baseLength([2, -1, 'x']), 3);
  });

  test('an offset inside a surrogate pair rounds down', () => {
    assert.equal(utf16ToCodePoint('a\u{1F600}b', 2), 1);
    assert.equal(utf16ToCodePoint('a\u{1F600}b', 99), 3);
    assert.equal(codePointToUtf16('a\u{1F600}b', 99), 4);
  });

  test('a textarea edit round-trips through UTF-16 offsets', () => {
    const before = '\u{1F468}\u200d\u{1F469} hi';
    const after = '\u{1F468}\u200d\u{1F469} hi\u{1F389}';
    const caret = utf16ToCodePoint(after, after.length); // selectionEnd after typing
    const op = diffToOp(before, after, caret);
    assert.deepEqual(op, [6, '\u{1F389}']);
    assert.equal(codePointToUtf16(after, transformPosition(6, op, true)), after.length);
  });

  test('the diff never splits a surrogate pair', () => {
    const random = prng(7);
    for (let i = 0; i < 2000; i++) {
      const before = randomText(random, 8);
      const after = randomText(random, 8);
      const caret = randomInt(random, 0, codePointLength(after));
      const op = diffToOp(before, after, random() < 0.5 ? caret : undefined);
      assert.deepEqual(check(op), op);
      assert.equal(apply(before, op), after);
    }
  });
});

describe('properties on seeded random ops', () => {
  test('TP1 diamond', () => {
    const random = prng(20260412);
    for (let i = 0; i < 10000; i++) {
      const text = randomText(random, 12);
      const a = randomOp(random, text);
      const b = randomOp(random, text);
      const [aPrime, bPrime] = transform(a, b);
      const left = apply(apply(text, a), bPrime);
      assert.equal(left, apply(apply(text, b), aPrime), JSON.stringify({ text, a, b }));
    }
  });

  test('compose is apply then apply', () => {
    const random = prng(99);
    for (let i = 0; i < 3000; i++) {
      const text = randomText(random, 12);
      const a = randomOp(random, text);
      const b = randomOp(random, apply(text, a));
      const composed = compose(a, b);
      assert.equal(apply(text, composed), apply(apply(text, a), b), JSON.stringify({ text, a, b }));
      assert.deepEqual(normalize(composed), composed);
    }
  });

  test('transformAgainst is the server fold: each sequenced op wins the tie', () => {
    assert.deepEqual(transformAgainst(['c'], [['a'], [1, 'b']]), [2, 'c']);
    assert.deepEqual(transformAgainst([1, 'x'], []), [1, 'x']);
  });

  test('isNoop', () => {
    assert.ok(isNoop([3]));
    assert.ok(isNoop([]));
    assert.ok(!isNoop([1, 'x']));
    assert.ok(!isNoop([-1]));
  });

  test('check returns a normalized copy and leaves its input alone', () => {
    const op = [1, 1, -1, 'a'];
    assert.deepEqual(check(op), [2, 'a', -1]);
    assert.deepEqual(op, [1, 1, -1, 'a']);
    assert.throws(() => check(new Array(DEFAULT_MAX_COMPONENTS + 1).fill(1)), /at most/);
    assert.throws(() => check([1, 'a', 0]), /component 2/);
  });
});
