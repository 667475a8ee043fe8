// The browser client's JSDoc types, checked by the TypeScript compiler
// (tsc --checkJs, strict) over frontend/: a type error fails the test run.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSC = path.join(REPO, 'node_modules', '.bin', 'tsc');

test('frontend/ type-checks with tsc --checkJs --strict', () => {
  assert.ok(existsSync(TSC), `${TSC} is missing: run npm install (make setup)`);
  const run = spawnSync(TSC, ['-p', path.join(REPO, 'tsconfig.json')], { cwd: REPO, encoding: 'utf8' });
  assert.equal(run.status, 0, `tsc found type errors:\n${run.stdout}${run.stderr}`);
});
