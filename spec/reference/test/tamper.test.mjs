import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { seal, open, EnvelopeError, MalformedError, AuthenticationError } from '../envelope.mjs';
import { A, dissect } from './helpers.mjs';

const plaintext = Buffer.from('forty bytes of plaintext, in 3 chunks!!');
const sealed = seal(plaintext, [A.pub], { chunkSize: 16, metadata: { name: 'm', n: 3 } });
const { headerLen, payloadStart, tokens } = dissect(sealed);

test('sanity: the small file opens', () => {
  assert.deepEqual(open(sealed, [A.priv]).plaintext, plaintext);
  assert.equal(tokens.length, 3);
});

test('every single-byte modification is rejected', () => {
  let count = 0;
  for (let i = 0; i < sealed.length; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const bad = Buffer.from(sealed);
      bad[i] ^= x;
      assert.throws(() => open(bad, [A.priv]), (e) => {
        assert.ok(e instanceof EnvelopeError, `offset ${i}: ${e}`);
        if (i >= payloadStart) assert.ok(e instanceof AuthenticationError, `offset ${i}: ${e.name}`);
        return true;
      });
      count++;
    }
  }
  assert.equal(count, 3 * sealed.length);
});

test('truncation at every offset is rejected', () => {
  for (let len = 0; len < sealed.length; len++) {
    assert.throws(() => open(sealed.subarray(0, len), [A.priv]), (e) => {
      // §8: inside prefix/header/MAC -> MalformedError (R1, R4); inside the payload -> R17/R18/R19.
      const want = len < payloadStart ? MalformedError : AuthenticationError;
      assert.ok(e instanceof want, `length ${len}: ${e.name}`);
      return true;
    });
  }
});

test('appended bytes are rejected (R22)', () => {
  for (const extra of [Buffer.of(0), Buffer.of(0x80), crypto.randomBytes(16), crypto.randomBytes(73), tokens[2]]) {
    assert.throws(() => open(Buffer.concat([sealed, extra]), [A.priv]), AuthenticationError);
  }
});

test('reordered, dropped, duplicated chunks are rejected (R20)', () => {
  const head = sealed.subarray(0, payloadStart);
  const variants = [
    [tokens[1], tokens[0], tokens[2]], [tokens[0], tokens[2]], [tokens[0], tokens[1]],
    [tokens[0], tokens[0], tokens[1], tokens[2]], [tokens[2]], [tokens[0], tokens[1], tokens[2], tokens[2]],
  ];
  for (const v of variants) assert.throws(() => open(Buffer.concat([head, ...v]), [A.priv]), AuthenticationError);
  // A chunk from another file with the same recipient: different K.
  const other = seal(plaintext, [A.pub], { chunkSize: 16 });
  const t2 = dissect(other).tokens;
  assert.throws(() => open(Buffer.concat([head, tokens[0], t2[1], tokens[2]]), [A.priv]), AuthenticationError);
});

test('an OAEP failure is reported exactly like a header MAC failure (R15 = R16)', () => {
  // The wrapped key follows "key" (a3 6b 65 79) and its bin 16 head (c5 01 00).
  const wrappedStart = sealed.indexOf(Buffer.from('a36b6579c50100', 'hex'), 13) + 7;
  assert.ok(wrappedStart > 13);
  const badKey = Buffer.from(sealed);
  badKey[wrappedStart + 100] ^= 1;
  const badMac = Buffer.from(sealed);
  badMac[13 + headerLen] ^= 1;
  const err = (f) => { try { open(f, [A.priv]); } catch (e) { return e; } return null; };
  const [e1, e2] = [err(badKey), err(badMac)];
  assert.ok(e1 instanceof AuthenticationError && e2 instanceof AuthenticationError);
  assert.equal(e1.constructor, e2.constructor);
  assert.equal(e1.message, e2.message);
});
