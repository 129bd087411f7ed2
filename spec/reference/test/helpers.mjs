// Test helpers: keys, and an independent hand-built writer (node:crypto, @msgpack/msgpack and the
// `fernet` npm package), so that the reader is tested against files it did not write itself.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { encode as msgpackEncode, decode as msgpackDecode } from '@msgpack/msgpack';

const require = createRequire(import.meta.url);
export const fernet = require('fernet');

export function rsaKeyPair(bits = 2048, pkcs1 = false) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: pkcs1 ? 'pkcs1' : 'pkcs8', format: 'pem' },
  });
  return { pub: publicKey, priv: privateKey };
}

// Shared keys, generated once per test file.
export const A = rsaKeyPair(2048);
export const B = rsaKeyPair(2048);

// FORMAT.md §4.1: the empty OAEP label. The first draft's label, for negative tests.
export const LABEL = Buffer.alloc(0);
export const DRAFT_LABEL = Buffer.from('envelope v1 rsa-oaep-sha256');
export const kidOf = (pem) =>
  crypto.createHash('sha256').update(crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest();
export const wrap = (pub, K, label = LABEL) => crypto.publicEncrypt(
  { key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, K);
export const unwrap = (priv, wrapped) => crypto.privateDecrypt(
  { key: priv, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: LABEL }, wrapped);
export const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
export const u64 = (i) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(i)); return b; };
export const chunkMessage = (i, final, data) => Buffer.concat([u64(i), Buffer.of(final ? 1 : 0), data]);
export const tokenLen = (d) => 57 + 16 * (Math.floor((9 + d) / 16) + 1);
export const encodeMsgpack = (v) => Buffer.from(msgpackEncode(v, { useBigInt64: true }));
export const decodeMsgpack = (b) => msgpackDecode(b, { useBigInt64: true });

/**
 * §7.2 timestamp field of the token of `message`: 0, or the token's own length when the message's
 * final flag is set (the length follows from the message: 57 + its PKCS7-padded length).
 */
export const timestampFor = (message) => (message[8] === 1 ? 57 + 16 * (Math.floor(message.length / 16) + 1) : 0);

/**
 * Fernet token from the `fernet` library; `message` must be valid UTF-8 (the library's API is
 * text). The library writes the current time, and takes no time of 0: set its field directly.
 */
export function libraryToken(K, message, timestamp = timestampFor(message)) {
  const token = new fernet.Token({ secret: new fernet.Secret(K.toString('base64url')), ttl: 0 });
  token.time = fernet.Hex.parse(timestamp.toString(16).padStart(16, '0'));
  return Buffer.from(token.encode(message.toString('utf8')), 'base64url');
}

/** Fernet token built by hand, with optional faults: version byte, timestamp field, raw padding. */
export function rawToken(K, message, { version = 0x80, timestamp, pad } = {}) {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-128-cbc', K.subarray(16), iv);
  let ct;
  if (pad === undefined) ct = Buffer.concat([cipher.update(message), cipher.final()]);
  else { cipher.setAutoPadding(false); ct = Buffer.concat([cipher.update(Buffer.concat([message, pad])), cipher.final()]); }
  const body = Buffer.concat([Buffer.of(version), u64(timestamp ?? (message[8] === 1 ? 57 + ct.length : 0)), iv, ct]);
  return Buffer.concat([body, hmac(K.subarray(0, 16), body)]);
}

export const prefixFor = (headerLen, version = 1) => {
  const p = Buffer.alloc(13);
  Buffer.from('89454e560d0a1a0a', 'hex').copy(p);
  p[8] = version;
  p.writeUInt32BE(headerLen, 9);
  return p;
};
export const headerMac = (K, prefixAndHeader) =>
  hmac(Buffer.from(crypto.hkdfSync('sha256', K, Buffer.alloc(0), 'envelope v1 header', 32)), prefixAndHeader);

/** The standard recipient entry for `pub` wrapping K. */
export const entryFor = (pub, K) => ({ type: 'rsa-oaep-sha256', kid: kidOf(pub), key: wrap(pub, K) });

/**
 * Builds an envelope file without the library under test. `header` is an object (encoded with
 * @msgpack/msgpack) or raw bytes; `tokens` defaults to one empty final chunk; `mac` may be
 * replaced to forge a bad one.
 */
export function build({ K = crypto.randomBytes(32), header, headerBytes, tokens, version = 1, mac } = {}) {
  const h = headerBytes ?? encodeMsgpack(header ?? { chunk_size: 16, recipients: [entryFor(A.pub, K)], meta: Buffer.of(0x80) });
  const prefix = prefixFor(h.length, version);
  const toks = tokens ?? [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)))];
  return Buffer.concat([prefix, h, mac ?? headerMac(K, Buffer.concat([prefix, h])), ...toks]);
}

/** Splits a sealed file into { prefix, header (decoded), headerLen, payloadStart, tokens }. */
export function dissect(file) {
  const headerLen = file.readUInt32BE(9);
  const headerBytes = file.subarray(13, 13 + headerLen);
  const header = decodeMsgpack(headerBytes);
  const payloadStart = 13 + headerLen + 32;
  const T = tokenLen(Number(header.chunk_size));
  const tokens = [];
  for (let p = payloadStart; p < file.length; p += T) tokens.push(file.subarray(p, Math.min(p + T, file.length)));
  return { header, headerBytes, headerLen, payloadStart, tokens };
}

