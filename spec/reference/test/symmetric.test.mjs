// Passphrase (§4.5) and shared Fernet key (§4.6) entries through seal() and open(): round trips,
// the rules of §4.5 and §4.6 on the writer's side, and failures that read like a header MAC failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { seal, open, fernetKey, passphrase, AuthenticationError, InvalidKeyError, LimitError,
  NoMatchingKeyError } from '../envelope.mjs';
import { A } from './helpers.mjs';

const shared = () => crypto.randomBytes(32).toString('base64url') + '=';
const data = crypto.randomBytes(5000);

test('a shared Fernet key opens what it sealed, beside an RSA key, found by key id', () => {
  const key = fernetKey(shared());
  const sealed = seal(data, [A.pub, key], { chunkSize: 1000 });
  assert.deepEqual(open(sealed, [fernetKey(shared()), key]).plaintext, data);
  assert.deepEqual(open(sealed, [A.priv]).plaintext, data);
  assert.throws(() => open(sealed, [fernetKey(shared())]), NoMatchingKeyError);
});

test('a Fernet key text is exactly 32 bytes of padded base64url; a trailing newline is allowed', () => {
  const text = shared();
  assert.ok(fernetKey(`${text}\n`).kid.equals(fernetKey(text).kid));
  for (const bad of [text.slice(0, 43), text.replace('=', ''), crypto.randomBytes(32).toString('base64'), '']) {
    if (bad.includes('+') || bad.includes('/') || bad.length !== 44) assert.throws(() => fernetKey(bad), InvalidKeyError);
  }
});

test('a passphrase opens what it sealed; text is taken in NFC', () => {
  const sealed = seal(data, [passphrase('Cre\u0300me', { workFactor: 10 })]);
  assert.deepEqual(open(sealed, [passphrase('Crème')]).plaintext, data);
});

test('a wrong passphrase or shared key fails exactly as a header MAC failure (R46, R50, R16)', () => {
  const messageOf = (sealed, key) => {
    try { open(sealed, [key]); } catch (e) { assert.ok(e instanceof AuthenticationError); return e.message; }
    assert.fail('opened');
  };
  const macFlipped = (sealed) => {
    const out = Buffer.from(sealed);
    out[13 + out.readUInt32BE(9)] ^= 1; // the header MAC's first byte
    return out;
  };
  const sealed = seal(data, [passphrase('right', { workFactor: 10 })]);
  assert.equal(messageOf(sealed, passphrase('wrong')), messageOf(macFlipped(sealed), passphrase('right')));
  const key = fernetKey(shared());
  const byKey = seal(data, [key]);
  const entryFlipped = Buffer.from(byKey);
  const at = byKey.indexOf(Buffer.from('key', 'ascii'), byKey.indexOf(Buffer.from('salt', 'ascii'))) + 5; // in the wrap
  entryFlipped[at] ^= 1;
  assert.equal(messageOf(entryFlipped, key), messageOf(macFlipped(byKey), key));
});

test('a passphrase is the only recipient of its file (§4.5)', () => {
  assert.throws(() => seal(data, [passphrase('p', { workFactor: 10 }), A.pub]), TypeError);
  assert.throws(() => seal(data, [passphrase('p', { workFactor: 10 }), passphrase('q', { workFactor: 10 })]), TypeError);
});

test('a work factor over the reader limit is refused before any scrypt work, unless raised (R48)', () => {
  const sealed = seal(data, [passphrase('p', { workFactor: 12 })]);
  assert.throws(() => open(sealed, [passphrase('p', { maxWorkFactor: 11 })]), LimitError);
  assert.deepEqual(open(sealed, [passphrase('p', { maxWorkFactor: 12 })]).plaintext, data);
});
