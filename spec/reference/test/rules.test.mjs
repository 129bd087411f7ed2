// Every MUST-reject rule of FORMAT.md §9 up to R23, on files built by hand (test/helpers.mjs
// `build`), i.e. by a writer independent of the library: @msgpack/msgpack, the `fernet` npm package,
// node:crypto. Payload cases also pin the message, so that each fails for the reason it names (all
// of R17-R22 share one error class). Signatures (R24-R28) are in signature.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { open, Float, MalformedError, UnsupportedError, LimitError, NoMatchingKeyError, AuthenticationError }
  from '../envelope.mjs';
import { A, B, build, entryFor, kidOf, wrap, encodeMsgpack as mp, libraryToken, rawToken, chunkMessage, prefixFor,
  DRAFT_LABEL, tokenLen, commitOf } from './helpers.mjs';

const K = crypto.randomBytes(32);
const entry = entryFor(A.pub, K);
const EMPTY_META = Buffer.of(0x80);
const COMMIT = commitOf(K);
const final0 = libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)));
const OK = 'ok';
// One message for R15 and R16 (a wrong commitment or header MAC): §4.1 rule 4, §6.
const HEADER = /^header authentication failed$/;
// Reader messages of the payload rules (§7.4): token checks, a stream cut short, bytes appended.
const TOKEN = /^payload authentication failed$/;
const CUT = /^payload is truncated$/;
const NO_TOKEN = /^payload has no token$/;
const APPENDED = /^bytes after the final token$/;
const T16 = tokenLen(16); // 89: every non-final token of a chunk_size 16 file

/** Header object in canonical key order with `over` merged in (undefined removes a key). */
const hdr = (over = {}) => {
  const h = { chunk_size: 16, recipients: [entry], meta: EMPTY_META, commit: COMMIT, ...over };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return h;
};
const file = (over, opts = {}) => build({ K, header: hdr(over), ...opts });
const fileBytes = (headerBytes, opts = {}) => build({ K, headerBytes, ...opts });
const str = (s) => mp(s);
const raw = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.of(p) : p)));
// {d: nest(n)} is nested n deep: the metadata map and n - 1 arrays.
const nest = (depth) => { let v = 0; for (let i = 0; i < depth - 1; i++) v = [v]; return v; };
const tokens = (...ms) => ms.map((m) => libraryToken(K, m));
const ascii = (n) => Buffer.alloc(n, 0x61);

const cases = [
  // positive controls
  ['valid minimal file', OK, file()],
  ['valid multi-chunk file written with the fernet library', OK,
    file({}, { tokens: tokens(chunkMessage(0, false, ascii(16)), chunkMessage(1, false, ascii(16)), chunkMessage(2, true, ascii(5))) })],
  ['keys in non-canonical order, non-shortest ints', OK,
    fileBytes(raw(0x84, str('commit'), mp(COMMIT), str('meta'), 0xc4, 1, 0x80, str('recipients'), mp([entry]), str('chunk_size'),
      0xce, 0, 0, 0, 16))],
  ['unknown top-level key is ignored', OK, file({ future: { a: [1, 2] } })],
  ['unknown key nested to the header limit (depth 16) is ignored', OK,
    fileBytes(raw(0x85, mp(hdr()).subarray(1), str('deep'), Buffer.alloc(15, 0x91), 0xc0))],
  ['R5 unknown key nested 17 deep', MalformedError,
    fileBytes(raw(0x85, mp(hdr()).subarray(1), str('deep'), Buffer.alloc(16, 0x91), 0xc0))],
  ['R5 unknown key nested 100000 deep (no stack overflow)', MalformedError,
    fileBytes(raw(0x85, mp(hdr()).subarray(1), str('deep'), Buffer.alloc(99_999, 0x91), 0xc0))],
  ['empty critical array', OK, file({ critical: [] })],
  ['unknown recipient type is skipped', OK, file({ recipients: [{ type: 'pq-kem', blob: 1 }, entry] })],
  ['64-byte unknown type', OK, file({ recipients: [{ type: 'x'.repeat(64) }, entry] })],
  ['chunk_size 16777216', OK, file({ chunk_size: 16_777_216 })],
  ['metadata depth 8', OK, file({ meta: mp({ d: nest(8) }) })],
  ['metadata of exactly 64 KiB', OK, file({ meta: mp({ b: Buffer.alloc(65_530) }) })],
  ['final token as long as T (chunk_size - 1 bytes)', OK,
    file({}, { tokens: tokens(chunkMessage(0, false, ascii(16)), chunkMessage(1, true, ascii(15))) })],

  ['R1 empty file', MalformedError, Buffer.alloc(0)],
  ['R1 12 bytes', MalformedError, file().subarray(0, 12)],
  ['R1 wrong magic', MalformedError, (() => { const f = file(); f[3] = 0x57; return f; })()],
  ['R2 version 2', UnsupportedError, file({}, { version: 2 })],
  ['R2 version 0', UnsupportedError, file({}, { version: 0 })],
  ['R3 header_len 0', MalformedError, raw(prefixFor(0), Buffer.alloc(200))],
  ['R3 header_len 1 MiB + 1 (checked before reading)', LimitError, prefixFor(1_048_577)],
  ['R3 header_len 2^32-1', LimitError, raw(prefixFor(0xffffffff), Buffer.alloc(100))],
  ['R4 file ends inside the header', MalformedError, raw(prefixFor(100), Buffer.alloc(50))],
  ['R4 file ends inside the header MAC', MalformedError, file().subarray(0, file().length - 73 - 1)],

  ['R5 trailing byte after the header map', MalformedError, fileBytes(raw(mp(hdr()), 0xc0))],
  ['R5 header shorter than its map', MalformedError, fileBytes(mp(hdr()).subarray(0, 40))],
  ['R5 header is an array', MalformedError, fileBytes(mp([16, [entry], EMPTY_META]))],
  ['R5 duplicate top-level key', MalformedError,
    fileBytes(raw(0x85, mp(hdr()).subarray(1), str('meta'), 0xc4, 1, 0x80))],
  ['R5 duplicate key inside a recipient entry', MalformedError,
    fileBytes(raw(0x84, str('chunk_size'), 16, str('recipients'), 0x91, 0x84, mp(entry).subarray(1), str('kid'),
      mp(entry.kid), str('meta'), 0xc4, 1, 0x80, str('commit'), mp(COMMIT)))],
  ['R5 integer key', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), 1, 2))],
  ['R5 bin key', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), 0xc4, 1, 0x61, 2))],
  ['R5 invalid UTF-8 in a value', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), str('x'), 0xa2, 0xc3, 0x28))],
  ['R5 invalid UTF-8 in a key', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), 0xa1, 0xff, 0xc0))],
  ['R5 ext type (timestamp)', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), str('t'), mp(new Date(0))))],
  ['R5 fixext 1', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), str('t'), 0xd4, 1, 0))],
  ['R5 reserved byte 0xc1', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), str('t'), 0xc1))],
  ['R5 array count beyond the header', MalformedError, fileBytes(raw(0x85, mp(hdr()).subarray(1), str('t'), 0xdd, 0xff, 0xff, 0xff, 0xff))],

  ['R6 chunk_size missing', MalformedError, file({ chunk_size: undefined })],
  ['R6 chunk_size a string', MalformedError, file({ chunk_size: '16' })],
  ['R6 chunk_size a float', MalformedError,
    fileBytes(raw(0x84, str('chunk_size'), 0xcb, Buffer.from('4030000000000000', 'hex'), mp(hdr()).subarray(12)))],
  ['R6 recipients missing', MalformedError, file({ recipients: undefined })],
  ['R6 recipients a map', MalformedError, file({ recipients: { a: entry } })],
  ['R6 meta missing', MalformedError, file({ meta: undefined })],
  ['R6 meta a str', MalformedError, file({ meta: '\u0080' })],
  ['R6 meta a map', MalformedError, file({ meta: {} })],
  ['R6 commit missing', MalformedError, file({ commit: undefined })],
  ['R6 commit of 31 bytes', MalformedError, file({ commit: COMMIT.subarray(1) })],
  ['R6 commit of 33 bytes', MalformedError, file({ commit: raw(COMMIT, 0) })],
  ['R6 commit empty', MalformedError, file({ commit: Buffer.alloc(0) })],
  ['R6 commit a str of 32 bytes', MalformedError, file({ commit: 'x'.repeat(32) })],
  ['R6 commit an array', MalformedError, file({ commit: [...COMMIT] })],
  ['R6 commit nil', MalformedError, file({ commit: null })],
  ['R6 critical a str', MalformedError, file({ critical: 'x' })],
  ['R6 critical with an int', MalformedError, file({ critical: [1] })],

  ['R7 chunk_size 15', LimitError, file({ chunk_size: 15 })],
  ['R7 chunk_size 16777217', LimitError, file({ chunk_size: 16_777_217 })],
  ['R7 chunk_size -16', LimitError, file({ chunk_size: -16 })],
  ['R7 chunk_size 2^64-1', LimitError, file({ chunk_size: 2n ** 64n - 1n })],

  ['R8 no recipient', MalformedError, file({ recipients: [] })],
  ['R8 1025 recipients', LimitError, file({ recipients: [...Array(1024).fill({ type: 'x' }), entry] })],

  ['R9 entry not a map', MalformedError, file({ recipients: ['rsa-oaep-sha256', entry] })],
  ['R9 type missing', MalformedError, file({ recipients: [{ kid: entry.kid }, entry] })],
  ['R9 type not str', MalformedError, file({ recipients: [{ type: 1 }, entry] })],
  ['R9 type empty', MalformedError, file({ recipients: [{ type: '' }, entry] })],
  ['R9 type 65 bytes', MalformedError, file({ recipients: [{ type: 'x'.repeat(65) }, entry] })],
  ['R9 type 33 two-byte characters (66 bytes)', MalformedError, file({ recipients: [{ type: 'é'.repeat(33) }, entry] })],

  ['R10 kid 31 bytes', MalformedError, file({ recipients: [{ ...entry, kid: entry.kid.subarray(1) }] })],
  ['R10 kid a str', MalformedError, file({ recipients: [{ ...entry, kid: 'x'.repeat(32) }] })],
  ['R10 key missing', MalformedError, file({ recipients: [{ type: entry.type, kid: entry.kid }] })],
  ['R10 key a str', MalformedError, file({ recipients: [{ ...entry, key: 'abc' }] })],
  ['R10 bad entry of another recipient', MalformedError,
    file({ recipients: [entry, { ...entryFor(B.pub, K), kid: Buffer.alloc(33) }] })],
  ['R10 duplicate kid', MalformedError, file({ recipients: [entry, entryFor(A.pub, K)] })],

  ['R11 meta longer than 64 KiB', LimitError, file({ meta: mp({ b: Buffer.alloc(65_531) }) })],
  ['R11 meta nested 9 deep', LimitError, file({ meta: mp({ d: nest(9) }) })],
  ['R11 meta: empty map at depth 9', LimitError, file({ meta: mp({ d: [[[[[[[{}]]]]]]] }) })],
  ['R11 meta not a map', MalformedError, file({ meta: mp([1]) })],
  ['R11 meta empty', MalformedError, file({ meta: Buffer.alloc(0) })],
  ['R11 meta trailing bytes', MalformedError, file({ meta: Buffer.of(0x80, 0x80) })],
  ['R11 meta duplicate key', MalformedError, file({ meta: raw(0x82, str('a'), 1, str('a'), 2) })],
  ['R11 meta integer key', MalformedError, file({ meta: raw(0x81, 1, 2) })],
  ['R11 meta invalid UTF-8', MalformedError, file({ meta: raw(0x81, str('a'), 0xa1, 0x80) })],
  ['R11 meta ext', MalformedError, file({ meta: raw(0x81, str('a'), mp(new Date(0))) })],

  ['R12 critical extension', UnsupportedError, file({ critical: ['footer-signature'] })],
  ['R12 signature and an unknown extension', UnsupportedError, file({ critical: ['signature', 'zstd'] })],

  ['R13 only unknown recipient types', NoMatchingKeyError, file({ recipients: [{ type: 'pq-kem' }] })],
  ['R13 another key', NoMatchingKeyError, file({ recipients: [entryFor(B.pub, K)] })],

  ['R14 wrapped key one byte long', MalformedError, file({ recipients: [{ ...entry, key: raw(entry.key, 0) }] })],
  ['R14 wrapped key one byte short', MalformedError, file({ recipients: [{ ...entry, key: entry.key.subarray(1) }] })],

  ['R15 OAEP yields 31 bytes', AuthenticationError, file({ recipients: [{ ...entry, key: wrap(A.pub, K.subarray(1)) }] }), HEADER],
  ['R15 OAEP yields 33 bytes', AuthenticationError, file({ recipients: [{ ...entry, key: wrap(A.pub, raw(K, 0)) }] }), HEADER],
  ['R15 the first draft\'s OAEP label', AuthenticationError,
    file({ recipients: [{ ...entry, key: wrap(A.pub, K, DRAFT_LABEL) }] }), HEADER],
  ['R15 wrong OAEP label', AuthenticationError, file({ recipients: [{ ...entry, key: wrap(A.pub, K, Buffer.from('x')) }] }), HEADER],
  ['R15 another data key', AuthenticationError, file({ recipients: [{ ...entry, key: wrap(A.pub, crypto.randomBytes(32)) }] }), HEADER],
  ['R16 header MAC mismatch', AuthenticationError, file({}, { mac: crypto.randomBytes(32) }), HEADER],
  ['R16 commit of another key (the MAC is right)', AuthenticationError, file({ commit: commitOf(crypto.randomBytes(32)) }), HEADER],
  ['R16 commit of K with one bit flipped', AuthenticationError,
    file({ commit: (() => { const c = Buffer.from(COMMIT); c[31] ^= 0x80; return c; })() }), HEADER],
  ['R16 commit is the header MAC key, not the commitment', AuthenticationError,
    file({ commit: Buffer.from(crypto.hkdfSync('sha256', K, Buffer.alloc(0), 'envelope v1 header', 32)) }), HEADER],
  ['R16 commit of the first half of K only', AuthenticationError,
    file({ commit: commitOf(raw(K.subarray(0, 16), Buffer.alloc(16))) }), HEADER],

  ['R17 no token', AuthenticationError, file({}, { tokens: [] }), NO_TOKEN],
  ['R18 final token 72 bytes', AuthenticationError, file({}, { tokens: [final0.subarray(0, 72)] }), CUT],
  ['R18 stream ends inside a token\'s first 9 bytes', AuthenticationError, file({}, { tokens: [final0.subarray(0, 5)] }), CUT],
  ['R18 stream ends inside a non-final token', AuthenticationError,
    file({}, { tokens: tokens(chunkMessage(0, false, ascii(16))).map((t) => t.subarray(0, 80)) }), CUT],
  ['R18 stream ends after a non-final token', AuthenticationError, file({}, { tokens: tokens(chunkMessage(0, false, ascii(16))) }), CUT],

  // §7.4 check 1: the timestamp field is 0 before the last token and the token's length in the last.
  ['R19 non-last token holds a seal time (first draft)', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, false, ascii(16)), 1_700_000_000), final0] }), TOKEN],
  ['R19 last token holds a seal time (first draft)', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)), 1_700_000_000)] }), TOKEN],
  ['R19 last token timestamp 72 (not a token length)', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)), 72)] }), TOKEN],
  ['R19 last token timestamp T + 16 (longer than any token)', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)), T16 + 16)] }), TOKEN],
  ['R19 last token timestamp 2^64-1', AuthenticationError,
    file({}, { tokens: [rawToken(K, chunkMessage(0, true, Buffer.alloc(0)), { timestamp: 2n ** 64n - 1n })] }), TOKEN],
  ['R19 last token timestamp 16 bytes short of its length', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, ascii(10)), 73)] }), TOKEN],
  // A sequential reader takes a timestamp of 0 as "T bytes, not the last" and so runs off the end,
  // and a too-large length likewise: indistinguishable from a cut stream (R18).
  ['R19 last token timestamp 0 (read as a non-final token: the stream is then cut)', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)), 0)] }), CUT],
  ['R19 last token timestamp 16 bytes over its length (the stream is then cut)', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)), 89)] }), CUT],
  ['R19 non-last token announces itself final with a valid length', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, false, ascii(16)), T16), final0] }), TOKEN],

  ['R19 version byte 0x81', AuthenticationError, file({}, { tokens: [rawToken(K, chunkMessage(0, true, Buffer.alloc(0)), { version: 0x81 })] }), TOKEN],
  ['R19 HMAC mismatch', AuthenticationError, file({}, { tokens: [raw(final0.subarray(0, 72), final0[72] ^ 1)] }), TOKEN],
  ['R19 bad padding (zeros)', AuthenticationError, file({}, { tokens: [rawToken(K, chunkMessage(0, true, Buffer.alloc(0)), { pad: Buffer.alloc(7) })] }), TOKEN],
  ['R19 bad padding (17)', AuthenticationError, file({}, { tokens: [rawToken(K, chunkMessage(0, true, ascii(6)), { pad: Buffer.of(17) })] }), TOKEN],
  ['R19 message of 8 bytes', AuthenticationError, file({}, { tokens: [rawToken(K, Buffer.alloc(8), { timestamp: 73 })] }), TOKEN],
  ['R19 token signed with another key', AuthenticationError, file({}, { tokens: [libraryToken(crypto.randomBytes(32), chunkMessage(0, true, Buffer.alloc(0)))] }), TOKEN],

  ['R20 index 1 at position 0', AuthenticationError, file({}, { tokens: tokens(chunkMessage(1, true, Buffer.alloc(0))) }), TOKEN],
  ['R20 index 2^64-1', AuthenticationError, file({}, { tokens: [rawToken(K, raw(Buffer.alloc(8, 0xff), 1))] }), TOKEN],
  ['R20 flag 2', AuthenticationError, file({}, { tokens: [rawToken(K, raw(Buffer.alloc(8), 2), { timestamp: 73 })] }), TOKEN],
  ['R20 final flag missing on the last token', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, false, Buffer.alloc(0)), 73)] }), TOKEN],
  ['R20 final flag on a non-last token', AuthenticationError,
    file({}, { tokens: [libraryToken(K, chunkMessage(0, true, ascii(16)), 0), ...tokens(chunkMessage(1, true, Buffer.alloc(0)))] }), TOKEN],

  ['R21 non-final chunk of 15 bytes', AuthenticationError,
    file({}, { tokens: tokens(chunkMessage(0, false, ascii(15)), chunkMessage(1, true, Buffer.alloc(0))) }), TOKEN],
  ['R21 non-final chunk of 17 bytes', AuthenticationError,
    file({}, { tokens: tokens(chunkMessage(0, false, ascii(17)), chunkMessage(1, true, Buffer.alloc(0))) }), TOKEN],
  ['R21 final chunk of chunk_size bytes', AuthenticationError, file({}, { tokens: tokens(chunkMessage(0, true, ascii(16))) }), TOKEN],

  ['R22 token after the final token', AuthenticationError,
    file({}, { tokens: tokens(chunkMessage(0, true, Buffer.alloc(0)), chunkMessage(1, true, Buffer.alloc(0))) }), APPENDED],
  ['R22 7 bytes after the final token', AuthenticationError, file({}, { tokens: [raw(final0, Buffer.alloc(7))] }), APPENDED],
  ['R22 32 bytes (a tag) after the final token of an unsigned file', AuthenticationError,
    file({}, { tokens: [final0, final0.subarray(41)] }), APPENDED],
];

for (const [name, expected, bytes, message] of cases) {
  test(name, () => {
    if (expected === OK) assert.ok(open(bytes, [A.priv]).plaintext instanceof Buffer);
    else {
      assert.throws(() => open(bytes, [A.priv]), (e) => e.constructor === expected && e.name === expected.name
        && (message === undefined || message.test(e.message)));
    }
  });
}

test('a hand-built file decodes to the expected plaintext and metadata', () => {
  const meta = { s: 'x', i: -5, big: 2n ** 63n, f: 0.5, b: Buffer.of(1, 2), a: [null, true, { n: 1 }] };
  const f = file({ meta: mp(meta) }, { tokens: tokens(chunkMessage(0, false, ascii(16)), chunkMessage(1, true, Buffer.from('xyz'))) });
  const r = open(f, [B.priv, A.priv]);
  assert.equal(r.plaintext.toString(), 'a'.repeat(16) + 'xyz');
  assert.equal(r.chunkCount, 2);
  assert.deepEqual(r.metadata, { ...meta, f: new Float(0.5) });
  assert.deepEqual(kidOf(A.priv), entry.kid);
});
