// Independent implementation of the envelope container format, version 1.
// Normative reference: spec/FORMAT.md ("§n" below means section n of that document).
// Only node:crypto is used; the MessagePack subset of §3.1/§5 is encoded and decoded here, strictly.
import crypto from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// Errors (§10). Messages never carry key material, plaintext or the offset that failed.

export class EnvelopeError extends Error {}
export class MalformedError extends EnvelopeError {}
export class UnsupportedError extends EnvelopeError {}
export class LimitError extends EnvelopeError {}
export class NoMatchingKeyError extends EnvelopeError {}
export class AuthenticationError extends EnvelopeError {}
export class InvalidKeyError extends EnvelopeError {}
// On the prototype, so that stack traces (built at construction) carry the class name too.
for (const C of [EnvelopeError, MalformedError, UnsupportedError, LimitError, NoMatchingKeyError,
  AuthenticationError, InvalidKeyError]) C.prototype.name = C.name;

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
const OAEP_LABEL = Buffer.alloc(0); // §4.1: the empty label (what KMS and HSMs accept)
const HKDF_INFO = Buffer.from('envelope v1 header', 'ascii');
const FERNET_VERSION = 0x80;
const MIN_TOKEN = 73; // token_len(0)
const DEFAULT_CHUNK = 65_536;
// R15 and R16 must be indistinguishable (§4.1 rule 4).
const HEADER_AUTH_FAILED = 'header authentication failed';
const PAYLOAD_AUTH_FAILED = 'payload authentication failed';

const tokenLen = (d) => 57 + 16 * (Math.floor((9 + d) / 16) + 1); // §7.3

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

function decodeStrict(buf, maxDepth, DepthError) {
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
  for (;;) {
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
        break;
      }
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
// Keys (§3.3, §4.1, R23)

function checkRsa(key) {
  const bits = key.asymmetricKeyType === 'rsa' ? key.asymmetricKeyDetails.modulusLength : 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new InvalidKeyError(`key must be RSA with a modulus of ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
  }
  return bits;
}
const keyId = (publicKey) => crypto.createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest();

function loadPublic(pem) {
  // Only SubjectPublicKeyInfo PEM: node would also derive a public key from a private key or a
  // certificate, which would hide a caller passing the wrong file.
  if (!/^-----BEGIN PUBLIC KEY-----$/m.test(String(pem))) throw new InvalidKeyError('expected a "PUBLIC KEY" (SPKI) PEM');
  let key;
  try { key = crypto.createPublicKey(pem); } catch { throw new InvalidKeyError('cannot load public key'); }
  checkRsa(key);
  return { key, kid: keyId(key) };
}

function loadPrivate(pem) {
  let key;
  try { key = crypto.createPrivateKey(pem); } catch { throw new InvalidKeyError('cannot load private key'); }
  const bits = checkRsa(key);
  return { key, kid: keyId(crypto.createPublicKey(key)), modulusBytes: Math.ceil(bits / 8) };
}

// ---------------------------------------------------------------------------------------------
// Crypto primitives (§6, §7.2)

const hmac = (key, ...data) => { const h = crypto.createHmac('sha256', key); data.forEach((d) => h.update(d)); return h.digest(); };
const headerMacKey = (K) => Buffer.from(crypto.hkdfSync('sha256', K, Buffer.alloc(0), HKDF_INFO, 32));
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
// seal (§9)

/**
 * Seals `plaintext` for every RSA public key (SPKI PEM) in `publicKeyPems`.
 * @param {Buffer|Uint8Array} plaintext
 * @param {string[]} publicKeyPems
 * @param {{chunkSize?: number, metadata?: object|Map}} [options]
 * @returns {Buffer} the envelope file
 */
export function seal(plaintext, publicKeyPems, { chunkSize = DEFAULT_CHUNK, metadata = {} } = {}) {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Buffer or Uint8Array');
  plaintext = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  if (!Number.isSafeInteger(chunkSize)) throw new TypeError('chunkSize must be an integer');
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new LimitError(`chunk size must be ${MIN_CHUNK} to ${MAX_CHUNK}`);
  if (!(metadata instanceof Map || isMap(metadata))) throw new TypeError('metadata must be a map');
  if (!Array.isArray(publicKeyPems) || publicKeyPems.length === 0) throw new TypeError('at least one recipient is required');

  // One entry per distinct key id (§9: no duplicate kid).
  const recipients = new Map();
  for (const pem of publicKeyPems) {
    const r = loadPublic(pem);
    recipients.set(r.kid.toString('hex'), r);
  }
  if (recipients.size > MAX_RECIPIENTS) throw new LimitError(`more than ${MAX_RECIPIENTS} recipients`);

  const meta = encodeCanonical(metadata, MAX_META_DEPTH);
  if (meta.length > MAX_META_LEN) throw new LimitError(`metadata longer than ${MAX_META_LEN} bytes`);

  const K = crypto.randomBytes(32);
  const entries = [...recipients.values()].map(({ key, kid }) => {
    const wrapped = crypto.publicEncrypt(
      { key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: OAEP_LABEL }, K);
    return new Map([['type', RSA_TYPE], ['kid', kid], ['key', wrapped]]); // §4.1 key order
  });
  // §3.1 canonical top-level order: chunk_size, recipients, meta (no `critical`: no extension used).
  const header = encodeCanonical(new Map([['chunk_size', chunkSize], ['recipients', entries], ['meta', meta]]));
  if (header.length > MAX_HEADER_LEN) throw new LimitError(`header longer than ${MAX_HEADER_LEN} bytes`);

  const prefix = Buffer.alloc(PREFIX_LEN);
  MAGIC.copy(prefix, 0);
  prefix[8] = VERSION;
  prefix.writeUInt32BE(header.length, 9);
  const parts = [prefix, header, hmac(headerMacKey(K), prefix, header)];

  // §7.1: n = floor(len / chunk_size) + 1; the final chunk is shorter than chunk_size, maybe empty.
  const n = Math.floor(plaintext.length / chunkSize) + 1;
  for (let i = 0; i < n; i++) {
    const chunk = plaintext.subarray(i * chunkSize, Math.min((i + 1) * chunkSize, plaintext.length));
    const message = Buffer.concat([u64be(i), Buffer.of(i === n - 1 ? 1 : 0), chunk]);
    // §7.2: the timestamp field is 0, and the final token's own length in the last token.
    parts.push(fernetEncrypt(K, message, i === n - 1 ? tokenLen(chunk.length) : 0));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// open (§2 - §7, rejecting per §8)

/** Parses and validates prefix and header (R1-R12); no key is needed. */
function parseHeader(file) {
  // §2 prefix
  if (file.length < PREFIX_LEN || !file.subarray(0, 8).equals(MAGIC)) throw new MalformedError('not an envelope file'); // R1
  if (file[8] !== VERSION) throw new UnsupportedError('unsupported format version'); // R2
  const headerLen = file.readUInt32BE(9);
  if (headerLen === 0) throw new MalformedError('empty header'); // R3
  if (headerLen > MAX_HEADER_LEN) throw new LimitError(`header longer than ${MAX_HEADER_LEN} bytes`); // R3
  if (file.length < PREFIX_LEN + headerLen + MAC_LEN) throw new MalformedError('file ends inside the header'); // R4

  // §3.1 (R5)
  const header = decodeStrict(file.subarray(PREFIX_LEN, PREFIX_LEN + headerLen), MAX_HEADER_DEPTH, MalformedError); // §3.1
  if (!isMap(header)) throw new MalformedError('header is not a map');

  // §3.2 required fields and types (R6)
  const { chunk_size: chunkSize, recipients, meta, critical } = header;
  if (!isInt(chunkSize)) throw new MalformedError('chunk_size missing or not an integer');
  if (!Array.isArray(recipients)) throw new MalformedError('recipients missing or not an array');
  if (!Buffer.isBuffer(meta)) throw new MalformedError('meta missing or not bin');
  if (Object.hasOwn(header, 'critical') && !(Array.isArray(critical) && critical.every((c) => typeof c === 'string'))) {
    throw new MalformedError('critical is not an array of strings');
  }
  // §3.4 (R12): version 1 implements no extension. Checked before the other field rules, since an
  // extension may change how they are to be read.
  if (critical?.length) throw new UnsupportedError('file requires an unsupported extension');

  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new LimitError('chunk_size out of range'); // R7
  if (recipients.length === 0) throw new MalformedError('no recipient entry'); // R8
  if (recipients.length > MAX_RECIPIENTS) throw new LimitError(`more than ${MAX_RECIPIENTS} recipients`); // R8

  // §4 recipient entries (R9, R10)
  const rsaEntries = new Map(); // kid hex -> entry
  for (const entry of recipients) {
    if (!isMap(entry) || typeof entry.type !== 'string') throw new MalformedError('bad recipient entry');
    const typeLen = Buffer.byteLength(entry.type, 'utf8');
    if (typeLen < 1 || typeLen > 64) throw new MalformedError('bad recipient entry type');
    if (entry.type !== RSA_TYPE) continue; // types this reader does not implement are skipped
    if (!Buffer.isBuffer(entry.kid) || entry.kid.length !== 32 || !Buffer.isBuffer(entry.key)) {
      throw new MalformedError('bad rsa-oaep-sha256 recipient entry');
    }
    const kid = entry.kid.toString('hex');
    if (rsaEntries.has(kid)) throw new MalformedError('duplicate recipient key id');
    rsaEntries.set(kid, entry);
  }

  // §5 metadata (R11)
  if (meta.length > MAX_META_LEN) throw new LimitError(`metadata longer than ${MAX_META_LEN} bytes`);
  const metadata = decodeStrict(meta, MAX_META_DEPTH, LimitError); // §5
  if (!isMap(metadata)) throw new MalformedError('metadata is not a map');

  return { headerLen, chunkSize: Number(chunkSize), rsaEntries, metadata };
}

/**
 * Opens an envelope file with the first of `privateKeyPems` (PKCS#8 or PKCS#1 PEM) that is a
 * recipient. The whole payload is verified before anything is returned.
 * @returns {{plaintext: Buffer, metadata: object, chunkSize: number, chunkCount: number}}
 */
export function open(sealed, privateKeyPems) {
  if (!(sealed instanceof Uint8Array)) throw new TypeError('sealed must be a Buffer or Uint8Array');
  if (!Array.isArray(privateKeyPems)) throw new TypeError('privateKeyPems must be an array');
  const keys = privateKeyPems.map(loadPrivate); // R23, when the key is loaded
  const file = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const { headerLen, chunkSize, rsaEntries, metadata } = parseHeader(file);

  // §4.1 rules 2-4: find the entry by key id, no trial decryption.
  let match;
  for (const k of keys) {
    const entry = rsaEntries.get(k.kid.toString('hex'));
    if (entry) { match = { ...k, entry }; break; }
  }
  if (!match) throw new NoMatchingKeyError('none of the given keys is a recipient of this file'); // R13
  if (match.entry.key.length !== match.modulusBytes) throw new MalformedError('wrapped key length does not match the key'); // R14

  // R15/R16: an unwrap failure continues with a random key so that it fails exactly (same class,
  // message and code path) as a header MAC mismatch.
  let K, unwrapped = false;
  try {
    K = crypto.privateDecrypt({ key: match.key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256', oaepLabel: OAEP_LABEL }, match.entry.key);
    unwrapped = K.length === 32;
  } catch { /* handled below */ }
  if (!unwrapped) K = crypto.randomBytes(32);
  const macEnd = PREFIX_LEN + headerLen;
  const expected = hmac(headerMacKey(K), file.subarray(0, macEnd));
  const macOk = crypto.timingSafeEqual(expected, file.subarray(macEnd, macEnd + MAC_LEN));
  if (!(macOk && unwrapped)) throw new AuthenticationError(HEADER_AUTH_FAILED);

  // §7.3 token layout from the file length (R17, R18)
  const payloadStart = macEnd + MAC_LEN;
  const L = file.length - payloadStart;
  if (L === 0) throw new AuthenticationError('payload has no token'); // R17
  const T = tokenLen(chunkSize);
  const n = Math.ceil(L / T);
  const lastLen = L - (n - 1) * T;
  if (lastLen < MIN_TOKEN || lastLen > T || (lastLen - 57) % 16 !== 0) throw new AuthenticationError('payload is truncated'); // R18

  // §7.4 each token (R19-R22)
  const chunks = [];
  for (let i = 0; i < n; i++) {
    const start = payloadStart + i * T;
    const token = file.subarray(start, Math.min(start + T, file.length));
    const last = i === n - 1;
    // §7.4 check 1: the timestamp field is 0 before the last token, the token's length in the last (R19).
    if (token.length >= 9 && token.readBigUInt64BE(1) !== BigInt(last ? token.length : 0)) {
      throw new AuthenticationError(PAYLOAD_AUTH_FAILED);
    }
    const M = fernetDecrypt(K, token);
    if (M.length < 9 || M.readBigUInt64BE(0) !== BigInt(i) || M[8] !== (last ? 1 : 0)) {
      throw new AuthenticationError(PAYLOAD_AUTH_FAILED); // R19, R20 (flag 0/1, final iff last)
    }
    const D = M.subarray(9);
    if (last ? D.length >= chunkSize : D.length !== chunkSize) throw new AuthenticationError(PAYLOAD_AUTH_FAILED); // R21
    chunks.push(D);
  }
  return { plaintext: Buffer.concat(chunks), metadata, chunkSize, chunkCount: n };
}

// Exposed for the CLI and tests; not part of the format.
export const internals = { decodeStrict, encodeCanonical, tokenLen, keyId, MAGIC };
