// FORMAT.md §8.1 (R24): a signer's `key` must be a valid public key of its algorithm, checked when
// the header is decoded, before any signature: an invalid key is R24 (MalformedError), never R27,
// in every reader (open, openStream, checkSignature). The files come from the library's own writer
// (seal) with the signer map replaced by byte surgery (helpers `reheader`, which recomputes the
// header MAC under K), so that the key is the only thing wrong. A valid key that did not sign shows
// as R27 instead: the control that the refusal is the key rule's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { seal, open, openStream, checkSignature, MalformedError, SignatureError, InvalidKeyError } from '../envelope.mjs';
import { A, signerKey, sha256, pem, dissect, reheader, unwrap, bytes32, MLDSA65_SPKI_PREFIX } from './helpers.mjs';

const ed = signerKey('ed25519');
const ec = signerKey('ecdsa-p256-sha256');
const ml = signerKey('ml-dsa-65');
const base = (s) => seal(Buffer.from('signed payload'), [A.pub], { chunkSize: 16, signWith: s.priv });
const FILES = { ed25519: base(ed), 'ecdsa-p256-sha256': base(ec), 'ml-dsa-65': base(ml) };
const K = Object.fromEntries(Object.entries(FILES).map(([alg, f]) =>
  [alg, unwrap(A.priv, Buffer.from(dissect(f).header.recipients[0].key))]));
/** The library's signed file of `alg`, its signer's key replaced by `spki` (kid = SHA-256(spki)). */
const withKey = (alg, spki) => reheader(FILES[alg], K[alg], (h) => { h.signer = { alg, kid: sha256(spki), key: spki }; });

/** The error class each reader raises on `file` (null when it opens). */
async function outcomes(file) {
  const run = async (fn) => { try { await fn(); return null; } catch (e) { return e.constructor; } };
  return {
    open: await run(() => open(file, [A.priv])),
    stream: await run(async () => { for await (const chunk of openStream([file], [A.priv])) assert.ok(chunk); }),
    check: await run(() => checkSignature(file)),
  };
}
const everyReader = (cls) => ({ open: cls, stream: cls, check: cls });

test('surgery control: an unchanged header is re-encoded byte for byte, and the files verify', async () => {
  for (const [alg, s] of [['ed25519', ed], ['ecdsa-p256-sha256', ec], ['ml-dsa-65', ml]]) {
    assert.deepEqual(reheader(FILES[alg], K[alg], (h) => h), FILES[alg]);
    assert.deepEqual(withKey(alg, s.spki), FILES[alg]);
    assert.deepEqual(await outcomes(FILES[alg]), everyReader(null));
  }
});

// ---- ed25519: y < p, a curve point (x = 0 only with sign bit 0), not of small order

const P = 2n ** 255n - 19n;
const ED_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const edSpki = (raw) => Buffer.concat([ED_SPKI_PREFIX, raw]);
/** RFC 8032 encoding of y (little-endian), with the sign bit of x. */
const encodeY = (y, sign = 0) => { const b = bytes32(y).reverse(); b[31] |= sign << 7; return b; };

// The eight points whose order divides 8, as their canonical encodings (the list libsodium and
// others publish): the identity, the point of order 2, two of order 4, four of order 8.
const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000', // (0, 1), the identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // (0, -1), order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // (sqrt(-1), 0), order 4
  '0000000000000000000000000000000000000000000000000000000000000080', // (-sqrt(-1), 0), order 4
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
];
// Small y values, checked against an independent Ed25519 implementation when written: 3 encodes a
// point of large order, 2 and 7 encode no point (x² = (y² - 1)/(d·y² + 1) has no square root).
const Y_VALID = 3n;
const Y_NO_POINT = [2n, 7n];

test('ed25519: a valid key that did not sign is R27 (the control for the cases below)', async () => {
  assert.deepEqual(await outcomes(withKey('ed25519', edSpki(encodeY(Y_VALID)))), everyReader(SignatureError));
  assert.deepEqual(await outcomes(withKey('ed25519', edSpki(encodeY(Y_VALID, 1)))), everyReader(SignatureError));
  for (let i = 0; i < 10; i++) { // random keys are valid
    const spki = crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    assert.deepEqual(await outcomes(withKey('ed25519', spki)), everyReader(SignatureError));
  }
});

const edInvalid = [
  [`y + p for y = ${Y_VALID} (a second encoding of a valid key)`, encodeY(Y_VALID + P)],
  ['y + p for y = 0 (an order-4 point encoded again)', encodeY(P)],
  ['y + p for y = 1 (the identity encoded again)', encodeY(P + 1n)],
  ['y = 2^255 - 1, the largest y field', encodeY(2n ** 255n - 1n)],
  ['y = p exactly, sign bit set', encodeY(P, 1)],
  ...Y_NO_POINT.flatMap((y) => [[`y = ${y}, no curve point`, encodeY(y)], [`y = ${y}, no curve point, sign bit set`, encodeY(y, 1)]]),
  ['x = 0 with sign bit 1 (y = 1)', encodeY(1n, 1)],
  ['x = 0 with sign bit 1 (y = p - 1)', encodeY(P - 1n, 1)],
  ...SMALL_ORDER.map((hex, i) => [`small-order point ${i + 1} of 8 (${hex.slice(0, 8)}…)`, Buffer.from(hex, 'hex')]),
];
for (const [name, raw] of edInvalid) {
  test(`R24 ed25519: ${name}`, async () => {
    assert.equal(raw.length, 32);
    // node:crypto loads any 32 bytes as an Ed25519 key: the check is the implementation's own.
    assert.doesNotThrow(() => crypto.createPublicKey({ key: edSpki(raw), format: 'der', type: 'spki' }));
    assert.deepEqual(await outcomes(withKey('ed25519', edSpki(raw))), everyReader(MalformedError));
    // Pinning such a key is a caller error: no valid file can be signed by it.
    assert.throws(() => open(FILES.ed25519, [A.priv], { signedBy: [pem('PUBLIC KEY', edSpki(raw))] }), InvalidKeyError);
  });
}

test('R24 ed25519: a signature anyone can make under the identity key verifies in node, and is refused', async () => {
  // R = the base point B, S = 1: [S]B = R + [k]·identity for every message (why §8.1 refuses it).
  const identity = edSpki(Buffer.from(SMALL_ORDER[0], 'hex'));
  const forged = Buffer.concat([Buffer.from('58'.padEnd(64, '6'), 'hex'), encodeY(1n)]);
  const key = crypto.createPublicKey({ key: identity, format: 'der', type: 'spki' });
  assert.ok(crypto.verify(null, Buffer.from('any message at all'), key, forged));
  const f = withKey('ed25519', identity);
  const file = Buffer.concat([f.subarray(0, f.length - 64), forged]);
  assert.deepEqual(await outcomes(file), everyReader(MalformedError));
});

// ---- ecdsa-p256-sha256: the point lies on P-256 (node:crypto refuses the others; checked here)

const EC_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const EC_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const ecPow = (b, e) => { let r = 1n; for (b %= EC_P; e > 0n; e >>= 1n, b = (b * b) % EC_P) if (e & 1n) r = (r * b) % EC_P; return r; };
const EC_SPKI_PREFIX = ec.spki.subarray(0, 26); // id-ecPublicKey, prime256v1, BIT STRING of 66 bytes
const ecSpki = (x, y) => Buffer.concat([EC_SPKI_PREFIX, Buffer.of(4), bytes32(x), bytes32(y)]);
/** The smallest x >= 0 with a point (x, y) on P-256 (p = 3 mod 4, so y = rhs^((p+1)/4)). */
const smallPoint = (() => {
  for (let x = 0n; ; x++) {
    const rhs = (((x * x * x - 3n * x + EC_B) % EC_P) + EC_P) % EC_P;
    const y = ecPow(rhs, (EC_P + 1n) / 4n);
    if ((y * y) % EC_P === rhs) return [x, y];
  }
})();
const nodeLoads = (spki) => { try { crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }); return true; } catch { return false; } };

test('ecdsa-p256-sha256: a valid key that did not sign is R27 (the control)', async () => {
  const spki = ecSpki(...smallPoint);
  assert.ok(nodeLoads(spki));
  assert.deepEqual(await outcomes(withKey('ecdsa-p256-sha256', spki)), everyReader(SignatureError));
});

const [sx, sy] = smallPoint;
const offCurve = (() => { const b = Buffer.from(ec.spki); b[b.length - 1] ^= 1; return b; })();
const ecInvalid = [
  ['a real key with the last bit of y flipped (off the curve)', offCurve],
  ['(x, y + 1), off the curve', ecSpki(sx, sy + 1n)],
  ['(0, 0): what the point at infinity would be, off the curve', ecSpki(0n, 0n)],
  ['x + p for a point (x, y) on the curve (a coordinate >= p)', ecSpki(sx + EC_P, sy)],
];
for (const [name, spki] of ecInvalid) {
  test(`R24 ecdsa-p256-sha256: ${name}`, async () => {
    assert.equal(spki.length, 91);
    assert.equal(nodeLoads(spki), false, 'node:crypto must refuse a point not on P-256');
    assert.deepEqual(await outcomes(withKey('ecdsa-p256-sha256', spki)), everyReader(MalformedError));
  });
}

// ---- ml-dsa-65: any 1952-byte string is a key (FIPS 204); other lengths are not

test('ml-dsa-65: any 1952 bytes are a key (R27 when it did not sign); another length is R24', async () => {
  for (const pk of [crypto.randomBytes(1952), Buffer.alloc(1952), Buffer.alloc(1952, 0xff)]) {
    assert.deepEqual(await outcomes(withKey('ml-dsa-65', Buffer.concat([MLDSA65_SPKI_PREFIX, pk]))), everyReader(SignatureError));
  }
  assert.deepEqual(await outcomes(withKey('ml-dsa-65', Buffer.concat([MLDSA65_SPKI_PREFIX, crypto.randomBytes(1953)]))),
    everyReader(MalformedError));
});
