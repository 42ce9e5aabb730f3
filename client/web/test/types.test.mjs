// The type test: test/types/api_types.ts must compile with `tsc --noEmit`,
// every `@ts-expect-error` in it included (an unused one is an error).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('tsc --noEmit -p test/types: typed requests, messages and method names', () => {
  const tsc = path.join(WEB, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', 'test/types'], { cwd: WEB, encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
