// Test helpers: keys, and an independent hand-built writer (node:crypto, @msgpack/msgpack and the
// `fernet` npm package), so that the reader is tested against files it did not write itself.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { encode as msgpackEncode, decode as msgpackDecode } from '@msgpack/msgpack';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';

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
export const sha256 = (...parts) => { const h = crypto.createHash('sha256'); parts.forEach((p) => h.update(p)); return h.digest(); };
export const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
export const u32 = (i) => { const b = Buffer.alloc(4); b.writeUInt32BE(i); return b; };
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
/** §6: the header's `commit` for data key K. */
export const commitOf = (K) => Buffer.from(crypto.hkdfSync('sha256', K, Buffer.alloc(0), 'envelope v1 key commitment', 32));

/** The standard recipient entry for `pub` wrapping K. */
export const entryFor = (pub, K) => ({ type: 'rsa-oaep-sha256', kid: kidOf(pub), key: wrap(pub, K) });

/**
 * Builds an envelope file without the library under test. `header` is an object (encoded with
 * @msgpack/msgpack) or raw bytes; `tokens` defaults to one empty final chunk; `mac` may be
 * replaced to forge a bad one.
 */
export function build({ K = crypto.randomBytes(32), header, headerBytes, tokens, version = 1, mac } = {}) {
  const h = headerBytes ?? encodeMsgpack(header ?? { chunk_size: 16, recipients: [entryFor(A.pub, K)], meta: Buffer.of(0x80),
    commit: commitOf(K) });
  const prefix = prefixFor(h.length, version);
  const toks = tokens ?? [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)))];
  return Buffer.concat([prefix, h, mac ?? headerMac(K, Buffer.concat([prefix, h])), ...toks]);
}

/**
 * Replaces the header of `file` (data key K) by `edit(header)`, a header object decoded and
 * re-encoded with @msgpack/msgpack (which writes the canonical form for the types a header holds,
 * so entries that `edit` leaves alone keep their bytes), and recomputes header_len and the header
 * MAC: only the rule the edit breaks is broken. Everything after the old header MAC is kept.
 */
export function reheader(file, K, edit) {
  const headerLen = file.readUInt32BE(9);
  const header = decodeMsgpack(file.subarray(13, 13 + headerLen));
  const h = encodeMsgpack(edit(header) ?? header);
  const prefix = prefixFor(h.length, file[8]);
  return Buffer.concat([prefix, h, headerMac(K, Buffer.concat([prefix, h])), file.subarray(13 + headerLen + 32)]);
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

// ---- signatures (FORMAT.md §8), built from the spec's text with node:crypto and @noble/post-quantum

export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
export const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;
export const ALGORITHMS = ['ed25519', 'ecdsa-p256-sha256', 'ml-dsa-65'];
export const SIGNATURE_LENGTH = { ed25519: 64, 'ecdsa-p256-sha256': 64, 'ml-dsa-65': 3309 };
export const MLDSA65_SPKI_PREFIX = Buffer.from('308207b2300b0609608648016503040312038207a100', 'hex');
// PKCS#8 of an ML-DSA-65 key in the seed form of RFC 9881: OneAsymmetricKey { 0, id-ml-dsa-65, [0] seed }.
const MLDSA65_PKCS8_SEED_PREFIX = Buffer.from('3034020100300b0609608648016503040312042280' + '20', 'hex');

export const pem = (label, der) =>
  `-----BEGIN ${label}-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;
export const bigIntOf = (bytes) => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
export const bytes32 = (v) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');

/** ECDSA r || s with s replaced by n - s when `high` differs from s > n/2. */
export function withS(sig, high) {
  const s = bigIntOf(sig.subarray(32));
  if ((s > P256_N / 2n) === high) return Buffer.from(sig);
  return Buffer.concat([sig.subarray(0, 32), bytes32(P256_N - s)]);
}

/**
 * A fresh signer of `alg`: { alg, spki (DER), kid, pub (SPKI PEM), priv (PKCS#8 PEM), sign(tbs) }.
 * ECDSA signatures come out with a low s, as §8.2 makes writers do.
 */
export function signerKey(alg) {
  if (alg === 'ml-dsa-65') {
    const seed = crypto.randomBytes(32);
    const { publicKey, secretKey } = ml_dsa65.keygen(seed);
    const spki = Buffer.concat([MLDSA65_SPKI_PREFIX, publicKey]);
    return { alg, spki, kid: sha256(spki), pub: pem('PUBLIC KEY', spki),
      priv: pem('PRIVATE KEY', Buffer.concat([MLDSA65_PKCS8_SEED_PREFIX, seed])),
      sign: (tbs) => Buffer.from(ml_dsa65.sign(tbs, secretKey)),
      verify: (tbs, sig) => ml_dsa65.verify(sig, tbs, publicKey) };
  }
  const ec = alg === 'ecdsa-p256-sha256';
  const { publicKey, privateKey } = ec
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }) : crypto.generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const opts = (key) => (ec ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return { alg, spki, kid: sha256(spki), pub: pem('PUBLIC KEY', spki),
    priv: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    sign: (tbs) => {
      const sig = crypto.sign(ec ? 'sha256' : null, tbs, opts(privateKey));
      return ec ? withS(sig, false) : sig;
    },
    verify: (tbs, sig) => crypto.verify(ec ? 'sha256' : null, tbs, opts(publicKey), sig) };
}

/**
 * §8.3 signed header H of a header object, as §8.3 says for a header in canonical form: each entry
 * but `recipients`, its key then its value, encoded on its own (MessagePack is context free).
 */
export const signedHeaderOf = (header) =>
  Buffer.concat(Object.entries(header).filter(([k]) => k !== 'recipients').flatMap(([k, v]) => [encodeMsgpack(k), encodeMsgpack(v)]));

/** §8.3 tbs over a header object (or `H` given as bytes) and the tags. */
export function tbsOf({ header, H = signedHeaderOf(header), tags }) {
  return Buffer.concat([
    Buffer.from('envelope v1 signature', 'ascii'), Buffer.of(0),
    u32(H.length), H,
    u64(tags.length),
    sha256(Buffer.concat(tags)),
  ]);
}

export const tagOf = (token) => token.subarray(token.length - 32);

const merged = (base, over) => {
  const h = { ...base, ...over };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return h;
};

/**
 * A signed file built without the library under test. `over` is merged into the header (undefined
 * removes a key; `signer` may be replaced whole); `tokens` default to one empty final chunk. The
 * footer is `footerTags` (default: the tokens' tags) and `signature` (default: `signer` signs the
 * tbs over the header with `tbs` merged in (so the signature covers another header than the file's)
 * and `tbsTags`, default the footer tags).
 */
export function buildSigned({ K = crypto.randomBytes(32), signer, over = {}, tokens, footerTags, signature, tbs = {},
  tbsTags, footer, recipients } = {}) {
  const toks = tokens ?? [libraryToken(K, chunkMessage(0, true, Buffer.alloc(0)))];
  const header = merged({ chunk_size: 16, recipients: recipients ?? [entryFor(A.pub, K)], meta: Buffer.of(0x80),
    commit: commitOf(K), critical: ['signature'], signer: { alg: signer.alg, kid: signer.kid, key: signer.spki } }, over);
  const ftags = footerTags ?? toks.map(tagOf);
  const sig = signature ?? signer.sign(tbsOf({ header: merged(header, tbs), tags: tbsTags ?? ftags }));
  return build({ K, header, tokens: [...toks, ...(footer ?? [...ftags, sig])] });
}
