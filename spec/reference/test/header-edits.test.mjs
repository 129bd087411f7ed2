// FORMAT.md §6 (the key commitment, R6 and R16) and §8.3/§10 (the signed header H: every
// top-level entry but `recipients`), on files from the library's own writer (seal) whose header is
// edited by byte surgery (helpers `reheader`: the header MAC is recomputed under K, so only the
// rule under test breaks). Every reader runs: open, openStream and, where it applies, the keyless
// checkSignature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { seal, open, openStream, checkSignature, MalformedError, AuthenticationError, SignatureError }
  from '../envelope.mjs';
import { A, B, signerKey, buildSigned, entryFor, wrap, dissect, reheader, unwrap, commitOf, libraryToken, chunkMessage,
  kidOf, prefixFor, headerMac } from './helpers.mjs';

const PLAINTEXT = Buffer.from('forty bytes of plaintext, in 3 chunks!!');
const ed = signerKey('ed25519');
const UNSIGNED = seal(PLAINTEXT, [A.pub], { chunkSize: 16, metadata: { n: 1 } });
const SIGNED = seal(PLAINTEXT, [A.pub], { chunkSize: 16, metadata: { n: 1 }, signWith: ed.priv });
const keyOf = (f) => unwrap(A.priv, Buffer.from(dissect(f).header.recipients[0].key));
const K_UNSIGNED = keyOf(UNSIGNED);
const K = keyOf(SIGNED);
const flipped = (buf, i = 0) => { const b = Buffer.from(buf); b[i] ^= 1; return b; };

/** Each reader's error on `file` ({ constructor, message }), or null when it succeeds. */
async function outcomes(file, key = A.priv) {
  const run = async (fn) => {
    try { await fn(); return null; } catch (e) { return { constructor: e.constructor, message: e.message }; }
  };
  return {
    open: await run(() => assert.deepEqual(open(file, [key]).plaintext, PLAINTEXT)),
    stream: await run(async () => {
      const chunks = [];
      for await (const c of openStream([file], [key])) chunks.push(c);
      assert.deepEqual(Buffer.concat(chunks), PLAINTEXT);
    }),
    check: await run(() => checkSignature(file)),
  };
}
const errorOf = (o) => o && o.constructor;

test('surgery control: re-encoding the header unchanged gives the same bytes; both files open', async () => {
  assert.deepEqual(reheader(UNSIGNED, K_UNSIGNED, (h) => h), UNSIGNED);
  assert.deepEqual(reheader(SIGNED, K, (h) => h), SIGNED);
  assert.deepEqual(Object.keys(dissect(SIGNED).header), ['chunk_size', 'recipients', 'meta', 'commit', 'critical', 'signer']);
  assert.deepEqual(Buffer.from(dissect(SIGNED).header.commit), commitOf(K));
  assert.deepEqual(Buffer.from(dissect(UNSIGNED).header.commit), commitOf(K_UNSIGNED));
  assert.deepEqual(await outcomes(SIGNED), { open: null, stream: null, check: null });
});

// ---- §6, R6: commit missing or not a 32-byte bin

const r6 = [
  ['missing', (h) => { delete h.commit; }],
  ['31 bytes', (h) => { h.commit = h.commit.subarray(1); }],
  ['33 bytes', (h) => { h.commit = Buffer.concat([h.commit, Buffer.of(0)]); }],
  ['a str', (h) => { h.commit = Buffer.from(h.commit).toString('latin1'); }],
  ['an int', (h) => { h.commit = 0; }],
];
for (const [name, edit] of r6) {
  test(`R6 commit ${name}`, async () => {
    const o = await outcomes(reheader(UNSIGNED, K_UNSIGNED, edit));
    assert.deepEqual([errorOf(o.open), errorOf(o.stream)], [MalformedError, MalformedError]);
    const s = await outcomes(reheader(SIGNED, K, edit)); // a header rule: the keyless check refuses it too
    assert.deepEqual([errorOf(s.open), errorOf(s.stream), errorOf(s.check)], [MalformedError, MalformedError, MalformedError]);
  });
}

// ---- §6, R16: a wrong commitment fails exactly as a wrong header MAC (and an OAEP failure, R15)

test('R16 a commit that is not the commitment of K: same error and message as a header MAC failure', async () => {
  const headerLen = UNSIGNED.readUInt32BE(9);
  const badMac = flipped(UNSIGNED, 13 + headerLen + 5);
  const badWrap = reheader(UNSIGNED, K_UNSIGNED, (h) => { h.recipients[0].key = wrap(A.pub, crypto.randomBytes(32)); });
  const reference = await outcomes(badMac);
  assert.equal(errorOf(reference.open), AuthenticationError);
  for (const edit of [
    (h) => { h.commit = flipped(h.commit, 31); }, // one bit
    (h) => { h.commit = commitOf(crypto.randomBytes(32)); }, // another key's
    (h) => { h.commit = Buffer.alloc(32); },
  ]) {
    const o = await outcomes(reheader(UNSIGNED, K_UNSIGNED, edit));
    assert.deepEqual([o.open, o.stream], [reference.open, reference.stream]);
  }
  assert.deepEqual((await outcomes(badWrap)).open, reference.open); // R15, for completeness
});

test('R16 a wrong commit in a signed file: R16 for a recipient, R27 for the keyless check (commit is signed)', async () => {
  const f = reheader(SIGNED, K, (h) => { h.commit = flipped(h.commit, 0); });
  const o = await outcomes(f);
  assert.deepEqual([o.open.constructor, o.stream.constructor, o.check.constructor],
    [AuthenticationError, AuthenticationError, SignatureError]);
  assert.equal(o.open.message, (await outcomes(flipped(SIGNED, 13 + SIGNED.readUInt32BE(9)))).open.message);
});

test('§6 why: a recipient re-wrapping the tokens under K[0:16] || other fails (R16, or R27 with a new commit)', async () => {
  // The tokens' tags depend only on K[0:16], so a key that keeps that half keeps every tag valid.
  const K2 = Buffer.concat([K.subarray(0, 16), crypto.randomBytes(16)]);
  const rewrapTo = (commit) => reheader(SIGNED, K2, (h) => { h.recipients = [entryFor(A.pub, K2)]; if (commit) h.commit = commit; });
  const kept = await outcomes(rewrapTo(null)); // the old commit: it is not K2's
  assert.deepEqual([errorOf(kept.open), errorOf(kept.stream)], [AuthenticationError, AuthenticationError]);
  assert.equal(errorOf(kept.check), null); // nothing the keyless check sees changed
  // With K2's commitment the header authenticates, and the tokens' tags still verify; the keyless
  // check refuses it (the signer vouched for K's commitment), and a recipient fails on the first
  // token, which does not decrypt under the other half.
  const recommitted = await outcomes(rewrapTo(commitOf(K2)));
  assert.equal(errorOf(recommitted.check), SignatureError);
  assert.deepEqual([errorOf(recommitted.open), errorOf(recommitted.stream)], [AuthenticationError, AuthenticationError]);
});

// ---- §8.3: H is every top-level entry but recipients, as stored; §10: recipients are not signed

const signedOutcome = async (f, key = A.priv) => {
  const o = await outcomes(f, key);
  return [errorOf(o.open), errorOf(o.stream), errorOf(o.check)];
};
const R27 = [SignatureError, SignatureError, SignatureError];
const OK = [null, null, null];

const r27 = [
  ['an unknown top-level key added', (h) => { h.future = 1; }],
  ['an extra key added to signer', (h) => { h.signer.comment = 'x'; }],
  ['the signer map\'s keys reordered', (h) => { const { alg, kid, key } = h.signer; h.signer = { key, alg, kid }; }],
  ['meta moved after commit (H follows the file order)', (h) => { const { meta } = h; delete h.meta; return { ...h, meta }; }],
  ['chunk_size written as a uint32 (same value, other bytes)', null],
];
for (const [name, edit] of r27) {
  test(`R27 signed file edited: ${name}`, async () => {
    let f;
    if (edit) f = reheader(SIGNED, K, edit);
    else { // raw surgery: 0x10 (fixint 16) -> 0xce 00 00 00 10, header_len + 4, MAC recomputed under K
      const hb = SIGNED.subarray(13, 13 + SIGNED.readUInt32BE(9));
      assert.equal(hb[12], 0x10);
      const h = Buffer.concat([hb.subarray(0, 12), Buffer.from('ce00000010', 'hex'), hb.subarray(13)]);
      const prefix = prefixFor(h.length);
      f = Buffer.concat([prefix, h, headerMac(K, Buffer.concat([prefix, h])), SIGNED.subarray(13 + hb.length + 32)]);
    }
    assert.deepEqual(await signedOutcome(f), R27);
  });
}

// A file whose signer signed an unknown key and an extra signer key (the library's writer takes
// neither, so the test writer signs it): changing either afterwards breaks the signature.
const K3 = crypto.randomBytes(32);
const TOKENS3 = [chunkMessage(0, false, PLAINTEXT.subarray(0, 16)), chunkMessage(1, false, PLAINTEXT.subarray(16, 32)),
  chunkMessage(2, true, PLAINTEXT.subarray(32))].map((m) => libraryToken(K3, m));
const EXTRAS = buildSigned({ K: K3, signer: ed, tokens: TOKENS3,
  over: { future: { note: 'signed' }, signer: { alg: ed.alg, kid: ed.kid, key: ed.spki, comment: 'a' } } });

test('a signed unknown key and extra signer key: the file verifies', async () => {
  assert.deepEqual(await signedOutcome(EXTRAS), OK);
  assert.deepEqual(reheader(EXTRAS, K3, (h) => h), EXTRAS);
});

for (const [name, edit] of [
  ['the unknown key\'s value changed', (h) => { h.future.note = 'changed'; }],
  ['the unknown key removed', (h) => { delete h.future; }],
  ['the extra signer key changed', (h) => { h.signer.comment = 'b'; }],
  ['the extra signer key removed', (h) => { delete h.signer.comment; }],
]) {
  test(`R27 signed unknown entries edited: ${name}`, async () => {
    assert.deepEqual(await signedOutcome(reheader(EXTRAS, K3, edit)), R27);
  });
}

// §10: a rewrap changes only the recipients entry; the signature stays valid.
for (const [name, file, key, edit] of [
  ['a recipient added', SIGNED, K, (h) => { h.recipients = [entryFor(B.pub, K), ...h.recipients]; }],
  ['the recipient replaced', SIGNED, K, (h) => { h.recipients = [entryFor(B.pub, K)]; }],
  ['an entry of an unknown type added', SIGNED, K, (h) => { h.recipients.push({ type: 'pq-kem', blob: Buffer.alloc(9) }); }],
  ['the recipients entry moved to the end of the map', SIGNED, K,
    (h) => { const { recipients } = h; delete h.recipients; return { ...h, recipients }; }],
  ['a recipient added, with a signed unknown key and signer key kept', EXTRAS, K3,
    (h) => { h.recipients = [entryFor(B.pub, K3), ...h.recipients]; }],
]) {
  test(`rewrap-style edit keeps the signature: ${name}`, async () => {
    const f = reheader(file, key, edit);
    const kids = dissect(f).header.recipients.map((e) => (e.kid ? Buffer.from(e.kid).toString('hex') : null));
    const openers = [A, B].filter((k) => kids.includes(kidOf(k.pub).toString('hex')));
    assert.ok(openers.length > 0);
    for (const k of openers) assert.deepEqual(await signedOutcome(f, k.priv), OK);
  });
}
