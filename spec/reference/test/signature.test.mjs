// FORMAT.md §8 (sender signatures) and rules R24-R28, on signed files built by hand
// (test/helpers.mjs `buildSigned`: the tbs and footer written from the spec's text) and on files the
// library seals. Every algorithm of §8.2 runs every case that depends on the algorithm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { seal, open, checkSignature, AuthenticationError, MalformedError, UnsupportedError, SignatureError,
  SignerError, NoMatchingKeyError, InvalidKeyError, EnvelopeError } from '../envelope.mjs';
import { A, B, build, entryFor, libraryToken, chunkMessage, signerKey, buildSigned, tbsOf, tagOf, withS, bigIntOf,
  bytes32, sha256, pem, dissect, tokenLen, encodeMsgpack, ALGORITHMS, SIGNATURE_LENGTH, P256_N, ED25519_L,
  MLDSA65_SPKI_PREFIX, rsaKeyPair, commitOf, signedHeaderOf, reheader, unwrap } from './helpers.mjs';

const K = crypto.randomBytes(32);
const ascii = (n) => Buffer.alloc(n, 0x61);
// Three chunks of chunk_size 16: two full, one of 5 bytes.
const TOKENS = [chunkMessage(0, false, ascii(16)), chunkMessage(1, false, ascii(16)), chunkMessage(2, true, ascii(5))]
  .map((m) => libraryToken(K, m));
const PLAINTEXT = ascii(37);
const SIGNERS = Object.fromEntries(ALGORITHMS.map((alg) => [alg, signerKey(alg)]));
const OTHER = Object.fromEntries(ALGORITHMS.map((alg) => [alg, signerKey(alg)]));
const signed = (signer, opts = {}) => buildSigned({ K, signer, tokens: TOKENS, ...opts });
/** The tbs of buildSigned's header for `signer` (recipients play no part in it). */
const tbsFor = (signer) => tbsOf({ header: { chunk_size: 16, meta: Buffer.of(0x80), commit: commitOf(K), critical: ['signature'],
  signer: { alg: signer.alg, kid: signer.kid, key: signer.spki } }, tags: TOKENS.map(tagOf) });
const fails = (fn, cls, message) => assert.throws(fn, (e) => {
  assert.equal(e.constructor, cls, `${e.name}: ${e.message}`);
  if (message) assert.match(e.message, message);
  return true;
});

// ---- positive: hand-built files open, and report the signer only as "signed by this key"

for (const alg of ALGORITHMS) {
  const s = SIGNERS[alg];

  test(`${alg}: a hand-built signed file opens and reports its signer`, () => {
    const f = signed(s);
    const want = { algorithm: alg, keyId: s.kid.toString('hex'), publicKey: s.spki };
    for (const opts of [{}, { signedBy: [s.pub] }, { signedBy: [OTHER[alg].pub, s.pub] }]) {
      const r = open(f, [A.priv], opts);
      assert.deepEqual(r.plaintext, PLAINTEXT);
      assert.deepEqual(r.signer, want);
    }
    assert.deepEqual(checkSignature(f), want);
    assert.deepEqual(checkSignature(f, { signedBy: [s.pub] }), want);
  });

  test(`${alg}: the library's signed files follow §8.3 (checked with an independent tbs)`, () => {
    for (const size of [0, 15, 16, 40]) {
      const data = crypto.randomBytes(size);
      const meta = { model: 'm', n: size };
      const f = seal(data, [A.pub, B.pub], { chunkSize: 16, metadata: meta, signWith: s.priv });
      const { header, headerBytes, payloadStart } = dissect(f);
      assert.deepEqual(Object.keys(header), ['chunk_size', 'recipients', 'meta', 'commit', 'critical', 'signer']);
      // §6: commit = HKDF(K, "envelope v1 key commitment"), for the K the recipients unwrap.
      assert.deepEqual(Buffer.from(header.commit), commitOf(unwrap(B.priv, Buffer.from(header.recipients[1].key))));
      assert.deepEqual(header.critical, ['signature']);
      assert.deepEqual(Object.keys(header.signer), ['alg', 'kid', 'key']);
      assert.equal(header.signer.alg, alg);
      assert.deepEqual(Buffer.from(header.signer.key), s.spki);
      assert.deepEqual(Buffer.from(header.signer.kid), sha256(s.spki));
      // §7.3: n = floor(L / 16) + 1 tokens, then 32·n + S bytes of footer.
      const n = Math.floor(size / 16) + 1;
      const tokensEnd = payloadStart + (n - 1) * tokenLen(16) + tokenLen(size % 16);
      assert.equal(f.length, tokensEnd + 32 * n + SIGNATURE_LENGTH[alg]);
      const tags = [];
      for (let i = 0; i < n; i++) {
        const end = i < n - 1 ? payloadStart + (i + 1) * tokenLen(16) : tokensEnd;
        tags.push(f.subarray(end - 32, end));
      }
      assert.deepEqual(f.subarray(tokensEnd, tokensEnd + 32 * n), Buffer.concat(tags));
      const sig = f.subarray(tokensEnd + 32 * n);
      // §8.3: for a canonical header, H is the header's bytes without the map prefix and the
      // recipients entry; the same bytes as the entries encoded one by one.
      // Map prefix 0x86 (1 byte), "chunk_size" 16 (12 bytes), "recipients" (11 bytes) and its array.
      assert.equal(headerBytes[0], 0x86);
      const recipientsEnd = 13 + 11 + encodeMsgpack(header.recipients).length;
      const H = Buffer.concat([headerBytes.subarray(1, 13), headerBytes.subarray(recipientsEnd)]);
      assert.deepEqual(H, signedHeaderOf(header));
      assert.ok(s.verify(tbsOf({ H, tags }), sig), 'the signature verifies over the tbs of §8.3');
      const r = open(f, [B.priv], { signedBy: [s.pub] });
      assert.deepEqual([r.plaintext, r.metadata, r.signer.keyId], [data, meta, s.kid.toString('hex')]);
    }
  });

  test(`${alg}: unknown keys in signer are ignored; critical may not name signature twice`, () => {
    open(signed(s, { over: { signer: { alg, kid: s.kid, key: s.spki, comment: 'x' } } }), [A.priv]);
    open(signed(s, { over: { signer: { key: s.spki, alg, kid: s.kid } } }), [A.priv]); // any key order
    assert.throws(() => open(signed(s, { over: { critical: ['signature', 'signature'] } }), [A.priv]), MalformedError); // §3.4, R6
  });
}

test('ecdsa-p256-sha256: the writer makes s low (§8.2), every time', () => {
  // A raw ECDSA s is above n/2 half of the time: 40 seals without a high s cannot be luck (2^-40).
  const s = SIGNERS['ecdsa-p256-sha256'];
  for (let i = 0; i < 40; i++) {
    const f = seal(Buffer.from('x'), [A.pub], { chunkSize: 16, signWith: s.priv });
    assert.ok(bigIntOf(f.subarray(f.length - 32)) <= P256_N / 2n, `seal ${i}: s > n/2`);
  }
});

test('signing keys: PKCS#8 of each algorithm, SEC1 for P-256, ML-DSA seed, expanded and both forms', () => {
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sec1 = ec.privateKey.export({ type: 'sec1', format: 'pem' });
  const spki = ec.publicKey.export({ type: 'spki', format: 'der' });
  let r = open(seal(Buffer.alloc(3), [A.pub], { signWith: sec1 }), [A.priv]);
  assert.equal(r.signer.keyId, sha256(spki).toString('hex'));
  // ML-DSA-65 (RFC 9881): seed [0], expandedKey, and both { seed, expandedKey }.
  const seed = crypto.randomBytes(32);
  const { secretKey, publicKey } = ml_dsa65.keygen(seed);
  const kid = sha256(MLDSA65_SPKI_PREFIX, publicKey).toString('hex');
  const der = (tag, body) => {
    const n = body.length;
    const len = n < 128 ? Buffer.of(n) : n < 256 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
    return Buffer.concat([Buffer.of(tag), len, body]);
  };
  const pkcs8 = (inner) => pem('PRIVATE KEY',
    der(0x30, Buffer.concat([Buffer.from('020100300b0609608648016503040312', 'hex'), der(0x04, inner)])));
  const seedForm = der(0x80, seed);
  const expandedForm = der(0x04, Buffer.from(secretKey));
  const both = der(0x30, Buffer.concat([der(0x04, seed), expandedForm]));
  for (const inner of [seedForm, expandedForm, both]) {
    r = open(seal(Buffer.alloc(3), [A.pub], { signWith: pkcs8(inner) }), [A.priv]);
    assert.equal(r.signer.keyId, kid);
  }
  // Both forms that disagree: refused rather than signing under a key the file does not show.
  const otherExpanded = der(0x04, Buffer.from(ml_dsa65.keygen(crypto.randomBytes(32)).secretKey));
  const mismatch = der(0x30, Buffer.concat([der(0x04, seed), otherExpanded]));
  assert.throws(() => seal(Buffer.alloc(3), [A.pub], { signWith: pkcs8(mismatch) }), InvalidKeyError);
  for (const bad of [A.priv, rsaKeyPair(2048).priv, SIGNERS.ed25519.pub, 'garbage',
    crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    pkcs8(der(0x80, seed.subarray(1)))]) {
    assert.throws(() => seal(Buffer.alloc(3), [A.pub], { signWith: bad }), InvalidKeyError);
  }
});

// ---- R24: the signer map

const ed = SIGNERS.ed25519;
const ec = SIGNERS['ecdsa-p256-sha256'];
const ml = SIGNERS['ml-dsa-65'];
const withKey = (spki, alg = ed.alg) => ({ alg, kid: sha256(spki), key: spki });
const compressedP256 = (() => {
  const point = crypto.ECDH.convertKey(ec.spki.subarray(ec.spki.length - 65), 'prime256v1', undefined, undefined, 'compressed');
  return Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), point]);
})();
const r24 = [
  ['critical names signature, no signer', { signer: undefined }],
  ['signer without critical', { critical: undefined }],
  ['signer with an empty critical', { critical: [] }],
  ['signer a str', { signer: 'ed25519' }],
  ['signer an array', { signer: [ed.alg, ed.kid, ed.spki] }],
  ['signer without alg', { signer: { kid: ed.kid, key: ed.spki } }],
  ['signer without kid', { signer: { alg: ed.alg, key: ed.spki } }],
  ['signer without key', { signer: { alg: ed.alg, kid: ed.kid } }],
  ['alg an int', { signer: { alg: 1, kid: ed.kid, key: ed.spki } }],
  ['alg bin', { signer: { alg: Buffer.from('ed25519'), kid: ed.kid, key: ed.spki } }],
  ['kid a str', { signer: { alg: ed.alg, kid: 'x'.repeat(32), key: ed.spki } }],
  ['key a str', { signer: { alg: ed.alg, kid: ed.kid, key: ed.spki.toString('latin1') } }],
  ['kid 31 bytes', { signer: { alg: ed.alg, kid: ed.kid.subarray(1), key: ed.spki } }],
  ['kid of another key', { signer: { alg: ed.alg, kid: OTHER.ed25519.kid, key: ed.spki } }],
  ['kid SHA-256 of nothing', { signer: { alg: ed.alg, kid: sha256(Buffer.alloc(0)), key: ed.spki } }],
  ['an Ed25519 key under ecdsa-p256-sha256', { signer: withKey(ed.spki, ec.alg) }],
  ['a P-256 key under ed25519', { signer: withKey(ec.spki, ed.alg) }],
  ['an ML-DSA-65 key under ed25519', { signer: withKey(ml.spki, ed.alg) }],
  ['a P-384 key under ecdsa-p256-sha256', { signer: withKey(crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' })
    .publicKey.export({ type: 'spki', format: 'der' }), ec.alg) }],
  ['an RSA key under ed25519', { signer: withKey(crypto.createPublicKey(A.pub).export({ type: 'spki', format: 'der' })) }],
  ['32 raw bytes under ed25519 (not an SPKI)', { signer: withKey(ed.spki.subarray(12)) }],
  ['an Ed25519 SPKI and a trailing byte', { signer: withKey(Buffer.concat([ed.spki, Buffer.of(0)])) }],
  ['an ML-DSA-65 SPKI one byte short', { signer: withKey(ml.spki.subarray(0, ml.spki.length - 1), ml.alg) }],
  ['an ML-DSA-44-sized key under ml-dsa-65', { signer: withKey(Buffer.concat([MLDSA65_SPKI_PREFIX, Buffer.alloc(1312)]), ml.alg) }],
  ['a P-256 key with a compressed point (one key, one key id)', { signer: withKey(compressedP256, ec.alg) }],
];
for (const [name, over] of r24) {
  test(`R24 ${name}`, () => {
    // The signature (by ed) is irrelevant: the header is refused first, with or without keys.
    const f = signed(ed, { over });
    fails(() => open(f, [A.priv]), MalformedError);
    fails(() => checkSignature(f), MalformedError);
  });
}

// ---- R25: algorithms this reader does not implement

for (const alg of ['ml-dsa-87', 'Ed25519', 'ecdsa-p256-sha512', '__proto__', 'constructor', '']) {
  test(`R25 alg ${JSON.stringify(alg)}`, () => {
    const f = signed(ed, { over: { signer: { alg, kid: ed.kid, key: ed.spki } } });
    fails(() => open(f, [A.priv]), UnsupportedError);
    fails(() => open(f, [A.priv], { signedBy: [ed.pub] }), UnsupportedError); // R25 is a header rule: before R28
  });
}

// ---- R26: the footer's length, for each algorithm's S

for (const alg of ALGORITHMS) {
  const s = SIGNERS[alg];
  const S = SIGNATURE_LENGTH[alg];
  const good = signed(s);
  const tokensEnd = good.length - 3 * 32 - S;
  const cases = [
    ['no footer', good.subarray(0, tokensEnd), /truncated/],
    ['footer one byte short', good.subarray(0, good.length - 1), /truncated/],
    ['footer one tag short', Buffer.concat([good.subarray(0, tokensEnd + 64), good.subarray(tokensEnd + 96)]), /truncated/],
    ['signature only half there', good.subarray(0, good.length - Math.floor(S / 2)), /truncated/],
    ['one byte after the footer', Buffer.concat([good, Buffer.of(0)]), /after the signature footer/],
    ['a second signature after the footer', Buffer.concat([good, good.subarray(good.length - S)]), /after the signature footer/],
  ];
  for (const [name, f, message] of cases) {
    test(`R26 ${alg}: ${name}`, () => {
      fails(() => open(f, [A.priv]), SignatureError, message);
      fails(() => checkSignature(f), SignatureError, message);
    });
  }
}

// ---- R27: tags, signature, malleability

for (const alg of ALGORITHMS) {
  const s = SIGNERS[alg];
  const tags = TOKENS.map(tagOf);
  const flipped = (buf, i) => { const b = Buffer.from(buf); b[i] ^= 1; return b; };
  const cases = [
    // Signed over the tokens' tags, footer lists another: caught by comparing footer and tokens.
    ['a footer tag differs from its token\'s (signature over the tokens\' tags)',
      signed(s, { footerTags: [tags[0], flipped(tags[1], 0), tags[2]], tbsTags: tags })],
    // Signed over the footer's tags, which are not the tokens': caught by the same comparison.
    ['a footer tag differs from its token\'s (signature over the footer\'s tags)',
      signed(s, { footerTags: [tags[0], tags[2], tags[1]] })],
    ['the signature with one bit flipped', (() => { const f = signed(s); f[f.length - 7] ^= 0x10; return f; })()],
    ['signed by another key of the same algorithm', signed(s, { signature: OTHER[alg].sign(tbsFor(s)) })],
    ['signed over another chunk size', signed(s, { tbs: { chunk_size: 17 } })],
    ['signed over other metadata', signed(s, { tbs: { meta: encodeMsgpack({ a: 1 }) } })],
    ['signed over another commitment', signed(s, { tbs: { commit: commitOf(crypto.randomBytes(32)) } })],
    ['signed over another critical list', signed(s, { tbs: { critical: [] } })],
    ['signed over another algorithm name', signed(s, { tbs: { signer: { alg: `${alg}x`, kid: s.kid, key: s.spki } } })],
    ['signed over another key', signed(s, { tbs: { signer: { alg, kid: s.kid, key: OTHER[alg].spki } } })],
    ['signed over a signer map with an extra key', signed(s, { tbs: { signer: { alg, kid: s.kid, key: s.spki, x: 1 } } })],
    ['signed over an unknown top-level key the file lacks', signed(s, { tbs: { future: 1 } })],
    ['signed over a chunk count one less', signed(s, { tbsTags: tags.slice(0, 2) })],
    ['signed over H with the recipients entry in it', signed(s, { signature: s.sign(tbsOf({
      H: encodeMsgpack({ chunk_size: 16, recipients: [entryFor(A.pub, K)], meta: Buffer.of(0x80), commit: commitOf(K),
        critical: ['signature'], signer: { alg, kid: s.kid, key: s.spki } }).subarray(1), tags })) })],
    ['signed over the entries in another order', signed(s, { signature: s.sign(tbsOf({ header: { meta: Buffer.of(0x80),
      chunk_size: 16, commit: commitOf(K), critical: ['signature'], signer: { alg, kid: s.kid, key: s.spki } }, tags })) })],
    ['a signature of zeros', signed(s, { signature: Buffer.alloc(SIGNATURE_LENGTH[alg]) })],
  ];
  for (const [name, f] of cases) {
    test(`R27 ${alg}: ${name}`, () => {
      fails(() => open(f, [A.priv]), SignatureError);
      fails(() => open(f, [A.priv], { signedBy: [s.pub] }), SignatureError);
      fails(() => checkSignature(f), SignatureError);
    });
  }
}

test('R27 ecdsa-p256-sha256: a high s is refused, though plain ECDSA accepts it', () => {
  const tbs = tbsFor(ec);
  const high = withS(ec.sign(tbs), true);
  assert.ok(bigIntOf(high.subarray(32)) > P256_N / 2n);
  assert.ok(ec.verify(tbs, high), 'n - s verifies as plain ECDSA: only the s <= n/2 rule refuses it');
  const f = signed(ec, { signature: high });
  fails(() => open(f, [A.priv]), SignatureError);
  fails(() => checkSignature(f), SignatureError);
  // And s = n/2 rounded down is the largest allowed value: the bound is not off by one.
  assert.ok(P256_N % 2n === 1n);
});

test('R27 ecdsa-p256-sha256: r or s of zero, or of n, is refused', () => {
  const sig = ec.sign(tbsFor(ec));
  for (const bad of [Buffer.concat([Buffer.alloc(32), sig.subarray(32)]), Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32)]),
    Buffer.concat([bytes32(P256_N), sig.subarray(32)])]) {
    fails(() => open(signed(ec, { signature: bad }), [A.priv]), SignatureError);
  }
});

test('R27 ed25519: a non-canonical S (S + L) is refused (strict verification)', () => {
  const tbs = tbsFor(ed);
  const sig = ed.sign(tbs);
  const S = BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`);
  const nonCanonical = Buffer.concat([sig.subarray(0, 32), bytes32(S + ED25519_L).reverse()]);
  fails(() => open(signed(ed, { signature: nonCanonical }), [A.priv]), SignatureError);
  fails(() => checkSignature(signed(ed, { signature: nonCanonical })), SignatureError);
});

// ---- R28: pinned signers, before any key is used

test('R28 an unsigned file when signers are pinned', () => {
  const f = build({ K, tokens: TOKENS });
  assert.deepEqual(open(f, [A.priv]).signer, null);
  fails(() => open(f, [A.priv], { signedBy: [ed.pub] }), SignerError, /not signed/);
  fails(() => checkSignature(f), SignerError, /not signed/); // the keyless check needs a signature to check
});

for (const alg of ALGORITHMS) {
  test(`R28 ${alg}: signed by a key that is not pinned`, () => {
    const f = signed(SIGNERS[alg]);
    for (const pins of [[OTHER[alg].pub], ALGORITHMS.map((a) => OTHER[a].pub)]) {
      fails(() => open(f, [A.priv], { signedBy: pins }), SignerError, /not trusted/);
      fails(() => checkSignature(f, { signedBy: pins }), SignerError, /not trusted/);
    }
  });
}

test('R28 comes before the recipient (R13), the header MAC (R16), the payload and the footer (R26)', () => {
  const stranger = signed(ed, { recipients: [entryFor(B.pub, K)] }); // A is no recipient: R13 otherwise
  fails(() => open(stranger, [A.priv]), NoMatchingKeyError);
  fails(() => open(stranger, [A.priv], { signedBy: [OTHER.ed25519.pub] }), SignerError);
  const badMac = signed(ed); badMac[13 + badMac.readUInt32BE(9)] ^= 1;
  fails(() => open(badMac, [A.priv]), AuthenticationError);
  fails(() => open(badMac, [A.priv], { signedBy: [OTHER.ed25519.pub] }), SignerError);
  const noFooter = signed(ed, { footer: [] });
  fails(() => open(noFooter, [A.priv], { signedBy: [OTHER.ed25519.pub] }), SignerError);
  const unsignedNoToken = build({ K, tokens: [] });
  fails(() => open(unsignedNoToken, [A.priv], { signedBy: [ed.pub] }), SignerError);
});

test('signedBy: one key, one key id (a compressed P-256 PEM pins the same key); bad pins are caller errors', () => {
  const f = signed(ec);
  assert.equal(open(f, [A.priv], { signedBy: [pem('PUBLIC KEY', compressedP256)] }).signer.keyId, ec.kid.toString('hex'));
  assert.throws(() => open(f, [A.priv], { signedBy: [] }), TypeError);
  assert.throws(() => open(f, [A.priv], { signedBy: ec.pub }), TypeError);
  for (const bad of [A.pub, ec.priv, 'garbage', crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey
    .export({ type: 'spki', format: 'pem' })]) {
    assert.throws(() => open(f, [A.priv], { signedBy: [bad] }), InvalidKeyError);
  }
});

// ---- a signed file under change: §10 rewrap keeps the signature; every edit of the rest breaks it

test('a rewrap (new recipients, same K, same tokens and footer) keeps the signature valid (§10)', () => {
  // The signer signed an unknown top-level key; a rewrap keeps it, byte for byte and in its place.
  const f = signed(ml, { over: { future: 'an unknown key, signed' } });
  const { payloadStart } = dissect(f);
  const header = { chunk_size: 16, recipients: [entryFor(B.pub, K), entryFor(A.pub, K)], meta: Buffer.of(0x80),
    commit: commitOf(K), critical: ['signature'], signer: { alg: ml.alg, kid: ml.kid, key: ml.spki },
    future: 'an unknown key, signed' };
  const rewrapped = build({ K, header, tokens: [f.subarray(payloadStart)] });
  assert.equal(open(rewrapped, [B.priv], { signedBy: [ml.pub] }).signer.keyId, ml.kid.toString('hex'));
  assert.equal(checkSignature(rewrapped).keyId, ml.kid.toString('hex'));
  // A rewrap that adds an unknown key (or drops one) changes H: the signature no longer verifies.
  for (const future of ['added by the rewrap', undefined]) {
    const h = { ...header, future };
    if (future === undefined) delete h.future;
    const edited = build({ K, header: h, tokens: [f.subarray(payloadStart)] });
    fails(() => open(edited, [B.priv]), SignatureError);
    fails(() => checkSignature(edited), SignatureError);
  }
});

test('signed file: every single-byte change fails; in the footer as a signature error', () => {
  const f = seal(Buffer.from('a signed file of three chunks!!!!!!!!'), [A.pub], { chunkSize: 16, signWith: ed.priv });
  const footerStart = f.length - 3 * 32 - 64;
  const { payloadStart } = dissect(f);
  for (let i = 0; i < f.length; i++) {
    const bad = Buffer.from(f);
    bad[i] ^= 0x41;
    assert.throws(() => open(bad, [A.priv]), (e) => {
      assert.ok(e instanceof EnvelopeError, `offset ${i}: ${e}`);
      if (i >= payloadStart) assert.ok(e instanceof AuthenticationError, `offset ${i}: ${e.name}`);
      if (i >= footerStart) assert.equal(e.constructor, SignatureError, `offset ${i}: ${e.name}`);
      return true;
    });
  }
  for (let len = payloadStart; len < f.length; len++) {
    assert.throws(() => open(f.subarray(0, len), [A.priv]), AuthenticationError, `length ${len}`);
  }
});
