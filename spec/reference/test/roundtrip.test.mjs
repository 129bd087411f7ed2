import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { seal, open, Float, internals, EnvelopeError, NoMatchingKeyError, InvalidKeyError, LimitError }
  from '../envelope.mjs';
import { A, B, rsaKeyPair, dissect, tokenLen, unwrap, kidOf, fernet, chunkMessage, encodeMsgpack } from './helpers.mjs';

test('round trips at chunk boundaries', () => {
  for (const cs of [16, 100, 65536]) {
    for (const size of [0, 1, cs - 1, cs, cs + 1, 3 * cs + 7]) {
      const plaintext = crypto.randomBytes(size);
      const sealed = seal(plaintext, [A.pub], { chunkSize: cs });
      const r = open(sealed, [A.priv]);
      assert.deepEqual(r.plaintext, plaintext, `cs=${cs} size=${size}`);
      const n = Math.floor(size / cs) + 1;
      assert.equal(r.chunkCount, n);
      assert.equal(r.chunkSize, cs);
      // §7.3 layout: every non-final token is T bytes, the final one token_len(size mod cs).
      const { payloadStart } = dissect(sealed);
      assert.equal(sealed.length, payloadStart + (n - 1) * tokenLen(cs) + tokenLen(size % cs));
    }
  }
});

test('multiple recipients, PKCS#1 and larger keys, keys tried in order', () => {
  const C = rsaKeyPair(3072, true);
  const plaintext = crypto.randomBytes(1000);
  const sealed = seal(plaintext, [A.pub, B.pub, C.pub], { chunkSize: 64 });
  for (const k of [A, B, C]) assert.deepEqual(open(sealed, [k.priv]).plaintext, plaintext);
  const stranger = rsaKeyPair(2048);
  assert.deepEqual(open(sealed, [stranger.priv, C.priv]).plaintext, plaintext);
  assert.equal(dissect(sealed).header.recipients.length, 3);
  // The same key twice yields one entry (§9: no duplicate kid).
  assert.equal(dissect(seal(plaintext, [A.pub, A.pub])).header.recipients.length, 1);
});

test('wrong key -> NoMatchingKeyError', () => {
  const sealed = seal(Buffer.from('secret'), [A.pub]);
  assert.throws(() => open(sealed, [B.priv]), NoMatchingKeyError);
  assert.throws(() => open(sealed, []), NoMatchingKeyError);
});

test('key policy (R23) -> InvalidKeyError', () => {
  const small = rsaKeyPair(1024);
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const sealed = seal(Buffer.from('x'), [A.pub]);
  for (const pub of [small.pub, ec.publicKey, 'garbage', A.priv.replace('PRIVATE', 'PUBLIC')]) {
    assert.throws(() => seal(Buffer.from('x'), [A.pub, pub]), InvalidKeyError);
  }
  for (const priv of [small.priv, ec.privateKey, 'garbage', A.pub]) {
    assert.throws(() => open(sealed, [priv, A.priv]), InvalidKeyError);
  }
});

test('writer limits', () => {
  assert.throws(() => seal(Buffer.alloc(1), [A.pub], { chunkSize: 15 }), LimitError);
  assert.throws(() => seal(Buffer.alloc(1), [A.pub], { chunkSize: 16_777_217 }), LimitError);
  assert.throws(() => seal(Buffer.alloc(1), [A.pub], { metadata: { big: Buffer.alloc(65_536) } }), LimitError);
  let deep = 1;
  for (let i = 0; i < 8; i++) deep = [deep]; // metadata map + 8 arrays = depth 9
  assert.throws(() => seal(Buffer.alloc(1), [A.pub], { metadata: { deep } }), LimitError);
  deep = deep[0]; // depth 8 is allowed
  assert.deepEqual(open(seal(Buffer.alloc(1), [A.pub], { metadata: { deep } }), [A.priv]).metadata, { deep });
});

test('metadata round trip keeps every type distinct', () => {
  const metadata = {
    nil: null, t: true, f: false, str: 'héllo ✓', empty: '', bin: Buffer.from([0, 1, 255]),
    ints: [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER,
      -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER],
    bigs: [2n ** 53n, 2n ** 64n - 1n, -(2n ** 63n)],
    floats: [new Float(1.5), new Float(2), new Float(NaN), new Float(-Infinity), new Float(0.25, 32), new Float(-0)],
    nested: { a: [{ b: {} }, []] },
    __proto__key: 1,
    'envelope.framework': 'none',
  };
  Object.defineProperty(metadata, '__proto__', { value: 'own', enumerable: true });
  const got = open(seal(Buffer.alloc(0), [A.pub], { metadata }), [A.priv]).metadata;
  assert.deepEqual(got, metadata);
  assert.ok(got.floats[1] instanceof Float && got.floats[4].bits === 32 && Object.is(got.floats[5].value, -0));
  assert.equal(Object.getPrototypeOf(got), Object.prototype);
  // Map input keeps its order in the encoding.
  const m = open(seal(Buffer.alloc(0), [A.pub], { metadata: new Map([['z', 1], ['a', 2]]) }), [A.priv]).metadata;
  assert.deepEqual(Object.keys(m), ['z', 'a']);
});

test('writer emits the canonical form of §3.1', () => {
  const sealed = seal(Buffer.alloc(10), [A.pub, B.pub], { chunkSize: 300, metadata: { k: [1, 'v'] } });
  const { header, headerBytes } = dissect(sealed);
  assert.deepEqual(Object.keys(header), ['chunk_size', 'recipients', 'meta', 'commit']);
  assert.equal(header.commit.length, 32);
  for (const e of header.recipients) assert.deepEqual(Object.keys(e), ['type', 'kid', 'key']);
  // @msgpack/msgpack writes shortest forms for these types: re-encoding must reproduce the bytes.
  assert.deepEqual(Buffer.from(msgpackEncode(header)), headerBytes);
  assert.deepEqual(Buffer.from(header.meta), Buffer.from(msgpackEncode({ k: [1, 'v'] })));
  assert.deepEqual(Buffer.from(header.recipients[0].kid), kidOf(A.pub));
  assert.equal(header.recipients[0].key.length, 256);
});

test('a NaN is written as the quiet NaN without payload (§3.1)', () => {
  const negative = new DataView(new ArrayBuffer(8));
  negative.setFloat64(0, NaN);
  negative.setUint8(0, 0xff); // -NaN
  negative.setUint8(7, 1); // with a payload
  assert.equal(internals.encodeCanonical(negative.getFloat64(0)).toString('hex'), 'cb7ff8000000000000');
  assert.equal(internals.encodeCanonical(NaN).toString('hex'), 'cb7ff8000000000000');
});

test('canonical encoder agrees with @msgpack/msgpack (shortest form)', () => {
  const samples = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128,
    -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1, 1.5, -0.1, 1e300, '', 'a'.repeat(31),
    'a'.repeat(32), 'a'.repeat(255), 'a'.repeat(256), 'a'.repeat(65535), 'a'.repeat(65536), true, false, null,
    new Uint8Array(0), new Uint8Array(255), new Uint8Array(256), new Uint8Array(65536),
    [], new Array(15).fill(0), new Array(16).fill(0), new Array(65536).fill(0), {},
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
    Object.fromEntries(Array.from({ length: 65536 }, (_, i) => [`k${i}`, i]))];
  for (const v of samples) {
    assert.deepEqual(internals.encodeCanonical(v), Buffer.from(msgpackEncode(v)), JSON.stringify(v)?.slice(0, 40));
    const back = internals.decodeStrict(internals.encodeCanonical(v));
    if (typeof v === 'number' && !Number.isSafeInteger(v)) assert.ok(back instanceof Float && back.value === v);
    else assert.deepEqual(back, v instanceof Uint8Array ? Buffer.from(v) : v);
  }
  // BigInt: shortest form too (unlike @msgpack/msgpack's fixed 64-bit encoding).
  assert.deepEqual(internals.encodeCanonical(5n), Buffer.of(5));
  assert.deepEqual(internals.encodeCanonical(2n ** 64n - 1n), Buffer.from('cfffffffffffffffff', 'hex'));
  assert.deepEqual(internals.encodeCanonical(-(2n ** 63n)), Buffer.from('d38000000000000000', 'hex'));
  assert.deepEqual(internals.encodeCanonical(new Float(1, 32)), Buffer.from('ca3f800000', 'hex'));
});

test('every chunk is a genuine Fernet token (npm fernet opens it with base64url(K))', () => {
  // The `fernet` library returns the message as UTF-8 text, so use ASCII data and < 128 chunks:
  // then every byte of M_i = u64be(i) || flag || D_i is below 0x80 and the text is lossless.
  for (const [size, cs] of [[0, 16], [15, 16], [16, 16], [1000, 16], [5000, 1000], [100, 65536]]) {
    const plaintext = Buffer.from(Array.from({ length: size }, (_, i) => 32 + (i * 7) % 95));
    const sealed = seal(plaintext, [A.pub], { chunkSize: cs });
    const { header, tokens } = dissect(sealed);
    const K = unwrap(A.priv, Buffer.from(header.recipients[0].key));
    const secret = new fernet.Secret(K.toString('base64url'));
    tokens.forEach((tok, i) => {
      const text = new fernet.Token({ secret, ttl: 0, token: tok.toString('base64url') }).decode();
      const last = i === tokens.length - 1;
      assert.deepEqual(Buffer.from(text, 'utf8'), chunkMessage(i, last, plaintext.subarray(i * cs, (i + 1) * cs)));
    });
    // A wrong key is refused by the library too.
    const other = new fernet.Secret(crypto.randomBytes(32).toString('base64url'));
    assert.throws(() => new fernet.Token({ secret: other, ttl: 0, token: tokens[0].toString('base64url') }).decode());
  }
});

test('errors are EnvelopeError subclasses with matching names', async () => {
  const mod = await import('../envelope.mjs');
  for (const name of ['MalformedError', 'UnsupportedError', 'LimitError', 'NoMatchingKeyError',
    'AuthenticationError', 'InvalidKeyError']) {
    const e = new mod[name]('x');
    assert.ok(e instanceof EnvelopeError && e instanceof Error);
    assert.equal(e.name, name);
  }
  assert.equal(encodeMsgpack(1).length, 1); // helpers load
});
