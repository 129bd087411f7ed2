// Every vector of spec/vectors (spec/vectors/README.md), through each reader: open(), openStream()
// and, for signed files, checkSignature() (cli.mjs runVector). New vectors run as they land.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runVector } from '../cli.mjs';

const DIR = fileURLToPath(new URL('../../vectors', import.meta.url));
const names = fs.readdirSync(path.join(DIR, 'v1')).filter((f) => f.endsWith('.json')).sort();

test('the vector directory is there', () => assert.ok(names.length > 0));

for (const name of names) {
  const spec = JSON.parse(fs.readFileSync(path.join(DIR, 'v1', name), 'utf8'));
  test(`vector ${spec.name}${spec.rule ? ` (${spec.rule})` : ''}`, async () => {
    assert.equal(await runVector(DIR, spec), null);
  });
}
