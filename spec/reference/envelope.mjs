// Independent implementation of the envelope container format, version 1.
// Normative reference: spec/FORMAT.md ("§n" below means section n of that document).
// node:crypto does the cryptography, except ML-DSA-65 (§8.2), which Node 20 lacks: that comes from
// @noble/post-quantum. The MessagePack subset of §3.1/§5 is encoded and decoded here, strictly.
import crypto from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import * as symmetric from './symmetric.mjs';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';

// ---------------------------------------------------------------------------------------------
// Errors (§9). Messages never carry key material, plaintext or the offset that failed.

export class EnvelopeError extends Error {}
export class MalformedError extends EnvelopeError {}
export class UnsupportedError extends EnvelopeError {}
export class LimitError extends EnvelopeError {}
export class NoMatchingKeyError extends EnvelopeError {}
export class AuthenticationError extends EnvelopeError {}
export class InvalidKeyError extends EnvelopeError {}
/** A signed file's footer is cut or extended, its tags are not the tokens', or its signature fails (R26, R27). */
export class SignatureError extends AuthenticationError {}
/** The caller pinned signers and the file is unsigned or signed by another key (R28). */
export class SignerError extends AuthenticationError {}
// On the prototype, so that stack traces (built at construction) carry the class name too.
for (const C of [EnvelopeError, MalformedError, UnsupportedError, LimitError, NoMatchingKeyError,
  AuthenticationError, InvalidKeyError, SignatureError, SignerError]) C.prototype.name = C.name;
symmetric.useErrors({ MalformedError, LimitError, InvalidKeyError });
/** A shared Fernet key (§4.6) or a passphrase (§4.5), usable as a recipient of seal() and a key of open(). */
export const { fernetKey, passphrase } = symmetric;

/** A MessagePack float in metadata, kept apart from integers (§5). `bits` is 32 or 64. */
export class Float {
  constructor(value, bits = 64) {
    if (bits !== 32 && bits !== 64) throw new TypeError('Float bits must be 32 or 64');
    this.value = Number(value);
    this.bits = bits;
  }
  valueOf() { return this.value; }
}

// ---------------------------------------------------------------------------------------------
// Constants (§2, §3.3, §4.1, §6, §7)

const MAGIC = Buffer.from('89454e560d0a1a0a', 'hex');
const VERSION = 0x01;
const PREFIX_LEN = 13;
const MAC_LEN = 32;
const MAX_HEADER_LEN = 1_048_576;
const MIN_CHUNK = 16;
const MAX_CHUNK = 16_777_216;
const MAX_RECIPIENTS = 1024;
const MAX_META_LEN = 65_536;
const MAX_META_DEPTH = 8;
const MAX_HEADER_DEPTH = 16;
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 16384;
const RSA_TYPE = 'rsa-oaep-sha256';
// §4: the bin fields of each implemented recipient type and their lengths (null: any, R14 checks it).
const ENTRY_FIELDS = {
  'rsa-oaep-sha256': { kid: 32, key: null },
  x25519: { kid: 32, epk: 32, key: 48 },
  'ssh-ed25519': { kid: 32, epk: 32, key: 48 },
  mlkem768x25519: { kid: 32, enc: 1120, key: 48 },
};
const OAEP_LABEL = Buffer.alloc(0); // §4.1: the empty label (what KMS and HSMs accept)
const HKDF_INFO = Buffer.from('envelope v1 header', 'ascii');
const COMMIT_INFO = Buffer.from('envelope v1 key commitment', 'ascii');
const COMMIT_LEN = 32;
const FERNET_VERSION = 0x80;
const MIN_TOKEN = 73; // token_len(0)
const DEFAULT_CHUNK = 1_048_576; // §7.1: writers SHOULD use 1 MiB
// R15 and R16 (a wrong commitment or a wrong MAC) must be indistinguishable (§4.1 rule 4, §6).
const HEADER_AUTH_FAILED = 'header authentication failed';
const PAYLOAD_AUTH_FAILED = 'payload authentication failed';

const tokenLen = (d) => 57 + 16 * (Math.floor((9 + d) / 16) + 1); // §7.3
/** §7.3: a token length is valid when 73 <= len <= T and (len - 57) mod 16 = 0. */
const validTokenLen = (len, T) => len >= MIN_TOKEN && len <= T && (len - 57) % 16 === 0;

// ---------------------------------------------------------------------------------------------
// Strict MessagePack decoder (§3.1, §5). Iterative, so deep nesting cannot exhaust the stack.
// Maps become plain objects (keys defined as own properties, so "__proto__" is safe), bin becomes
// Buffer, floats become Float, integers Number when safe and BigInt otherwise.

const utf8 = new TextDecoder('utf-8', { fatal: true });
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const toInt = (b) => (b >= -MAX_SAFE && b <= MAX_SAFE ? Number(b) : b);
const isMap = (v) => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
const isInt = (v) => Number.isSafeInteger(v) || typeof v === 'bigint';
const setKey = (obj, key, value) =>
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });

/**
 * Decodes exactly one object from `buf` (R5 rules). With `entries` (an array), a root map also
 * reports each of its entries as { key, start, end }: the bytes `buf[start:end]` hold the entry's
 * key and value exactly as encoded (§8.3's signed header is cut from them, never re-encoded).
 */
function decodeStrict(buf, maxDepth, DepthError, entries = null) {
  let pos = 0;
  const need = (n) => {
    if (n > buf.length - pos) throw new MalformedError('truncated MessagePack data');
  };
  const uint = (n) => { need(n); const v = buf.readUIntBE(pos, n); pos += n; return v; };
  const take = (n) => { need(n); return buf.subarray(pos, (pos += n)); };
  const fixed = (n, read) => { need(n); const v = read.call(buf, pos); pos += n; return v; };
  const str = (n) => {
    try { return utf8.decode(take(n)); } catch (e) {
      if (e instanceof EnvelopeError) throw e;
      throw new MalformedError('invalid UTF-8 in string');
    }
  };
  const stack = []; // open containers: { out, left, isMap, key }
  let keyStart = 0; // where the root map's current entry begins
  for (;;) {
    const start = pos;
    const t = uint(1);
    let value, kind = null, count = 0;
    if (t <= 0x7f) value = t;
    else if (t >= 0xe0) value = t - 0x100;
    else if (t <= 0x8f) [kind, count] = ['map', t & 0x0f];
    else if (t <= 0x9f) [kind, count] = ['array', t & 0x0f];
    else if (t <= 0xbf) value = str(t & 0x1f);
    else switch (t) {
      case 0xc0: value = null; break;
      case 0xc2: value = false; break;
      case 0xc3: value = true; break;
      case 0xc4: value = Buffer.from(take(uint(1))); break;
      case 0xc5: value = Buffer.from(take(uint(2))); break;
      case 0xc6: value = Buffer.from(take(uint(4))); break;
      case 0xca: value = new Float(fixed(4, buf.readFloatBE), 32); break;
      case 0xcb: value = new Float(fixed(8, buf.readDoubleBE), 64); break;
      case 0xcc: value = uint(1); break;
      case 0xcd: value = uint(2); break;
      case 0xce: value = uint(4); break;
      case 0xcf: value = toInt(fixed(8, buf.readBigUInt64BE)); break;
      case 0xd0: value = fixed(1, buf.readInt8); break;
      case 0xd1: value = fixed(2, buf.readInt16BE); break;
      case 0xd2: value = fixed(4, buf.readInt32BE); break;
      case 0xd3: value = toInt(fixed(8, buf.readBigInt64BE)); break;
      case 0xd9: value = str(uint(1)); break;
      case 0xda: value = str(uint(2)); break;
      case 0xdb: value = str(uint(4)); break;
      case 0xdc: [kind, count] = ['array', uint(2)]; break;
      case 0xdd: [kind, count] = ['array', uint(4)]; break;
      case 0xde: [kind, count] = ['map', uint(2)]; break;
      case 0xdf: [kind, count] = ['map', uint(4)]; break;
      default: throw new MalformedError('MessagePack ext or reserved type'); // 0xc1, ext family
    }
    if (kind) {
      if (stack.length + 1 > maxDepth) throw new DepthError(`nested deeper than ${maxDepth} levels`);
      // Every element takes at least one byte: refuse impossible counts before allocating.
      need(kind === 'map' ? 2 * count : count);
      const out = kind === 'map' ? {} : [];
      if (count > 0) { stack.push({ out, left: count, isMap: kind === 'map', key: undefined }); continue; }
      value = out;
    }
    // Attach the finished value to its parent, closing every container it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) {
        if (pos !== buf.length) throw new MalformedError('trailing bytes after MessagePack object');
        return value;
      }
      if (top.isMap && top.key === undefined) {
        if (typeof value !== 'string') throw new MalformedError('map key is not a string');
        if (Object.hasOwn(top.out, value)) throw new MalformedError('duplicate map key');
        top.key = value;
        if (stack.length === 1) keyStart = start; // a root map's key: a str, so it began in this step
        break;
      }
      if (top.isMap && entries && stack.length === 1) entries.push({ key: top.key, start: keyStart, end: pos });
      if (top.isMap) { setKey(top.out, top.key, value); top.key = undefined; } else top.out.push(value);
      if (--top.left > 0) break;
      stack.pop();
      value = top.out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Canonical MessagePack encoder (§3.1): shortest form for every int, str, bin, array and map.
// JS values: null, boolean, safe-integer Number or BigInt -> int; other Number or Float -> float;
// string -> str; Buffer/Uint8Array -> bin; Array -> array; plain object or Map -> map (in
// iteration order). Floats are float64 unless wrapped as new Float(x, 32).

function encodeCanonical(root, maxDepth = Infinity) {
  const parts = [];
  const bytes = (...b) => parts.push(Buffer.from(b));
  const be = (tag, n, v) => { const b = Buffer.alloc(1 + n); b[0] = tag; b.writeUIntBE(v, 1, n); parts.push(b); };
  const sized = (n, fixTag, fixMax, tags) => { // tags: 8/16/32-bit length variants (null if none)
    if (n <= fixMax) bytes(fixTag | n);
    else if (tags[0] !== null && n <= 0xff) be(tags[0], 1, n);
    else if (n <= 0xffff) be(tags[1], 2, n);
    else be(tags[2], 4, n);
  };
  const int = (v) => {
    if (v < -(2n ** 63n) || v >= 2n ** 64n) throw new RangeError('integer outside the MessagePack range');
    if (v >= 0n) {
      if (v <= 0x7fn) bytes(Number(v));
      else if (v <= 0xffn) be(0xcc, 1, Number(v));
      else if (v <= 0xffffn) be(0xcd, 2, Number(v));
      else if (v <= 0xffffffffn) be(0xce, 4, Number(v));
      else { const b = Buffer.alloc(9); b[0] = 0xcf; b.writeBigUInt64BE(v, 1); parts.push(b); }
    } else if (v >= -32n) bytes(0x100 + Number(v));
    else {
      const [tag, n] = v >= -128n ? [0xd0, 1] : v >= -32768n ? [0xd1, 2] : v >= -(2n ** 31n) ? [0xd2, 4] : [0xd3, 8];
      const b = Buffer.alloc(1 + n); b[0] = tag;
      if (n === 8) b.writeBigInt64BE(v, 1); else b.writeIntBE(Number(v), 1, n);
      parts.push(b);
    }
  };
  const float = (x, bits) => {
    const b = Buffer.alloc(bits === 32 ? 5 : 9);
    if (bits === 32) { b[0] = 0xca; b.writeFloatBE(x, 1); } else { b[0] = 0xcb; b.writeDoubleBE(x, 1); }
    // §3.1: a NaN is the quiet NaN without payload, whatever bits the engine holds.
    if (Number.isNaN(x)) b.set(bits === 32 ? [0x7f, 0xc0, 0, 0] : [0x7f, 0xf8, 0, 0, 0, 0, 0, 0], 1);
    parts.push(b);
  };
  const enc = (v, depth) => {
    if (v === null) bytes(0xc0);
    else if (typeof v === 'boolean') bytes(v ? 0xc3 : 0xc2);
    else if (typeof v === 'bigint') int(v);
    else if (typeof v === 'number') Number.isSafeInteger(v) && !Object.is(v, -0) ? int(BigInt(v)) : float(v, 64);
    else if (v instanceof Float) float(v.value, v.bits);
    else if (typeof v === 'string') {
      if (!v.isWellFormed()) throw new TypeError('string is not valid Unicode (lone surrogate)');
      const b = Buffer.from(v, 'utf8');
      sized(b.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
      parts.push(b);
    } else if (v instanceof Uint8Array) {
      sized(v.length, 0, -1, [0xc4, 0xc5, 0xc6]);
      parts.push(Buffer.from(v));
    } else if (Array.isArray(v)) {
      if (depth > maxDepth) throw new LimitError(`metadata nested deeper than ${maxDepth}`);
      sized(v.length, 0x90, 15, [null, 0xdc, 0xdd]);
      for (const x of v) enc(x, depth + 1);
    } else if (v instanceof Map || isMap(v) || (typeof v === 'object' && Object.getPrototypeOf(v) === null)) {
      if (depth > maxDepth) throw new LimitError(`metadata nested deeper than ${maxDepth}`);
      const entries = v instanceof Map ? [...v] : Object.entries(v);
      sized(entries.length, 0x80, 15, [null, 0xde, 0xdf]);
      for (const [k, x] of entries) {
        if (typeof k !== 'string') throw new TypeError('map keys must be strings');
        enc(k, depth + 1);
        enc(x, depth + 1);
      }
    } else throw new TypeError(`cannot encode ${typeof v} in MessagePack metadata`);
  };
  enc(root, 1);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Recipient keys (§3.3, §4.1, R23)

function checkRsa(key) {
  const bits = key.asymmetricKeyType === 'rsa' ? key.asymmetricKeyDetails.modulusLength : 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new InvalidKeyError(`key must be RSA with a modulus of ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
  }
  return bits;
}
const keyId = (publicKey) => crypto.createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest();

function loadRsaPublic(pem) {
  // Only SubjectPublicKeyInfo PEM: node would also derive a public key from a private key or a
  // certificate, which would hide a caller passing the wrong file.
  if (!/^-----BEGIN PUBLIC KEY-----$/m.test(String(pem))) throw new InvalidKeyError('expected a "PUBLIC KEY" (SPKI) PEM');
  let key;
  try { key = crypto.createPublicKey(pem); } catch { throw new InvalidKeyError('cannot load public key'); }
  checkRsa(key);
  const wrap = (K) => crypto.publicEncrypt(
    { key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: OAEP_LABEL }, K);
  return { type: RSA_TYPE, kid: keyId(key), entry: (K) => new Map([['type', RSA_TYPE], ['kid', keyId(key)], ['key', wrap(K)]]) };
}

function loadRsaPrivate(pem) {
  let key;
  try { key = crypto.createPrivateKey(pem); } catch { throw new InvalidKeyError('cannot load private key'); }
  const modulusBytes = Math.ceil(checkRsa(key) / 8);
  return {
    type: RSA_TYPE, kid: keyId(crypto.createPublicKey(key)),
    check(entry) { if (entry.key.length !== modulusBytes) throw new MalformedError('wrapped key length does not match the key'); }, // R14
    unwrap(entry) { // R15: null when OAEP fails or does not give 32 bytes
      try {
        const K = crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: OAEP_LABEL }, entry.key);
        return K.length === 32 ? K : null;
      } catch { return null; }
    },
  };
}

/** A recipient: an RSA SPKI PEM, age recipient text `age1...` (§4.2) or an `ssh-ed25519` line (§4.3). */
function loadPublic(text) {
  const t = String(text).trim();
  if (t.startsWith('age1pq1')) return loadPqPublic(t);
  if (t.startsWith('age1')) return loadX25519Public(t);
  if (t.startsWith('ssh-ed25519 ')) return loadSshPublic(t);
  return loadRsaPublic(text);
}

/** The keys of a private key text: an RSA PEM, every key of an age identity file (§4.2), or an
 * unencrypted OpenSSH Ed25519 private key (§4.3). */
function loadPrivate(text) {
  const t = String(text);
  if (isAgeIdentityText(t)) return loadAgeIdentities(t);
  if (t.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) return [loadSshPrivate(t)];
  return [loadRsaPrivate(text)];
}

// ---------------------------------------------------------------------------------------------
// age keys and the x25519 recipient (§4.2, R35-R38)

const X25519_TYPE = 'x25519';
const X25519_LABEL = Buffer.from('envelope v1 x25519', 'ascii');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

function bech32Polymod(values) {
  const G = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk = (chk ^ G[i]) >>> 0;
  }
  return chk;
}
const hrpExpand = (hrp) => [...hrp].map((c) => c.charCodeAt(0) >> 5).concat([0], [...hrp].map((c) => c.charCodeAt(0) & 31));

/** BIP-173 Bech32 (R38): [hrp as written, data], or an InvalidKeyError. */
function bech32Decode(s, maxLength) {
  if (s.length > maxLength) throw new InvalidKeyError('age key: too long');
  if (!/^[\x21-\x7e]+$/.test(s)) throw new InvalidKeyError('age key: characters outside US-ASCII 33-126');
  if (s.toLowerCase() !== s && s.toUpperCase() !== s) throw new InvalidKeyError('age key: mixed case');
  const pos = s.lastIndexOf('1');
  if (pos < 1 || pos + 7 > s.length) throw new InvalidKeyError('age key: not Bech32');
  const words = [...s.slice(pos + 1).toLowerCase()].map((c) => BECH32.indexOf(c));
  if (words.includes(-1)) throw new InvalidKeyError('age key: not Bech32');
  if (bech32Polymod(hrpExpand(s.slice(0, pos).toLowerCase()).concat(words)) !== 1) throw new InvalidKeyError('age key: bad checksum');
  let acc = 0, bits = 0;
  const out = [];
  for (const w of words.slice(0, -6)) {
    acc = (acc << 5) | w; bits += 5;
    if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 0xff); }
    acc &= (1 << bits) - 1;
  }
  if (bits >= 5 || acc !== 0) throw new InvalidKeyError('age key: non-zero padding');
  return [s.slice(0, pos), Buffer.from(out)];
}

function ageKey(text, hrp, length) {
  const [h, data] = bech32Decode(text, 2000);
  if (h !== hrp) throw new InvalidKeyError(`age key: expected the prefix ${hrp}`);
  if (data.length !== length) throw new InvalidKeyError('age key: wrong length');
  return data;
}

// §4.2: an identity file's lines end with LF (CR LF too); only spaces and tabs around them are
// ignored (not trim()'s Unicode blanks: a form feed or U+2028 inside a line makes it no key).
const identityFileLines = (text) => text.split(/\r?\n/).map((l) => l.replace(/^[ \t]+|[ \t]+$/g, ''));
const isAgeIdentityText = (text) => {
  const line = identityFileLines(text).find((l) => l && !l.startsWith('#'));
  return line !== undefined && line.startsWith('AGE-SECRET-KEY-');
};
const x25519Private = (sk) => crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8, sk]), format: 'der', type: 'pkcs8' });
const x25519Public = (pk) => crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI, pk]), format: 'der', type: 'spki' });
const x25519Kid = (pk) => sha256(X25519_SPKI, pk);
const rawX25519 = (publicKey) => publicKey.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI.length);

// §4.2 (R38): a public value not below 2^255 - 19 would seal, but its identity's key id would differ.
const canonicalX25519 = (u) => Buffer.from(u).reverse().toString('hex') < '7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed';
const loadX25519Public = (text) => {
  const pk = ageKey(text, 'age', 32);
  if (!canonicalX25519(pk)) throw new InvalidKeyError('age recipient: not a canonical X25519 key (R38)');
  return shareRecipient(X25519_TYPE, X25519_LABEL, x25519Kid(pk), pk);
};

// mlkem768x25519 (§4.4, R41, R42): age 1.3's hybrid; the KEM is @noble/post-quantum's X-Wing
// (ml_kem768_x25519: SHAKE256 seed expansion, SHA3-256 combiner), the wrap is this file's own.
const PQ_TYPE = 'mlkem768x25519';
const PQ_LABEL = Buffer.from('envelope v1 mlkem768x25519', 'ascii');
const pqWrapKey = (ss) => Buffer.from(crypto.hkdfSync('sha256', ss, Buffer.alloc(0), PQ_LABEL, 32));

function loadPqPublic(text) {
  const pk = ageKey(text, 'age1pq', 1216);
  if (!mlkemKeyValid(pk.subarray(0, 1184))) throw new InvalidKeyError('not a valid mlkem768x25519 public key'); // R42
  if (!canonicalX25519(pk.subarray(1184))) throw new InvalidKeyError('mlkem768x25519 public key: its X25519 part is not canonical (R42)');
  return {
    type: PQ_TYPE, kid: sha256(pk),
    entry(K) {
      let enc, ss;
      try { ({ cipherText: enc, sharedSecret: ss } = ml_kem768_x25519.encapsulate(pk)); } catch {
        throw new InvalidKeyError('the mlkem768x25519 public key cannot be encapsulated to'); // R42: a small-order X25519 part
      }
      const c = crypto.createCipheriv('chacha20-poly1305', pqWrapKey(ss), Buffer.alloc(12), { authTagLength: 16 });
      const key = Buffer.concat([c.update(K), c.final(), c.getAuthTag()]);
      return new Map([['type', PQ_TYPE], ['kid', sha256(pk)], ['enc', Buffer.from(enc)], ['key', key]]); // §4.4 key order
    },
  };
}

/** FIPS 203 section 7.2's encapsulation key check: every 12-bit coefficient below q = 3329. */
function mlkemKeyValid(ek) {
  for (let i = 0; i < 1152; i += 3) {
    const a = ek[i] | ((ek[i + 1] & 0x0f) << 8), b = (ek[i + 1] >> 4) | (ek[i + 2] << 4);
    if (a >= 3329 || b >= 3329) return false;
  }
  return true;
}

function pqIdentity(seed) {
  const { publicKey } = ml_kem768_x25519.keygen(seed);
  return {
    type: PQ_TYPE, kid: sha256(Buffer.from(publicKey)),
    check() {},
    unwrap(entry) { // R36, R37: null when the X25519 secret is zero or the tag fails
      let ss;
      try { ss = ml_kem768_x25519.decapsulate(entry.enc, seed); } catch { return null; }
      try {
        const d = crypto.createDecipheriv('chacha20-poly1305', pqWrapKey(ss), Buffer.alloc(12), { authTagLength: 16 });
        d.setAuthTag(entry.key.subarray(32));
        return Buffer.concat([d.update(entry.key.subarray(0, 32)), d.final()]);
      } catch { return null; }
    },
  };
}

/** A recipient of the wrap of §4.2 (and §4.3, with its type and label) for the X25519 share `pk`. */
function shareRecipient(type, label, kid, pk) {
  const publicKey = x25519Public(pk);
  return {
    type, kid,
    entry(K) {
      const esk = crypto.generateKeyPairSync('x25519');
      const epk = rawX25519(esk.publicKey);
      let shared;
      try { shared = crypto.diffieHellman({ privateKey: esk.privateKey, publicKey }); } catch { shared = Buffer.alloc(32); }
      if (shared.equals(Buffer.alloc(32))) throw new InvalidKeyError('X25519 public key of small order');
      const c = crypto.createCipheriv('chacha20-poly1305', wrapKey(shared, epk, pk, label), Buffer.alloc(12), { authTagLength: 16 });
      const key = Buffer.concat([c.update(K), c.final(), c.getAuthTag()]);
      return new Map([['type', type], ['kid', kid], ['epk', epk], ['key', key]]); // §4.2, §4.3 key order
    },
  };
}

const wrapKey = (shared, epk, pk, label) => Buffer.from(crypto.hkdfSync('sha256', shared, Buffer.concat([epk, pk]), label, 32));

function loadAgeIdentities(text) {
  const keys = [];
  identityFileLines(text).forEach((line, i) => {
    if (!line || line.startsWith('#')) return;
    try {
      if (line.startsWith('AGE-SECRET-KEY-PQ-')) {
        keys.push(pqIdentity(ageKey(line, 'AGE-SECRET-KEY-PQ-', 32)));
        return;
      }
      const sk = ageKey(line, 'AGE-SECRET-KEY-', 32);
      const pk = rawX25519(crypto.createPublicKey(x25519Private(sk)));
      keys.push(shareIdentity(X25519_TYPE, X25519_LABEL, x25519Kid(pk), sk));
    } catch (e) {
      throw new InvalidKeyError(`age identity file, line ${i + 1}: ${e.message}`); // never the line itself
    }
  });
  if (keys.length === 0) throw new InvalidKeyError('no identity in the age identity file');
  return keys;
}

/** An identity for the wrap of §4.2 (and §4.3) with the X25519 secret `sk`. */
function shareIdentity(type, label, kid, sk) {
  const privateKey = x25519Private(sk);
  const pk = rawX25519(crypto.createPublicKey(privateKey));
  return {
    type, kid, pk,
    check() {},
    unwrap(entry) { // R36, R37: null when the shared secret is all zero or the tag fails
      let shared;
      try { shared = crypto.diffieHellman({ privateKey, publicKey: x25519Public(entry.epk) }); } catch { return null; }
      if (shared.equals(Buffer.alloc(32))) return null;
      try {
        const d = crypto.createDecipheriv('chacha20-poly1305', wrapKey(shared, entry.epk, pk, label), Buffer.alloc(12), { authTagLength: 16 });
        d.setAuthTag(entry.key.subarray(32));
        return Buffer.concat([d.update(entry.key.subarray(0, 32)), d.final()]);
      } catch { return null; }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ssh-ed25519 recipients (§4.3, R39, R40)

const SSH_TYPE = 'ssh-ed25519';
const SSH_LABEL = Buffer.from('envelope v1 ssh-ed25519', 'ascii');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

function sshStrings(buf, count) { // the first `count` SSH wire strings of buf, and where they end
  const out = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + 4 > buf.length) throw new InvalidKeyError('not a valid OpenSSH key');
    const n = buf.readUInt32BE(pos);
    if (pos + 4 + n > buf.length) throw new InvalidKeyError('not a valid OpenSSH key');
    out.push(buf.subarray(pos + 4, pos + 4 + n));
    pos += 4 + n;
  }
  return [out, pos];
}

/** §4.3: the X25519 share u = (1 + y) / (1 - y) mod p of a valid Ed25519 public key (R40). */
function montgomeryU(A) {
  if (A.length !== 32 || !validEd25519(A)) throw new InvalidKeyError('the ssh-ed25519 key is not a valid Ed25519 public key');
  const y = BigInt('0x' + Buffer.from(A).reverse().toString('hex')) & ((1n << 255n) - 1n);
  const u = ((1n + y) * modPow((1n - y + ED_P) % ED_P, ED_P - 2n, ED_P)) % ED_P;
  return Buffer.from(u.toString(16).padStart(64, '0'), 'hex').reverse();
}
function modPow(b, e, m) { let r = 1n; b %= m; for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m; return r; }

function loadSshPublic(line) {
  const [type, b64] = line.split(/\s+/);
  const [[name, A]] = [sshStrings(Buffer.from(b64 ?? '', 'base64'), 2)[0]].map((f) => [f[0].toString('latin1'), f[1]]);
  if (type !== SSH_TYPE || name !== SSH_TYPE) throw new InvalidKeyError('not an ssh-ed25519 public key line');
  return shareRecipient(SSH_TYPE, SSH_LABEL, sha256(ED25519_SPKI, A), montgomeryU(A));
}

function loadSshPrivate(text) {
  const body = text.split('-----BEGIN OPENSSH PRIVATE KEY-----')[1]?.split('-----END')[0] ?? '';
  const raw = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  if (!raw.subarray(0, magic.length).equals(magic)) throw new InvalidKeyError('not an OpenSSH private key');
  const rest = raw.subarray(magic.length);
  const [[cipher, kdf, , ], pos] = sshStrings(rest, 3);
  if (cipher.toString() !== 'none' || kdf.toString() !== 'none') {
    throw new InvalidKeyError('passphrase-protected OpenSSH keys are not read by this reference');
  }
  if (rest.readUInt32BE(pos) !== 1) throw new InvalidKeyError('an OpenSSH file of one key is expected');
  const [[blob, priv]] = sshStrings(rest.subarray(pos + 4), 2);
  const [[outerType, outerA]] = sshStrings(blob, 2);
  if (outerType.toString() !== SSH_TYPE) throw new InvalidKeyError('not an Ed25519 OpenSSH key');
  const [[, , innerType, innerA, secret]] = [sshStrings(priv.subarray(8), 3)[0]].map((f) => [0, 0, ...f]);
  if (innerType.toString() !== SSH_TYPE || secret.length !== 64) throw new InvalidKeyError('not an Ed25519 OpenSSH key');
  const seed = secret.subarray(0, 32);
  const derived = crypto.createPublicKey(crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' }))
    .export({ type: 'spki', format: 'der' }).subarray(ED25519_SPKI.length);
  if (!derived.equals(outerA) || !derived.equals(innerA)) { // R40
    throw new InvalidKeyError('the OpenSSH private key does not hold the public key it shows');
  }
  const u = montgomeryU(derived); // R40: a valid key
  const sk = crypto.createHash('sha512').update(seed).digest().subarray(0, 32);
  const identity = shareIdentity(SSH_TYPE, SSH_LABEL, sha256(ED25519_SPKI, derived), sk);
  if (!identity.pk.equals(u)) throw new InvalidKeyError('the Ed25519 key does not convert consistently');
  return identity;
}

// ---------------------------------------------------------------------------------------------
// Crypto primitives (§6, §7.2)

const hmac = (key, ...data) => { const h = crypto.createHmac('sha256', key); data.forEach((d) => h.update(d)); return h.digest(); };
const headerMacKey = (K) => Buffer.from(crypto.hkdfSync('sha256', K, Buffer.alloc(0), HKDF_INFO, 32));
/** §6: the commitment to K that the header's `commit` holds. */
const keyCommitment = (K) => Buffer.from(crypto.hkdfSync('sha256', K, Buffer.alloc(0), COMMIT_INFO, COMMIT_LEN));
const u64be = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };

function fernetEncrypt(K, message, timestamp) {
  const iv = crypto.randomBytes(16); // fresh for every token
  const cipher = crypto.createCipheriv('aes-128-cbc', K.subarray(16, 32), iv);
  const body = Buffer.concat([Buffer.of(FERNET_VERSION), u64be(timestamp), iv, cipher.update(message), cipher.final()]);
  return Buffer.concat([body, hmac(K.subarray(0, 16), body)]);
}

/** Verifies a raw Fernet token (HMAC first, constant time) and returns its message; throws R19. */
function fernetDecrypt(K, token) {
  const fail = () => new AuthenticationError(PAYLOAD_AUTH_FAILED);
  if (token.length < MIN_TOKEN || (token.length - 57) % 16 !== 0 || token[0] !== FERNET_VERSION) throw fail();
  const body = token.subarray(0, token.length - MAC_LEN);
  if (!crypto.timingSafeEqual(hmac(K.subarray(0, 16), body), token.subarray(token.length - MAC_LEN))) throw fail();
  const decipher = crypto.createDecipheriv('aes-128-cbc', K.subarray(16, 32), token.subarray(9, 25));
  try { return Buffer.concat([decipher.update(token.subarray(25, token.length - MAC_LEN)), decipher.final()]); }
  catch { throw fail(); } // bad PKCS7 padding
}

// ---------------------------------------------------------------------------------------------
// Signatures (§8). PEM and the few DER structures that node:crypto cannot parse (ML-DSA keys).

const sha256 = (...parts) => { const h = crypto.createHash('sha256'); parts.forEach((p) => h.update(p)); return h.digest(); };
const u32be = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = P256_N >> 1n; // §8.2: s <= n/2 (n is odd, so s <= floor(n/2))
const MLDSA65_OID = Buffer.from('0609608648016503040312', 'hex'); // 2.16.840.1.101.3.4.3.18, tag and length included
// The whole SPKI of an ML-DSA-65 key is this prefix (AlgorithmIdentifier without parameters, a
// BIT STRING with no unused bits) and the 1952-byte public key: DER leaves no other encoding.
const MLDSA65_SPKI_PREFIX = Buffer.from('308207b2300b0609608648016503040312038207a100', 'hex');
const MLDSA65_PUBLIC_LEN = 1952;
const MLDSA65_EXPANDED_LEN = 4032;
const MLDSA65_SEED_LEN = 32;
const TBS_LABEL = Buffer.from('envelope v1 signature\0', 'latin1'); // 22 bytes
const SIGNATURE_EXTENSION = 'signature';

/** The DER body of the only PEM block of `label` in `pem`, or null. */
function pemDer(pem, label) {
  const blocks = [...String(pem).matchAll(/-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g)];
  if (blocks.length !== 1 || blocks[0][1] !== label) return null;
  return Buffer.from(blocks[0][2].replace(/[\r\n]/g, ''), 'base64');
}

/** One DER TLV at `pos`: { tag, body, next }; throws on anything malformed. */
function derTlv(buf, pos) {
  if (pos + 2 > buf.length) throw new InvalidKeyError('truncated DER');
  const tag = buf[pos];
  let len = buf[pos + 1], p = pos + 2;
  if (len & 0x80) {
    const nb = len & 0x7f;
    if (nb < 1 || nb > 3 || p + nb > buf.length) throw new InvalidKeyError('bad DER length');
    len = buf.readUIntBE(p, nb);
    p += nb;
  }
  if (len > buf.length - p) throw new InvalidKeyError('truncated DER');
  return { tag, body: buf.subarray(p, p + len), next: p + len };
}

/**
 * An ML-DSA-65 PKCS#8 private key (RFC 9881: the seed, the expanded key, or both), or null when
 * the DER holds another algorithm. node:crypto in Node 20 cannot parse it.
 */
function mlDsaPrivate(der) {
  let seed = null, expanded = null;
  try {
    const outer = derTlv(der, 0);
    if (outer.tag !== 0x30 || outer.next !== der.length) return null;
    const version = derTlv(outer.body, 0);
    const algorithm = derTlv(outer.body, version.next);
    if (version.tag !== 0x02 || algorithm.tag !== 0x30 || !algorithm.body.equals(MLDSA65_OID)) return null;
    const octets = derTlv(outer.body, algorithm.next);
    if (octets.tag !== 0x04) throw new InvalidKeyError('bad ML-DSA private key');
    const choice = derTlv(octets.body, 0);
    if (choice.next !== octets.body.length) throw new InvalidKeyError('bad ML-DSA private key');
    if (choice.tag === 0x80) seed = choice.body; // seed [0] IMPLICIT OCTET STRING
    else if (choice.tag === 0x04) expanded = choice.body;
    else if (choice.tag === 0x30) { // both: SEQUENCE { seed, expandedKey }
      const s = derTlv(choice.body, 0), e = derTlv(choice.body, s.next);
      if (s.tag !== 0x04 || e.tag !== 0x04 || e.next !== choice.body.length) throw new InvalidKeyError('bad ML-DSA private key');
      [seed, expanded] = [s.body, e.body];
    } else throw new InvalidKeyError('bad ML-DSA private key');
  } catch (e) {
    if (e instanceof InvalidKeyError) throw e;
    throw new InvalidKeyError('bad ML-DSA private key');
  }
  if ((seed && seed.length !== MLDSA65_SEED_LEN) || (expanded && expanded.length !== MLDSA65_EXPANDED_LEN)) {
    throw new InvalidKeyError('bad ML-DSA-65 private key length');
  }
  let secretKey, publicKey;
  if (seed) {
    ({ secretKey, publicKey } = ml_dsa65.keygen(seed));
    // A key file whose two halves disagree would sign under a key other than the one it shows.
    if (expanded && !crypto.timingSafeEqual(Buffer.from(secretKey), expanded)) throw new InvalidKeyError('ML-DSA seed and expanded key differ');
  } else {
    secretKey = Uint8Array.from(expanded);
    publicKey = ml_dsa65.getPublicKey(secretKey);
  }
  return { secretKey, spki: Buffer.concat([MLDSA65_SPKI_PREFIX, publicKey]) };
}

function nodePublicKey(der) {
  try { return crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }); } catch { return null; }
}
const isEd25519 = (k) => k.asymmetricKeyType === 'ed25519';
const isP256 = (k) => k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1';
/** SPKI DER of a node key; an EC point uncompressed (node keeps a compressed one as it was read). */
function spkiOf(k) {
  const canonical = isP256(k) ? crypto.createPublicKey({ key: k.export({ format: 'jwk' }), format: 'jwk' }) : k;
  return canonical.export({ type: 'spki', format: 'der' });
}
const bigIntOf = (bytes) => BigInt(`0x${bytes.toString('hex')}`);

// §8.1: an Ed25519 key must be a valid point (RFC 8032 section 5.1.3) that is not of small order.
// This is validation of public data, so plain BigInt arithmetic (not constant time) is fine.
const ED_P = 2n ** 255n - 19n;
const edMod = (a) => ((a % ED_P) + ED_P) % ED_P;
const edPow = (b, e) => {
  let r = 1n;
  for (b = edMod(b); e > 0n; e >>= 1n, b = (b * b) % ED_P) if (e & 1n) r = (r * b) % ED_P;
  return r;
};
const edInv = (a) => edPow(a, ED_P - 2n);
const ED_D = edMod(-121665n * edInv(121666n));
const ED_SQRT_M1 = edPow(2n, (ED_P - 1n) / 4n);
/** RFC 8032 section 5.1.3: the point [x, y] that 32 bytes encode, or null (y >= p, no such x). */
function ed25519Decode(bytes) {
  const sign = bytes[31] >> 7;
  const y = BigInt(`0x${Buffer.from(bytes).reverse().toString('hex')}`) & ((1n << 255n) - 1n);
  if (y >= ED_P) return null; // a second encoding of y - p
  const y2 = (y * y) % ED_P;
  const x2 = edMod((y2 - 1n) * edInv(ED_D * y2 + 1n)); // the denominator is never 0: d is not a square
  let x = edPow(x2, (ED_P + 3n) / 8n);
  if ((x * x) % ED_P !== x2) x = (x * ED_SQRT_M1) % ED_P;
  if ((x * x) % ED_P !== x2) return null; // x² has no square root: not a curve point
  if (x === 0n && sign === 1) return null;
  if (Number(x & 1n) !== sign) x = ED_P - x;
  return [x, y];
}
/** The complete twisted Edwards addition (a = -1), affine. */
function edAdd([x1, y1], [x2, y2]) {
  const t = (((((ED_D * x1) % ED_P) * x2) % ED_P) * y1 * y2) % ED_P;
  return [edMod((x1 * y2 + y1 * x2) * edInv(1n + t)), edMod((y1 * y2 + x1 * x2) * edInv(edMod(1n - t)))];
}
/** §8.1 (R24): `raw` (32 bytes) encodes y < p, a curve point, and [8]P is not the identity (0, 1). */
function validEd25519(raw) {
  let P = ed25519Decode(raw);
  if (!P) return false;
  for (let i = 0; i < 3; i++) P = edAdd(P, P);
  return !(P[0] === 0n && P[1] === 1n);
}

/**
 * §8.2. `publicKey(der)` returns { spki, verify(tbs, sig) } for a valid public key of the scheme's
 * kind (§8.1; spki: its DER in the form this implementation writes) or null; `sign(key, tbs)` signs.
 */
const SCHEMES = new Map([
  ['ed25519', {
    signatureLength: 64,
    publicKey(der) {
      const k = nodePublicKey(der);
      if (!k || !isEd25519(k) || !validEd25519(Buffer.from(k.export({ format: 'jwk' }).x, 'base64url'))) return null;
      // OpenSSL refuses a non-canonical S (S >= L), the strict verification §8.2 asks for.
      return { spki: spkiOf(k), verify: (tbs, sig) => sig.length === 64 && crypto.verify(null, tbs, k, sig) };
    },
    sign: (key, tbs) => crypto.sign(null, tbs, key),
  }],
  ['ecdsa-p256-sha256', {
    signatureLength: 64,
    publicKey(der) {
      // node:crypto (OpenSSL) refuses a point that is not on P-256 or has a coordinate >= p, and
      // the uncompressed form cannot encode the point at infinity (§8.1; test/signer-keys.test.mjs checks it).
      const k = nodePublicKey(der);
      if (!k || !isP256(k)) return null;
      return {
        spki: spkiOf(k),
        // R27: a high s is refused before verifying, since plain ECDSA would accept it.
        verify: (tbs, sig) => sig.length === 64 && bigIntOf(sig.subarray(32)) <= P256_HALF_N
          && crypto.verify('sha256', tbs, { key: k, dsaEncoding: 'ieee-p1363' }, sig),
      };
    },
    sign(key, tbs) {
      const sig = crypto.sign('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' });
      const s = bigIntOf(sig.subarray(32));
      if (s > P256_HALF_N) Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex').copy(sig, 32);
      return sig;
    },
  }],
  ['ml-dsa-65', {
    signatureLength: 3309,
    publicKey(der) {
      if (der.length !== MLDSA65_SPKI_PREFIX.length + MLDSA65_PUBLIC_LEN || !der.subarray(0, MLDSA65_SPKI_PREFIX.length).equals(MLDSA65_SPKI_PREFIX)) return null;
      const pk = Uint8Array.from(der.subarray(MLDSA65_SPKI_PREFIX.length));
      return {
        spki: Buffer.from(der),
        verify(tbs, sig) {
          if (sig.length !== 3309) return false;
          try { return ml_dsa65.verify(sig, tbs, pk); } catch { return false; } // FIPS 204 pure, empty context
        },
      };
    },
    sign: (key, tbs) => Buffer.from(ml_dsa65.sign(tbs, key)),
  }],
]);
const SCHEME_NAMES = [...SCHEMES.keys()].join(', ');

/** A signing key from PKCS#8 PEM (SEC1 for P-256 too): { alg, spki, sign(tbs) }. */
function loadSigningKey(pem) {
  if (typeof pem !== 'string' && !Buffer.isBuffer(pem)) throw new TypeError('signWith must be a PEM string or Buffer');
  const der = pemDer(pem, 'PRIVATE KEY');
  const mldsa = der && mlDsaPrivate(der);
  if (mldsa) return { alg: 'ml-dsa-65', spki: mldsa.spki, sign: (tbs) => SCHEMES.get('ml-dsa-65').sign(mldsa.secretKey, tbs) };
  let key;
  try { key = crypto.createPrivateKey(pem); } catch { throw new InvalidKeyError('cannot load signing key'); }
  const alg = isEd25519(key) ? 'ed25519' : isP256(key) ? 'ecdsa-p256-sha256' : null;
  if (!alg) throw new InvalidKeyError(`signing key must be one of: ${SCHEME_NAMES}`);
  return { alg, spki: spkiOf(crypto.createPublicKey(key)), sign: (tbs) => SCHEMES.get(alg).sign(key, tbs) };
}

/** A trusted signer's public key (SPKI PEM) -> its key id (§8.1), over the DER this implementation writes. */
function loadVerifyingKey(pem) {
  const der = pemDer(pem, 'PUBLIC KEY');
  if (!der) throw new InvalidKeyError('expected a "PUBLIC KEY" (SPKI) PEM');
  for (const scheme of SCHEMES.values()) {
    const k = scheme.publicKey(der);
    if (k) return sha256(k.spki);
  }
  throw new InvalidKeyError(`signer key must be one of: ${SCHEME_NAMES}`);
}

/** `signedBy` option -> array of trusted key ids, or null when any signer (or none) is accepted. */
function loadTrusted(signedBy) {
  if (signedBy === undefined || signedBy === null) return null;
  if (!Array.isArray(signedBy) || signedBy.length === 0) {
    throw new TypeError('signedBy must be a non-empty array of public key PEMs (or omitted to accept any signer)');
  }
  return signedBy.map(loadVerifyingKey);
}

/** §8.1: the `signer` map (R24, R25) -> { alg, kid, key, scheme, verify }. */
function parseSigner(s) {
  if (!isMap(s) || typeof s.alg !== 'string' || !Buffer.isBuffer(s.kid) || !Buffer.isBuffer(s.key)) {
    throw new MalformedError('signer is not a map of alg (str), kid (bin) and key (bin)');
  }
  if (s.kid.length !== 32 || !sha256(s.key).equals(s.kid)) throw new MalformedError('signer kid is not SHA-256 of its key');
  const scheme = SCHEMES.get(s.alg);
  if (!scheme) throw new UnsupportedError('unsupported signature algorithm'); // R25
  const k = scheme.publicKey(s.key);
  // The key must be valid (checked now, before any signature: R24, never R27) and be the DER this
  // implementation writes for it (for P-256: the uncompressed point), so that one key has one key id.
  if (!k || !k.spki.equals(s.key)) throw new MalformedError('signer key is not a valid public key of its algorithm');
  return { alg: s.alg, kid: s.kid, key: s.key, scheme, verify: k.verify };
}

/**
 * §8.3: the signed header H, every top-level entry but `recipients`, in file order, each as its key
 * and value bytes exactly as they are in `headerBytes` (`entries` from decodeStrict).
 */
const signedHeader = (headerBytes, entries) =>
  Buffer.concat(entries.filter((e) => e.key !== 'recipients').map((e) => headerBytes.subarray(e.start, e.end)));

/** §8.3: the bytes a signature covers. */
const signatureInput = (H, n, tagsDigest) => Buffer.concat([TBS_LABEL, u32be(H.length), H, u64be(n), tagsDigest]);

// ---------------------------------------------------------------------------------------------
// seal (§7, §8, §10)

/**
 * Seals `plaintext` for every RSA public key (SPKI PEM) in `publicKeyPems`; with `signWith` (a
 * PKCS#8 PEM private key: Ed25519, ECDSA P-256 or ML-DSA-65) the file is signed (§8).
 * @param {Buffer|Uint8Array} plaintext
 * @param {string[]} publicKeyPems
 * @param {{chunkSize?: number, metadata?: object|Map, signWith?: string|Buffer}} [options]
 * @returns {Buffer} the envelope file
 */
export function seal(plaintext, publicKeyPems, { chunkSize = DEFAULT_CHUNK, metadata = {}, signWith } = {}) {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Buffer or Uint8Array');
  plaintext = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  if (!Number.isSafeInteger(chunkSize)) throw new TypeError('chunkSize must be an integer');
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new LimitError(`chunk size must be ${MIN_CHUNK} to ${MAX_CHUNK}`);
  if (!(metadata instanceof Map || isMap(metadata))) throw new TypeError('metadata must be a map');
  if (!Array.isArray(publicKeyPems) || publicKeyPems.length === 0) throw new TypeError('at least one recipient is required');

  // One entry per distinct key id (§10: no duplicate kid).
  const recipients = new Map();
  const symmetricKeys = new Map(); // §4.5, §4.6: passphrases and shared Fernet keys
  for (const pem of publicKeyPems) {
    if (symmetric.isSymmetricKey(pem)) { symmetricKeys.set(pem.kind === 'fernet' ? pem.kid.toString('hex') : pem, pem); continue; }
    const r = loadPublic(pem);
    recipients.set(`${r.type}:${r.kid.toString('hex')}`, r);
  }
  const alone = recipients.size + symmetricKeys.size === 1;
  if (!alone && [...symmetricKeys.values()].some((k) => k.kind === 'scrypt')) {
    throw new TypeError('a passphrase must be the only recipient of its file (§4.5)');
  }
  if (recipients.size + symmetricKeys.size > MAX_RECIPIENTS) throw new LimitError(`more than ${MAX_RECIPIENTS} recipients`);
  const signer = signWith === undefined ? null : loadSigningKey(signWith);

  const meta = encodeCanonical(metadata, MAX_META_DEPTH);
  if (meta.length > MAX_META_LEN) throw new LimitError(`metadata longer than ${MAX_META_LEN} bytes`);

  const K = crypto.randomBytes(32);
  const entries = [...recipients.values()].map((r) => r.entry(K)) // §4.1-§4.4 key order
    .concat([...symmetricKeys.values()].map((k) => symmetric.wrapSymmetric(k, K))); // §4.5, §4.6
  // §3.1 canonical top-level order: chunk_size, recipients, meta, commit, then critical and signer.
  const fields = new Map([['chunk_size', chunkSize], ['recipients', entries], ['meta', meta], ['commit', keyCommitment(K)]]);
  if (signer) {
    fields.set('critical', [SIGNATURE_EXTENSION]);
    fields.set('signer', new Map([['alg', signer.alg], ['kid', sha256(signer.spki)], ['key', signer.spki]])); // §8.1 order
  }
  const header = encodeCanonical(fields);
  if (header.length > MAX_HEADER_LEN) throw new LimitError(`header longer than ${MAX_HEADER_LEN} bytes`);

  const prefix = Buffer.alloc(PREFIX_LEN);
  MAGIC.copy(prefix, 0);
  prefix[8] = VERSION;
  prefix.writeUInt32BE(header.length, 9);
  const parts = [prefix, header, hmac(headerMacKey(K), prefix, header)];

  // §7.1: n = floor(len / chunk_size) + 1; the final chunk is shorter than chunk_size, maybe empty.
  const n = Math.floor(plaintext.length / chunkSize) + 1;
  const tags = [];
  for (let i = 0; i < n; i++) {
    const chunk = plaintext.subarray(i * chunkSize, Math.min((i + 1) * chunkSize, plaintext.length));
    const message = Buffer.concat([u64be(i), Buffer.of(i === n - 1 ? 1 : 0), chunk]);
    // §7.2: the timestamp field is 0, and the final token's own length in the last token.
    const token = fernetEncrypt(K, message, i === n - 1 ? tokenLen(chunk.length) : 0);
    parts.push(token);
    tags.push(token.subarray(token.length - MAC_LEN));
  }
  if (signer) { // §8.3 footer: the tags, then the signature over tbs, whose H is cut from the header's bytes
    const entries = [];
    decodeStrict(header, MAX_HEADER_DEPTH, MalformedError, entries);
    // No spread of `tags` into a call: a file of 150 000 tokens would exceed the call stack.
    const tagHash = crypto.createHash('sha256');
    for (const tag of tags) tagHash.update(tag);
    const tbs = signatureInput(signedHeader(header, entries), n, tagHash.digest());
    for (const tag of tags) parts.push(tag);
    parts.push(signer.sign(tbs));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Reading (§2 - §8, rejecting per §9)

/** Parses and validates the header bytes (R5-R12, R24, R25); no key is needed. */
function parseHeader(headerBytes) {
  // §3.1 (R5)
  const entries = [];
  const header = decodeStrict(headerBytes, MAX_HEADER_DEPTH, MalformedError, entries);
  if (!isMap(header)) throw new MalformedError('header is not a map');

  // §3.2 required fields and types (R6)
  const { chunk_size: chunkSize, recipients, meta, commit } = header;
  if (!isInt(chunkSize)) throw new MalformedError('chunk_size missing or not an integer');
  if (!Array.isArray(recipients)) throw new MalformedError('recipients missing or not an array');
  if (!Buffer.isBuffer(meta)) throw new MalformedError('meta missing or not bin');
  if (!Buffer.isBuffer(commit) || commit.length !== COMMIT_LEN) throw new MalformedError('commit missing or not a 32-byte bin');
  const critical = Object.hasOwn(header, 'critical') ? header.critical : [];
  if (!(Array.isArray(critical) && critical.every((c) => typeof c === 'string'))) {
    throw new MalformedError('critical is not an array of strings');
  }
  if (new Set(critical).size !== critical.length) { // §3.4: an extension is named once (R6)
    throw new MalformedError('critical names an extension twice');
  }
  // §3.4 (R12), before the other field rules, since an extension may change how they are read.
  if (critical.some((c) => c !== SIGNATURE_EXTENSION)) throw new UnsupportedError('file requires an unsupported extension');

  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new LimitError('chunk_size out of range'); // R7
  if (recipients.length === 0) throw new MalformedError('no recipient entry'); // R8
  if (recipients.length > MAX_RECIPIENTS) throw new LimitError(`more than ${MAX_RECIPIENTS} recipients`); // R8

  // §4 recipient entries (R9, R10)
  const keyEntries = new Map(); // "type:kid hex" -> entry
  for (const entry of recipients) {
    if (!isMap(entry) || typeof entry.type !== 'string') throw new MalformedError('bad recipient entry');
    const typeLen = Buffer.byteLength(entry.type, 'utf8');
    if (typeLen < 1 || typeLen > 64) throw new MalformedError('bad recipient entry type');
    const shape = ENTRY_FIELDS[entry.type];
    if (!Object.hasOwn(ENTRY_FIELDS, entry.type)) continue; // types this reader does not implement are skipped
    for (const [field, length] of Object.entries(shape)) { // R10, R35
      const v = entry[field];
      if (!Buffer.isBuffer(v) || (length !== null && v.length !== length)) throw new MalformedError(`bad ${entry.type} recipient entry`);
    }
    const id = `${entry.type}:${entry.kid.toString('hex')}`;
    if (keyEntries.has(id)) throw new MalformedError('duplicate recipient key id');
    keyEntries.set(id, entry);
  }
  symmetric.checkSymmetricEntries(recipients); // §4.5, §4.6 (R45, R47, R49)

  // §5 metadata (R11)
  if (meta.length > MAX_META_LEN) throw new LimitError(`metadata longer than ${MAX_META_LEN} bytes`);
  const metadata = decodeStrict(meta, MAX_META_DEPTH, LimitError);
  if (!isMap(metadata)) throw new MalformedError('metadata is not a map');

  // §8.1 (R24, R25): `signature` in critical and a `signer` key go together.
  const signed = critical.includes(SIGNATURE_EXTENSION);
  if (signed !== Object.hasOwn(header, 'signer')) throw new MalformedError('signer and the signature extension must come together');
  const signer = signed ? { ...parseSigner(header.signer), H: signedHeader(headerBytes, entries) } : null;

  return { chunkSize: Number(chunkSize), keyEntries, recipients, meta, commit, metadata, critical, signer };
}

/** §4.1 rules 2-4 and §6: the data key K, once its commitment and the header MAC verified (R13-R16). */
function authenticateHeader(keys, { keyEntries, recipients }, commit, prefixAndHeader, mac) {
  // Find the entry by type and key id (a passphrase: the scrypt entry), no trial decryption; the
  // first key (in the caller's order) that matches.
  let match;
  for (const k of keys) {
    const entry = symmetric.isSymmetricKey(k) ? symmetric.findSymmetric(k, recipients)
      : keyEntries.get(`${k.type}:${k.kid.toString('hex')}`);
    if (entry) { match = { k, entry }; break; }
  }
  if (!match) throw new NoMatchingKeyError('none of the given keys is a recipient of this file'); // R13
  const symmetricKey = symmetric.isSymmetricKey(match.k);
  if (!symmetricKey) match.k.check(match.entry); // R14

  // R15/R16 (R36, R37, R46, R50): an unwrap failure continues with a random key so that it fails
  // exactly (same class, message and code path) as a header MAC mismatch; a wrong commitment fails
  // as one too (§6). A scrypt entry over the reader's limit throws LimitError first (R48).
  let K = symmetricKey ? symmetric.unwrapSymmetric(match.k, match.entry) : match.k.unwrap(match.entry);
  const unwrapped = K !== null && K.length === 32;
  if (!unwrapped) K = crypto.randomBytes(32);
  // Both comparisons always run, in constant time; neither result is reported apart (§6).
  const commitOk = crypto.timingSafeEqual(keyCommitment(K), commit);
  const macOk = crypto.timingSafeEqual(hmac(headerMacKey(K), prefixAndHeader), mac);
  if (!(commitOk && macOk && unwrapped)) throw new AuthenticationError(HEADER_AUTH_FAILED);
  return K;
}

/** §7.4 checks 2-6 of token `i` (check 1 is the caller's); returns the chunk D_i. */
function openToken(K, token, i, final, chunkSize) {
  const M = fernetDecrypt(K, token); // R19: version, HMAC before anything else, padding
  if (M.length < 9 || M.readBigUInt64BE(0) !== BigInt(i) || M[8] !== (final ? 1 : 0)) {
    throw new AuthenticationError(PAYLOAD_AUTH_FAILED); // R19 (short message), R20 (index, flag)
  }
  const D = M.subarray(9);
  if (final ? D.length >= chunkSize : D.length !== chunkSize) throw new AuthenticationError(PAYLOAD_AUTH_FAILED); // R21
  return D;
}

/**
 * The reading state machine, fed the file's bytes in order (push) and told when they end
 * (finish). It reads tokens sequentially (§7.4): each token's timestamp field says whether it is
 * the final one and how long it is, so the footer (§8.3) is found without knowing the file length,
 * and a cut stream (R18) is told apart from bytes appended (R22, R26).
 *
 * keys: loaded RSA private keys, or null for the keyless signature check (no decryption, and an
 * unsigned file is refused). trusted: the key ids of the accepted signers, or null.
 */
class Reader {
  constructor(keys, trusted) {
    this.keys = keys;
    this.trusted = trusted;
    this.parts = []; // received, not yet consumed
    this.size = 0;
    this.state = 'prefix';
    this.header = null; // parseHeader's result, once authenticated (or parsed, keyless)
    this.n = 0; // tokens read
    this.tagsHash = crypto.createHash('sha256'); // the tokens' tags
    this.footerHash = crypto.createHash('sha256'); // the footer's tags
    this.footerTags = 0; // footer tags hashed
  }

  /** Consumes `data`; returns the chunks it verified (possibly none). */
  push(data) {
    if (data.length > 0) { this.parts.push(data); this.size += data.length; }
    const out = [];
    while (this.step(out));
    return out;
  }

  take(n) {
    let first = this.parts[0];
    if (first.length < n) { first = Buffer.concat(this.parts); this.parts = [first]; }
    if (first.length === n) this.parts.shift(); else this.parts[0] = first.subarray(n);
    this.size -= n;
    return first.subarray(0, n);
  }

  peek(n) {
    if (this.parts[0].length < n) this.parts = [Buffer.concat(this.parts)];
    return this.parts[0].subarray(0, n);
  }

  step(out) {
    switch (this.state) {
      case 'prefix': { // §2 (R1-R3)
        if (this.size < PREFIX_LEN) return false;
        this.prefix = Buffer.from(this.take(PREFIX_LEN));
        if (!this.prefix.subarray(0, 8).equals(MAGIC)) throw new MalformedError('not an envelope file'); // R1
        if (this.prefix[8] !== VERSION) throw new UnsupportedError('unsupported format version'); // R2
        this.headerLen = this.prefix.readUInt32BE(9);
        if (this.headerLen === 0) throw new MalformedError('empty header'); // R3
        if (this.headerLen > MAX_HEADER_LEN) throw new LimitError(`header longer than ${MAX_HEADER_LEN} bytes`); // R3
        this.state = 'header';
        return true;
      }
      case 'header': { // §3-§6, then §8.4 before any key is used
        if (this.size < this.headerLen + MAC_LEN) return false; // else R4 at the end
        const headerBytes = Buffer.from(this.take(this.headerLen));
        const mac = this.take(MAC_LEN);
        const header = parseHeader(headerBytes); // R5-R12, R24, R25
        if (this.trusted || !this.keys) {
          if (!header.signer) throw new SignerError('the file is not signed'); // R28
          if (this.trusted && !this.trusted.some((kid) => kid.equals(header.signer.kid))) {
            throw new SignerError('the file is signed by a key that is not trusted'); // R28
          }
        }
        if (this.keys) this.K = authenticateHeader(this.keys, header, header.commit, Buffer.concat([this.prefix, headerBytes]), mac);
        this.header = header;
        this.T = tokenLen(header.chunkSize);
        this.state = 'token-start';
        return true;
      }
      case 'token-start': { // §7.4 check 1, from the token's first 9 bytes (R19)
        if (this.size < 9) return false;
        const head = this.peek(9);
        const t = head.readBigUInt64BE(1);
        if (head[0] !== FERNET_VERSION) throw new AuthenticationError(PAYLOAD_AUTH_FAILED);
        if (t === 0n) [this.tokenLength, this.final] = [this.T, false];
        else if (t <= BigInt(this.T) && validTokenLen(Number(t), this.T)) [this.tokenLength, this.final] = [Number(t), true];
        else throw new AuthenticationError(PAYLOAD_AUTH_FAILED);
        this.state = 'token';
        return true;
      }
      case 'token': { // §7.4 checks 2-6
        if (this.size < this.tokenLength) return false;
        const token = this.take(this.tokenLength);
        this.tagsHash.update(token.subarray(token.length - MAC_LEN));
        if (this.K) {
          const D = openToken(this.K, token, this.n, this.final, this.header.chunkSize);
          if (D.length > 0) out.push(D);
        }
        this.n++;
        this.state = !this.final ? 'token-start' : this.header.signer ? 'footer' : 'end';
        return true;
      }
      case 'footer': { // §8.3: the footer's n tags, hashed as they arrive (its "Memory" paragraph)
        const count = Math.min(this.n - this.footerTags, Math.floor(this.size / MAC_LEN));
        if (count > 0) { this.footerHash.update(this.take(count * MAC_LEN)); this.footerTags += count; }
        if (this.footerTags < this.n) return false; // else R26 at the end
        this.state = 'signature';
        return true;
      }
      case 'signature': { // §8.3 steps 2 and 3
        const { signer } = this.header;
        if (this.size < signer.scheme.signatureLength) return false; // else R26 at the end
        const signature = this.take(signer.scheme.signatureLength);
        const tagsDigest = this.tagsHash.digest();
        // Step 2 (R27): the footer's tags are the tokens' tags. Comparing digests keeps memory
        // constant however many tokens there are; SHA-256 makes it the same check.
        if (!crypto.timingSafeEqual(this.footerHash.digest(), tagsDigest)) {
          throw new SignatureError('signature footer does not match the payload');
        }
        const tbs = signatureInput(signer.H, this.n, tagsDigest);
        if (!signer.verify(tbs, signature)) throw new SignatureError('signature does not verify'); // R27
        this.state = 'end';
        return true;
      }
      case 'end':
        if (this.size > 0) {
          if (this.header.signer) throw new SignatureError('bytes after the signature footer'); // R26
          throw new AuthenticationError('bytes after the final token'); // R22
        }
        return false;
      default:
        throw new Error(`unreachable state ${this.state}`);
    }
  }

  /** The input ended: every check passed, or the matching error. */
  finish() {
    switch (this.state) {
      case 'prefix': throw new MalformedError('not an envelope file'); // R1: fewer than 13 bytes
      case 'header': throw new MalformedError('file ends inside the header'); // R4
      case 'token-start':
      case 'token':
        if (this.n === 0 && this.size === 0) throw new AuthenticationError('payload has no token'); // R17
        throw new AuthenticationError('payload is truncated'); // R18
      case 'footer':
      case 'signature': throw new SignatureError('signature footer is truncated'); // R26
      default: break;
    }
    const s = this.header.signer;
    return {
      chunkCount: this.n,
      signer: s ? { algorithm: s.alg, keyId: s.kid.toString('hex'), publicKey: Buffer.from(s.key) } : null,
    };
  }
}

function asBuffer(sealed) {
  if (!(sealed instanceof Uint8Array)) throw new TypeError('sealed must be a Buffer or Uint8Array');
  return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
}

function loadKeys(privateKeyPems) {
  if (!Array.isArray(privateKeyPems)) throw new TypeError('privateKeyPems must be an array');
  // R23, R38: when the key is loaded, before the file is read; shared keys and passphrases are made
  // by fernetKey() and passphrase().
  return privateKeyPems.flatMap((k) => (symmetric.isSymmetricKey(k) ? [k] : loadPrivate(k)));
}

/**
 * Opens an envelope file with the first of `privateKeyPems` (PKCS#8 or PKCS#1 PEM) that is a
 * recipient. Everything, the signature of a signed file included, is verified before anything is
 * returned. `signedBy` (SPKI PEMs) pins the accepted signers: an unsigned file or another signer is
 * a SignerError (R28), raised before any key is used. `signer` is null for an unsigned file, else
 * the verified signer: "signed by this key", which is "trusted" only if the caller pinned it.
 * @param {Buffer|Uint8Array} sealed
 * @param {string[]} privateKeyPems
 * @param {{signedBy?: string[]}} [options]
 * @returns {{plaintext: Buffer, metadata: object, chunkSize: number, chunkCount: number,
 *   signer: null|{algorithm: string, keyId: string, publicKey: Buffer}}}
 */
export function open(sealed, privateKeyPems, { signedBy } = {}) {
  const reader = new Reader(loadKeys(privateKeyPems), loadTrusted(signedBy));
  const chunks = reader.push(asBuffer(sealed));
  const { chunkCount, signer } = reader.finish();
  const { metadata, chunkSize } = reader.header;
  return { plaintext: Buffer.concat(chunks), metadata, chunkSize, chunkCount, signer };
}

/**
 * Checks a signed file's signature without a private key (§8.3: "anyone else can check steps 1 to
 * 3"): every header entry but the recipients (chunk size, metadata, key commitment, critical, signer,
 * unknown keys), the chunk count and the token tags are the signer's. It cannot tell whether the
 * token bodies are intact (that needs K). An unsigned file is a SignerError.
 * @returns {{algorithm: string, keyId: string, publicKey: Buffer}}
 */
export function checkSignature(sealed, { signedBy } = {}) {
  const reader = new Reader(null, loadTrusted(signedBy));
  reader.push(asBuffer(sealed));
  return reader.finish().signer;
}

/**
 * A sequential reader (§7.4) over `source`, an async iterable (a Node Readable) or iterable of
 * Buffers: it never needs the file length nor more than one token in memory (the footer's tags are
 * hashed as they pass, §8.3). Iterate it once:
 *
 *     const stream = openStream(fs.createReadStream(path), [pem], { signedBy: [signerPem] });
 *     for await (const chunk of stream) output.write(chunk);
 *
 * Each chunk is yielded once it verified. The loop ends normally only once the whole file (and the
 * signature of a signed file) verified; a failure is thrown from the loop, possibly after earlier
 * chunks were yielded, so a caller writing a file must write to a temporary one and move it into
 * place only after the loop ended (§7.4). `signedBy` (R28) is enforced before any chunk.
 * Properties: `metadata` and `chunkSize` once the header authenticated (before the first chunk);
 * `signer` (null for an unsigned file) and `chunkCount` once the loop ended.
 */
export function openStream(source, privateKeyPems, { signedBy } = {}) {
  if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source || Symbol.iterator in source)
    || source instanceof Uint8Array) {
    throw new TypeError('source must be an iterable or async iterable of Buffers');
  }
  return new EnvelopeStream(source, new Reader(loadKeys(privateKeyPems), loadTrusted(signedBy)));
}

class EnvelopeStream {
  #source;
  #reader;
  #started = false;

  constructor(source, reader) {
    this.#source = source;
    this.#reader = reader;
    this.metadata = null;
    this.chunkSize = null;
    this.signer = null;
    this.chunkCount = null;
  }

  async *[Symbol.asyncIterator]() {
    if (this.#started) throw new TypeError('an envelope stream can be read only once');
    this.#started = true;
    for await (const piece of this.#source) {
      if (!(piece instanceof Uint8Array)) throw new TypeError('source must yield Buffers or Uint8Arrays');
      const chunks = this.#reader.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
      if (this.#reader.header && this.metadata === null) {
        this.metadata = this.#reader.header.metadata;
        this.chunkSize = this.#reader.header.chunkSize;
      }
      yield* chunks;
    }
    const { chunkCount, signer } = this.#reader.finish();
    [this.chunkCount, this.signer] = [chunkCount, signer];
  }
}

// Exposed for the CLI and tests; not part of the format.
export const internals = { decodeStrict, encodeCanonical, tokenLen, keyId, MAGIC };

// ---------------------------------------------------------------------------------------------
// Folders (§11): a payload that holds an index and chunk-aligned members.

const PAYLOAD_KEY = 'envelope.payload';
const FOLDER_V1 = 'folder-v1';
const MAX_INDEX_LEN = 16_777_216;
const MAX_MEMBERS = 100_000;
const MAX_NAME_LEN = 4096;
const MEMBER_KEYS = new Set(['name', 'offset', 'size', 'executable']);

/** §11.3: one name alone (R32). */
function checkName(name) {
  const len = Buffer.byteLength(name, 'utf8');
  if (len === 0 || len > MAX_NAME_LEN) throw new MalformedError('member name empty or too long (R32)');
  if (name.startsWith('/') || name.includes('\0') || name.includes('\\')) {
    throw new MalformedError('member name starts with / or holds NUL or backslash (R32)');
  }
  if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new MalformedError('member name has an empty, . or .. component (R32)');
  }
}

/**
 * Reads a folder payload (§11) from an opened file's plaintext, metadata and chunk size, checking
 * R29-R34. Returns the members in payload order: [{ name, size, executable, data }], `data` a view
 * of `plaintext`.
 */
export function readFolder(plaintext, metadata, chunkSize) {
  if (!Object.hasOwn(metadata, PAYLOAD_KEY)) throw new MalformedError('not a folder (R29)');
  const kind = metadata[PAYLOAD_KEY];
  if (typeof kind !== 'string') throw new MalformedError('envelope.payload is not a str (R29)');
  if (kind !== FOLDER_V1) throw new UnsupportedError(`payload kind ${kind} (R29)`);
  if (plaintext.length < 4) throw new MalformedError('payload shorter than its index length (R30)');
  const indexLen = plaintext.readUInt32BE(0);
  if (indexLen > MAX_INDEX_LEN) throw new LimitError('folder index over 16 MiB (R30)');
  if (4 + indexLen > plaintext.length) throw new MalformedError('payload ends inside the index (R30)');
  let index;
  try {
    index = decodeStrict(plaintext.subarray(4, 4 + indexLen), MAX_HEADER_DEPTH, MalformedError);
  } catch (e) {
    if (e instanceof MalformedError) throw new MalformedError(`folder index: ${e.message} (R31)`);
    throw e;
  }
  if (!Array.isArray(index)) throw new MalformedError('folder index is not an array (R31)');
  if (index.length > MAX_MEMBERS) throw new LimitError('more than 100000 members (R31)');
  const members = index.map((m) => {
    if (!isMap(m)) throw new MalformedError('member is not a map (R31)');
    const keys = Object.keys(m);
    if (!['name', 'offset', 'size'].every((k) => Object.hasOwn(m, k)) || keys.some((k) => !MEMBER_KEYS.has(k))) {
      throw new MalformedError('member lacks name, offset or size, or has another key (R31)');
    }
    const executable = m.executable ?? false;
    if (typeof m.name !== 'string' || typeof executable !== 'boolean') {
      throw new MalformedError('member name or executable of the wrong type (R31)');
    }
    for (const v of [m.offset, m.size]) {
      if (!isInt(v) || v < 0) throw new MalformedError('offset or size not a non-negative int (R31)');
    }
    return { name: m.name, offset: m.offset, size: m.size, executable };
  });
  const names = new Set();
  const folders = new Set();
  for (const { name } of members) {
    checkName(name);
    if (names.has(name)) throw new MalformedError('two members with one name (R32)');
    names.add(name);
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
  }
  for (const name of names) if (folders.has(name)) throw new MalformedError('a member is a folder of another (R32)');
  const align = (x) => Math.ceil(x / chunkSize) * chunkSize;
  let at = 4 + indexLen;
  const pads = [];
  for (const m of members) {
    if (typeof m.offset !== 'number' || typeof m.size !== 'number' || m.offset !== align(at)) {
      throw new MalformedError('member not where the layout puts it (R33)');
    }
    pads.push([at, m.offset]);
    at = m.offset + m.size;
  }
  if (at !== plaintext.length) throw new MalformedError('payload does not end with the last member (R33)');
  for (const [from, to] of pads) {
    if (plaintext.subarray(from, to).some((b) => b !== 0)) throw new MalformedError('pad byte not zero (R34)');
  }
  return members.map(({ name, offset, size, executable }) => ({
    name, size, executable, data: plaintext.subarray(offset, offset + size),
  }));
}
