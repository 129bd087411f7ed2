// The sequential reader, openStream (FORMAT.md §7.4): tokens of unknown total length, read in order,
// the timestamp field finding the final token and so the footer (§8.3), R18 told apart from R22/R26.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { seal, open, openStream, AuthenticationError, SignatureError, SignerError, InvalidKeyError, MalformedError }
  from '../envelope.mjs';
import { A, B, dissect, signerKey, tokenLen, build, buildSigned, rawToken, chunkMessage }
  from './helpers.mjs';

const ed = signerKey('ed25519');
const ml = signerKey('ml-dsa-65');

/** Reads a whole stream: { chunks, error, stream } (error: what the loop threw, if anything). */
async function drain(source, keys = [A.priv], opts = {}) {
  const stream = openStream(source, keys, opts);
  const chunks = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
    return { chunks, stream, error: null };
  } catch (error) {
    return { chunks, stream, error };
  }
}

/** The file cut into pieces of the given sizes (cycled): an iterable source. */
function pieces(file, sizes) {
  const out = [];
  for (let p = 0, i = 0; p < file.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(file.subarray(p, p + n));
    p += n;
  }
  return out;
}

test('a stream in any slicing gives what open() gives, unsigned and signed', async () => {
  for (const [signWith, signer] of [[undefined, null], [ed.priv, ed], [ml.priv, ml]]) {
    for (const size of [0, 1, 15, 16, 17, 100, 1000]) {
      const data = crypto.randomBytes(size);
      const f = seal(data, [A.pub], { chunkSize: 16, metadata: { size }, signWith });
      const whole = open(f, [A.priv]);
      for (const sizes of [[1], [9], [13, 1, 1000], [f.length]]) {
        // A Node Readable (an async iterable) for one slicing, plain arrays for the others.
        const source = sizes[0] === 9 ? Readable.from(pieces(f, sizes)) : pieces(f, sizes);
        const { chunks, stream, error } = await drain(source, [A.priv], signer ? { signedBy: [signer.pub] } : {});
        assert.equal(error, null, `size ${size}, pieces ${sizes}: ${error}`);
        assert.deepEqual(Buffer.concat(chunks), data);
        assert.deepEqual(stream.metadata, { size });
        assert.equal(stream.chunkSize, 16);
        assert.equal(stream.chunkCount, whole.chunkCount);
        assert.deepEqual(stream.signer, whole.signer);
      }
    }
  }
});

test('chunks are released as they verify, before the source ends (no file length needed)', async () => {
  const f = seal(crypto.randomBytes(16 * 10 + 3), [A.pub], { chunkSize: 16, signWith: ed.priv });
  const { payloadStart } = dissect(f);
  let sent = 0;
  async function* source() { // yields one byte at a time and counts them
    for (let i = 0; i < f.length; i++) { sent++; yield f.subarray(i, i + 1); }
  }
  const stream = openStream(source(), [A.priv]);
  let first = null;
  for await (const chunk of stream) if (first === null) first = sent;
  // The first chunk came out right after its token, long before the end, and the metadata before it.
  assert.equal(first, payloadStart + tokenLen(16));
  assert.equal(stream.signer.keyId, ed.kid.toString('hex'));
});

test('R18 and R22 are told apart: a cut stream versus bytes after the final token', async () => {
  const f = seal(crypto.randomBytes(40), [A.pub], { chunkSize: 16 });
  const { payloadStart, tokens } = dissect(f);
  for (let len = payloadStart + 1; len < f.length; len++) {
    const { error } = await drain(pieces(f.subarray(0, len), [7]));
    assert.ok(error instanceof AuthenticationError && /truncated/.test(error.message), `length ${len}: ${error}`);
  }
  for (const extra of [Buffer.of(0), tokens[0], crypto.randomBytes(100)]) {
    const { error } = await drain(pieces(Buffer.concat([f, extra]), [5]));
    assert.ok(error instanceof AuthenticationError && /after the final token/.test(error.message), `${error}`);
  }
  const { error } = await drain(pieces(f.subarray(0, payloadStart), [7]));
  assert.match(error.message, /no token/); // R17
});

test('a signed stream: the footer is found by the final token, cut or extended footers are R26', async () => {
  const f = seal(crypto.randomBytes(40), [A.pub], { chunkSize: 16, signWith: ed.priv });
  for (const [bytes, message] of [[f.subarray(0, f.length - 1), /truncated/], [Buffer.concat([f, Buffer.of(0)]), /after the signature footer/]]) {
    const { error, chunks, stream } = await drain(pieces(bytes, [11]));
    assert.ok(error instanceof SignatureError && message.test(error.message), `${error}`);
    assert.equal(Buffer.concat(chunks).length, 40); // released, each verified, before the footer failed
    assert.equal(stream.signer, null); // never reported as signed
  }
});

test('a bad signature fails the loop after the chunks: a caller writing a file must not keep it', async () => {
  const f = seal(crypto.randomBytes(40), [A.pub], { chunkSize: 16, signWith: ml.priv });
  f[f.length - 100] ^= 1;
  const { error, chunks, stream } = await drain(pieces(f, [64]));
  assert.ok(error instanceof SignatureError, `${error}`);
  assert.equal(chunks.length, 3);
  assert.equal(stream.signer, null);
  assert.equal(stream.chunkCount, null);
});

test('a damaged token stops the stream at that token', async () => {
  const f = seal(crypto.randomBytes(16 * 5), [A.pub], { chunkSize: 16 });
  const { payloadStart } = dissect(f);
  f[payloadStart + 2 * tokenLen(16) + 30] ^= 1; // inside token 2
  const { error, chunks } = await drain(pieces(f, [10]));
  assert.ok(error instanceof AuthenticationError, `${error}`);
  assert.equal(chunks.length, 2);
});

test('R28 and key errors come before any chunk', async () => {
  const signed = seal(crypto.randomBytes(40), [A.pub], { chunkSize: 16, signWith: ed.priv });
  const unsigned = seal(crypto.randomBytes(40), [A.pub], { chunkSize: 16 });
  for (const [f, pins] of [[signed, [ml.pub]], [unsigned, [ed.pub]]]) {
    const { error, chunks } = await drain(pieces(f, [1000]), [A.priv], { signedBy: pins });
    assert.ok(error instanceof SignerError, `${error}`);
    assert.equal(chunks.length, 0);
  }
  // Keys are loaded when the stream is created, before the source is touched.
  let touched = false;
  const source = { async *[Symbol.asyncIterator]() { touched = true; yield signed; } };
  assert.throws(() => openStream(source, ['garbage']), InvalidKeyError);
  assert.throws(() => openStream(source, [A.priv], { signedBy: [A.pub] }), InvalidKeyError);
  assert.equal(touched, false);
  const { error } = await drain(pieces(signed.subarray(0, 100), [1000]), [B.priv]);
  assert.ok(error instanceof MalformedError); // R4: the stream ended inside the header
});

test('openStream takes iterables of Buffers, not a Buffer, and reads once', async () => {
  const f = seal(Buffer.from('once'), [A.pub], { chunkSize: 16 });
  assert.throws(() => openStream(f, [A.priv]), TypeError);
  assert.throws(() => openStream('text', [A.priv]), TypeError);
  const { error } = await drain([[1, 2, 3]]);
  assert.ok(error instanceof TypeError);
  const stream = openStream([f.subarray(0, 50), f.subarray(50)], [A.priv]); // a plain array is a source too
  const got = [];
  for await (const c of stream) got.push(c);
  assert.equal(Buffer.concat(got).toString(), 'once');
  await assert.rejects(async () => { for await (const c of stream) got.push(c); }, TypeError);
});

// §7.4: a last token whose timestamp field is 0, or announces a length other than its own, makes a
// sequential reader read a token of another length; it then reports R18, R19 or R20 (all
// authentication errors with a payload message, never success and never a signature error).
test('a last token with a wrong timestamp field fails as R18, R19 or R20, unsigned and signed', async () => {
  const K = crypto.randomBytes(32);
  const T = tokenLen(16); // 89
  const allowed = /^(payload authentication failed|payload is truncated)$/;
  // Last chunks of 5 bytes (a 73-byte token) and of 10 bytes (an 89-byte token, as long as T).
  for (const last of [Buffer.alloc(5, 0x61), Buffer.alloc(10, 0x61)]) {
    const own = tokenLen(last.length);
    for (const timestamp of [0, own === T ? 73 : T, own + 16, 1]) {
      const tokens = [rawToken(K, chunkMessage(0, false, Buffer.alloc(16, 0x61))), rawToken(K, chunkMessage(1, true, last), { timestamp })];
      for (const file of [build({ K, tokens }), buildSigned({ K, signer: ed, tokens })]) {
        for (const { error } of [await drain([file]), await drain(pieces(file, [7, 64]))]) {
          assert.ok(error instanceof AuthenticationError && !(error instanceof SignatureError), `${own}/${timestamp}: ${error}`);
          assert.match(error.message, allowed);
        }
        assert.throws(() => open(file, [A.priv]), (e) => e.constructor === AuthenticationError && allowed.test(e.message));
      }
    }
  }
});

// §8.3 "Memory": the footer's tags are hashed as they arrive, so the footer may come in any pieces;
// every cut and every changed byte of it still fails as R26 or R27.
test('a footer read in pieces: cuts are R26, changed tags or signature R27', async () => {
  const f = seal(crypto.randomBytes(40 * 16 + 3), [A.pub], { chunkSize: 16, signWith: ed.priv });
  const footerStart = f.length - 41 * 32 - 64;
  const { chunks, error } = await drain(pieces(f, [5, 32, 1, 100]));
  assert.equal(error, null);
  assert.equal(chunks.length, 41);
  for (let len = footerStart; len < f.length; len += 13) {
    const { error: e } = await drain(pieces(f.subarray(0, len), [5, 32, 1, 100]));
    assert.ok(e instanceof SignatureError && /truncated/.test(e.message), `length ${len}: ${e}`);
  }
  for (let i = footerStart; i < f.length; i += 29) {
    const bad = Buffer.from(f);
    bad[i] ^= 0x20;
    const { error: e } = await drain(pieces(bad, [3, 33]));
    assert.ok(e instanceof SignatureError && /does not (match|verify)/.test(e.message), `offset ${i}: ${e}`);
  }
});
