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
