import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { A, B, signerKey } from './helpers.mjs';

const CLI = fileURLToPath(new URL('../cli.mjs', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'envelope-cli-'));
const p = (name) => path.join(dir, name);
const run = (...args) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
fs.writeFileSync(p('a.pem'), A.priv);
fs.writeFileSync(p('a.pub.pem'), A.pub);
fs.writeFileSync(p('b.pem'), B.priv);
fs.writeFileSync(p('b.pub.pem'), B.pub);
const SIGNERS = { ed: signerKey('ed25519'), ec: signerKey('ecdsa-p256-sha256'), ml: signerKey('ml-dsa-65') };
for (const [name, s] of Object.entries(SIGNERS)) {
  fs.writeFileSync(p(`${name}.pem`), s.priv);
  fs.writeFileSync(p(`${name}.pub.pem`), s.pub);
}

const META = '{"name":"m","n":-3,"big":{"$int":"18446744073709551615"},"f":{"$float":1.0},"nan":{"$float":"NaN"},'
  + '"bin":{"$bin":"00ff"},"list":[null,true,{"x":[]}]}';

test('seal and open through the CLI, with tagged JSON metadata', () => {
  const data = crypto.randomBytes(5000);
  fs.writeFileSync(p('in'), data);
  let r = run('seal', '--recipient', p('a.pub.pem'), '--recipient', p('b.pub.pem'), '--chunk-size', '1000',
    '--meta-json', META, p('in'), p('sealed'));
  assert.equal(r.status, 0, r.stderr);
  r = run('open', '--key', p('b.pem'), p('sealed'), p('out'), '--meta-out', p('meta.json'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(p('out')), data);
  assert.deepEqual(JSON.parse(fs.readFileSync(p('meta.json'), 'utf8')), JSON.parse(META));
});

test('envelope errors: one line "ClassName: message", exit 1; usage errors exit 2', () => {
  const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  fs.writeFileSync(p('c.pem'), stranger.privateKey);
  fs.writeFileSync(p('in'), 'x');
  assert.equal(run('seal', '--recipient', p('a.pub.pem'), p('in'), p('s2')).status, 0);
  let r = run('open', '--key', p('c.pem'), p('s2'), p('o2'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^NoMatchingKeyError: [^\n]+\n$/);
  assert.ok(!fs.existsSync(p('o2')));
  const bad = fs.readFileSync(p('s2'));
  bad[bad.length - 1] ^= 1;
  fs.writeFileSync(p('s3'), bad);
  r = run('open', '--key', p('a.pem'), p('s3'), p('o3'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^AuthenticationError: /);
  assert.ok(!fs.existsSync(p('o3')));
  r = run('seal', '--recipient', p('a.pem'), p('in'), p('s4')); // a private key is not a recipient PEM
  assert.match(r.stderr, /^InvalidKeyError: /);
  for (const args of [[], ['frobnicate'], ['seal', p('in'), p('x')], ['open', '--key'], ['check'], ['seal', '--recipient',
    p('a.pub.pem'), '--chunk-size', 'ten', p('in'), p('x')], ['seal', '--recipient', p('a.pub.pem'), '--meta-json',
    '[1]', p('in'), p('x')], ['vectors']]) {
    assert.equal(run(...args).status, 2, args.join(' '));
  }
});

test('signed files: --sign-with, --signed-by, --signer-out, and the keyless check', () => {
  const data = crypto.randomBytes(3000);
  fs.writeFileSync(p('in'), data);
  for (const [name, s] of Object.entries(SIGNERS)) {
    const sealed = p(`signed-${name}`);
    let r = run('seal', '--recipient', p('a.pub.pem'), '--chunk-size', '1000', '--sign-with', p(`${name}.pem`), p('in'), sealed);
    assert.equal(r.status, 0, r.stderr);
    const other = name === 'ed' ? 'ec' : 'ed';
    r = run('open', '--key', p('a.pem'), '--signed-by', p(`${other}.pub.pem`), '--signed-by', p(`${name}.pub.pem`),
      sealed, p('out'), '--signer-out', p('signer.json'));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readFileSync(p('out')), data);
    const signer = { algorithm: s.alg, key_id: s.kid.toString('hex') };
    assert.deepEqual(JSON.parse(fs.readFileSync(p('signer.json'), 'utf8')), signer);
    r = run('check', sealed);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), signer);
    // Another pinned signer (R28): exit 1, no output, no temporary file left behind.
    fs.rmSync(p('out'));
    r = run('open', '--key', p('a.pem'), '--signed-by', p(`${other}.pub.pem`), sealed, p('out'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^SignerError: [^\n]+\n$/);
    r = run('check', '--signed-by', p(`${other}.pub.pem`), sealed);
    assert.match(r.stderr, /^SignerError: /);
    // A damaged signature: the plaintext verified chunk by chunk, but nothing is kept.
    const bad = fs.readFileSync(sealed);
    bad[bad.length - 1] ^= 1;
    fs.writeFileSync(p('bad-signed'), bad);
    r = run('open', '--key', p('a.pem'), p('bad-signed'), p('out'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^SignatureError: /);
    assert.ok(!fs.existsSync(p('out')));
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  }
  let r = run('open', '--key', p('a.pem'), p('s2'), p('o5'), '--signer-out', p('unsigned.json'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(p('unsigned.json'), 'utf8'), 'null\n');
  r = run('check', p('s2'));
  assert.match(r.stderr, /^SignerError: /);
});

test('vectors command runs a vector directory', () => {
  const vdir = p('vectors');
  fs.mkdirSync(path.join(vdir, 'v1'), { recursive: true });
  fs.mkdirSync(path.join(vdir, 'keys'));
  fs.writeFileSync(path.join(vdir, 'keys', 'alice.pem'), A.priv);
  fs.writeFileSync(path.join(vdir, 'keys', 'bob.pem'), B.priv);
  const data = Buffer.from('hello vectors');
  fs.writeFileSync(p('in'), data);
  assert.equal(run('seal', '--recipient', p('a.pub.pem'), '--chunk-size', '16', '--meta-json', META, p('in'),
    path.join(vdir, 'v1', 'good.envelope')).status, 0);
  const good = { name: 'good', description: '', keys: ['bob', 'alice'], expect: 'success', plaintext_length: data.length,
    plaintext_sha256: crypto.createHash('sha256').update(data).digest('hex'), plaintext_hex: data.toString('hex'),
    chunk_size: 16, metadata: JSON.parse(META), data_key: '00'.repeat(32), chunk_count: 1 };
  const write = (v, bytes) => {
    fs.writeFileSync(path.join(vdir, 'v1', `${v.name}.json`), JSON.stringify(v));
    if (bytes) fs.writeFileSync(path.join(vdir, 'v1', `${v.name}.envelope`), bytes);
  };
  write(good);
  write({ name: 'nokey', keys: ['bob'], expect: 'error', error: 'NoMatchingKeyError', rule: 'R13' },
    fs.readFileSync(path.join(vdir, 'v1', 'good.envelope')));
  let r = run('vectors', vdir);
  assert.equal(r.status, 0, r.stdout);
  assert.equal(r.stdout, '2 passed, 0 failed\n');
  write({ ...good, name: 'wrongmeta', metadata: { ...good.metadata, n: 3 } }, fs.readFileSync(path.join(vdir, 'v1', 'good.envelope')));
  write({ name: 'wrongclass', keys: ['bob'], expect: 'error', error: 'MalformedError', rule: 'R1' },
    fs.readFileSync(path.join(vdir, 'v1', 'good.envelope')));
  r = run('vectors', vdir);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^FAIL wrongclass: .*\nFAIL wrongmeta: open: mismatch in metadata; stream: mismatch in metadata\n2 passed, 2 failed\n$/);
});

test('vectors command: signed_by pins signers, signer is compared, error classes match by subclass', () => {
  const vdir = p('signed-vectors');
  fs.mkdirSync(path.join(vdir, 'v1'), { recursive: true });
  fs.mkdirSync(path.join(vdir, 'keys'));
  for (const [name, key] of [['alice', A.priv], ['signer', SIGNERS.ml.priv]]) fs.writeFileSync(path.join(vdir, 'keys', `${name}.pem`), key);
  for (const [name, key] of [['signer', SIGNERS.ml.pub], ['other', SIGNERS.ed.pub]]) fs.writeFileSync(path.join(vdir, 'keys', `${name}.pub.pem`), key);
  const data = Buffer.from('signed vector');
  fs.writeFileSync(p('in'), data);
  const env = path.join(vdir, 'v1', 'signed.envelope');
  assert.equal(run('seal', '--recipient', p('a.pub.pem'), '--chunk-size', '16', '--sign-with', p('ml.pem'), p('in'), env).status, 0);
  const bytes = fs.readFileSync(env);
  const write = (v) => {
    fs.writeFileSync(path.join(vdir, 'v1', `${v.name}.json`), JSON.stringify(v));
    if (v.name !== 'signed') fs.writeFileSync(path.join(vdir, 'v1', `${v.name}.envelope`), v.bytes ?? bytes);
  };
  const signer = { algorithm: 'ml-dsa-65', key_id: SIGNERS.ml.kid.toString('hex') };
  const good = { name: 'signed', keys: ['alice'], signed_by: ['other', 'signer'], expect: 'success', plaintext_length: data.length,
    plaintext_sha256: crypto.createHash('sha256').update(data).digest('hex'), chunk_size: 16, metadata: {}, chunk_count: 1, signer };
  write(good);
  write({ ...good, name: 'no-signer-field', signer: undefined, signed_by: undefined }); // older vectors: no such fields
  write({ name: 'r28', keys: ['alice'], signed_by: ['other'], expect: 'error', error: 'SignerError', rule: 'R28' });
  const cut = { name: 'r26', keys: ['alice'], expect: 'error', error: 'AuthenticationError', rule: 'R26', bytes: bytes.subarray(0, bytes.length - 1) };
  write(cut);
  let r = run('vectors', vdir);
  assert.equal(r.stdout, '4 passed, 0 failed\n');
  write({ ...good, name: 'wrong-signer', signer: { ...signer, key_id: '00'.repeat(32) } });
  write({ ...good, name: 'says-unsigned', signer: null });
  write({ ...cut, name: 'r26-too-narrow', error: 'SignerError' });
  write({ ...cut, name: 'r26-unknown-class', error: 'FooError' });
  r = run('vectors', vdir);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /FAIL r26-too-narrow: open: expected SignerError \(R26\), got SignatureError/);
  assert.match(r.stdout, /FAIL r26-unknown-class: open: unknown error class FooError/);
  assert.match(r.stdout, /FAIL says-unsigned: open: mismatch in signer; stream: mismatch in signer/);
  assert.match(r.stdout, /FAIL wrong-signer: open: mismatch in signer; stream: mismatch in signer/);
  assert.match(r.stdout, /4 passed, 4 failed\n$/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
