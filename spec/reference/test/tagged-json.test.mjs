// The tagged JSON of spec/vectors/README.md, as cli.mjs reads it (--meta-json, the vectors'
// metadata) and writes it (--meta-out): `$map` wraps exactly the maps whose one key begins with `$`,
// and a reader refuses any other `$map`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fromTagged, toTagged } from '../cli.mjs';
import { Float } from '../envelope.mjs';

test('$map wraps a map whose only key begins with $, and reads back', () => {
  for (const [tagged, value] of [
    [{ $map: { $int: 5 } }, { $int: 5 }],
    [{ $map: { $x: { $map: { $bin: { $bin: '00ff' } } } } }, { $x: { $bin: Buffer.of(0, 0xff) } }],
    [{ $map: { $: [{ $float: 1.5 }] } }, { $: [new Float(1.5)] }],
  ]) {
    assert.deepEqual(fromTagged(tagged), value);
    assert.deepEqual(toTagged(fromTagged(tagged)), tagged);
  }
  // Not wrapped: no key, more than one, or one key without $.
  for (const plain of [{}, { a: 1 }, { $a: 1, $b: 2 }, { $a: 1, b: 2 }]) assert.deepEqual(toTagged(fromTagged(plain)), plain);
});

test('a $map that is not exactly one key beginning with $ is refused', () => {
  for (const bad of [
    { $map: { a: 1 } }, // one key without $: it is never wrapped
    { $map: {} },
    { $map: { $a: 1, $b: 2 } },
    { $map: { $a: 1, b: 2 } },
    { $map: { a: 1, b: 2 } },
    { $map: 5 }, { $map: null }, { $map: [] }, { $map: [{ $a: 1 }] }, { $map: 'x' },
    { m: { $map: { n: 1 } } }, // nested too
    [{ $map: { n: 1 } }],
  ]) {
    assert.throws(() => fromTagged(bad), /tagged JSON/, JSON.stringify(bad));
  }
});

test('the CLI refuses such a $map in --meta-json (usage error, exit 2)', () => {
  const cli = fileURLToPath(new URL('../cli.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [cli, 'seal', '--recipient', 'unused.pem', '--meta-json', '{"m":{"$map":{"n":1}}}', 'in', 'out'],
    { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /\$map/);
});
