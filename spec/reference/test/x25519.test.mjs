// §4.2: x25519 recipients in age's key encoding, through seal() and open(); the vectors cover the
// reader's rules (R35-R38), these the writer and the key text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { seal, open, InvalidKeyError, NoMatchingKeyError } from '../envelope.mjs';
import { A } from './helpers.mjs';

const KEYS = fileURLToPath(new URL('../../vectors/keys/', import.meta.url));
const identityA = fs.readFileSync(`${KEYS}x25519-a.age`, 'utf8');
const recipientA = fs.readFileSync(`${KEYS}x25519-a.pub.age`, 'utf8').trim();
const identityB = fs.readFileSync(`${KEYS}x25519-b.age`, 'utf8');
const recipientB = fs.readFileSync(`${KEYS}x25519-b.pub.age`, 'utf8').trim();
const several = fs.readFileSync(`${KEYS}x25519-several.age`, 'utf8');

test('an age1 recipient opens with its AGE-SECRET-KEY-1 identity file', () => {
  const plaintext = Buffer.from('weights '.repeat(100));
  const sealed = seal(plaintext, [recipientA], { chunkSize: 64 });
  assert.deepEqual(open(sealed, [identityA]).plaintext, plaintext);
  assert.deepEqual(open(sealed, [several]).plaintext, plaintext); // the second key of the file
  assert.throws(() => open(sealed, [identityB]), NoMatchingKeyError);
});

test('x25519 and rsa-oaep-sha256 recipients mix in one file, each entry written in §4.2 order', () => {
  const sealed = seal(Buffer.from('x'), [A.pub, recipientB]);
  assert.deepEqual(open(sealed, [identityB]).plaintext, Buffer.from('x'));
  assert.deepEqual(open(sealed, [A.priv]).plaintext, Buffer.from('x'));
  const header = sealed.subarray(13, 13 + sealed.readUInt32BE(9));
  assert.ok(header.includes(Buffer.from('\xa6x25519\xa3kid', 'latin1')));
});

test('each wrap draws a fresh ephemeral key', () => {
  const one = seal(Buffer.from('x'), [recipientA]);
  const two = seal(Buffer.from('x'), [recipientA]);
  assert.notDeepEqual(one.subarray(13, 200), two.subarray(13, 200));
});

test('age key text is checked as R38 says', () => {
  const flip = recipientA.slice(0, -1) + (recipientA.endsWith('q') ? 'p' : 'q');
  assert.throws(() => seal(Buffer.from('x'), [flip]), InvalidKeyError); // checksum
  assert.throws(() => seal(Buffer.from('x'), [recipientA.toUpperCase()]), InvalidKeyError); // age recipients are lower case
  assert.throws(() => seal(Buffer.from('x'), [recipientA.slice(0, 10) + recipientA.slice(10).toUpperCase()]), InvalidKeyError);
  assert.throws(() => open(Buffer.alloc(0), [identityA.toLowerCase().replace(/^# .*$/gm, '')]), (e) => e instanceof InvalidKeyError && !e.message.includes('age-secret'));
});

test('an identity file line ends at LF; only spaces and tabs around it are ignored (§4.2)', () => {
  const sealed = seal(Buffer.from('x'), [recipientA]);
  const key = identityA.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'));
  assert.deepEqual(open(sealed, [`# c\r\n \t${key}\t \r\n`]).plaintext, Buffer.from('x'));
  for (const text of [`${key}\f# hidden`, `${key}\u2028${key}`, `\u00a0${key}`, `${key}\v`]) {
    assert.throws(() => open(sealed, [text]), InvalidKeyError);
  }
});

// §4.3: ssh-ed25519 recipients.
const sshPrivate = fs.readFileSync(`${KEYS}ssh-ed25519-a.openssh`, 'utf8');
const sshPublic = fs.readFileSync(`${KEYS}ssh-ed25519-a.openssh.pub`, 'utf8').trim();

test('an ssh-ed25519 line receives a file that its OpenSSH private key opens', () => {
  const sealed = seal(Buffer.from('ssh'), [sshPublic, recipientA]);
  assert.deepEqual(open(sealed, [sshPrivate]).plaintext, Buffer.from('ssh'));
  assert.deepEqual(open(sealed, [identityA]).plaintext, Buffer.from('ssh'));
});

test('ssh-ed25519 keys are checked as R40 says', () => {
  const bad = fs.readFileSync(`${KEYS}ssh-ed25519-bad-public.openssh`, 'utf8');
  assert.throws(() => open(Buffer.alloc(0), [bad]), InvalidKeyError);
  const identity = Buffer.concat([Buffer.from('0000000b7373682d65643235353139', 'hex'), Buffer.from('00000020', 'hex'),
    Buffer.concat([Buffer.of(1), Buffer.alloc(31)])]); // y = 1: the identity point, of small order
  assert.throws(() => seal(Buffer.from('x'), [`ssh-ed25519 ${identity.toString('base64')}`]), InvalidKeyError);
});

// §4.4: mlkem768x25519 recipients.
const pqIdentity = fs.readFileSync(`${KEYS}mlkem768x25519-a.age`, 'utf8');
const pqRecipient = fs.readFileSync(`${KEYS}mlkem768x25519-a.pub.age`, 'utf8').trim();

test('an age1pq1 recipient receives a file that its AGE-SECRET-KEY-PQ-1 identity opens', () => {
  const sealed = seal(Buffer.from('post-quantum'), [pqRecipient]);
  assert.deepEqual(open(sealed, [pqIdentity]).plaintext, Buffer.from('post-quantum'));
  assert.throws(() => open(sealed, [identityA]), NoMatchingKeyError);
});

// Bech32 (BIP-173) written out here, independent of the implementation under test, to build
// recipients with chosen bytes.
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
function bech32Bytes(text) {
  const words = [...text.slice(text.lastIndexOf('1') + 1, -6)].map((c) => CHARSET.indexOf(c));
  let acc = 0, bits = 0; const bytes = [];
  for (const w of words) { acc = (acc << 5) | w; bits += 5; if (bits >= 8) { bits -= 8; bytes.push((acc >> bits) & 0xff); } acc &= (1 << bits) - 1; }
  return bytes;
}
function bech32Encode(hrp, bytes) {
  const five = []; let acc = 0, bits = 0;
  for (const b of bytes) { acc = (acc << 8) | b; bits += 8; while (bits >= 5) { bits -= 5; five.push((acc >> bits) & 31); } acc &= (1 << bits) - 1; }
  if (bits) five.push((acc << (5 - bits)) & 31);
  const G = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  const poly = (v) => { let c = 1; for (const x of v) { const t = c >>> 25; c = (((c & 0x1ffffff) << 5) ^ x) >>> 0; for (let i = 0; i < 5; i++) if ((t >>> i) & 1) c = (c ^ G[i]) >>> 0; } return c; };
  const ex = [...hrp].map((c) => c.charCodeAt(0) >> 5).concat([0], [...hrp].map((c) => c.charCodeAt(0) & 31));
  const chk = poly(ex.concat(five, [0, 0, 0, 0, 0, 0])) ^ 1;
  return `${hrp}1${five.concat([0, 1, 2, 3, 4, 5].map((i) => (chk >>> (5 * (5 - i))) & 31)).map((w) => CHARSET[w]).join('')}`;
}

test('an ML-KEM-768 key with a coefficient not below q is refused (R42)', () => {
  assert.ok(pqRecipient.length === 1959);
  // The recipient re-encoded with its first coefficient set to 4095: seal must refuse it before any wrap.
  const bytes = bech32Bytes(pqRecipient);
  bytes[0] = 0xff; bytes[1] |= 0x0f;
  assert.throws(() => seal(Buffer.from('x'), [bech32Encode('age1pq', bytes)]), InvalidKeyError);
});

test('an X25519 key that is not canonical is refused when sealing (R38, R42)', () => {
  const p = [0xed, ...Array(30).fill(0xff), 0x7f]; // 2^255 - 19, little-endian
  const highBit = [...bech32Bytes(recipientA)]; highBit[31] |= 0x80;
  for (const bytes of [p, highBit]) {
    assert.throws(() => seal(Buffer.from('x'), [bech32Encode('age', bytes)]), /not a canonical X25519 key/);
    const hybrid = bech32Bytes(pqRecipient).slice(0, 1184).concat(bytes);
    assert.throws(() => seal(Buffer.from('x'), [bech32Encode('age1pq', hybrid)]), /X25519 part is not canonical/);
  }
});
