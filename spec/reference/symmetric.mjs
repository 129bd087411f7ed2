// Passphrase (`scrypt`, §4.5) and shared Fernet key (`fernet`, §4.6) recipient entries, written
// from spec/FORMAT.md alone. Keys are plain objects made here; envelope.mjs hands them the header's
// entries and the data key K.
import crypto from 'node:crypto';

const SCRYPT_LABEL = Buffer.from('envelope v1 scrypt', 'ascii');
const FERNET_KID_INFO = Buffer.from('envelope v1 fernet key id', 'ascii');
const FERNET_WRAP_INFO = Buffer.from('envelope v1 fernet wrap', 'ascii');
const SALT_LEN = 16;
const WRAPPED_LEN = 48; // 32 bytes of ChaCha20-Poly1305 ciphertext, 16 of tag
const ZERO_NONCE = Buffer.alloc(12);
export const MAX_WORK_FACTOR = 20; // §4.5, R48: what a reader accepts unless its caller raises it
const WORK_FACTOR_CEILING = 30;
const SCRYPT_R = 8;

/** Errors are made by envelope.mjs's classes, handed in, so that this module needs no import cycle. */
let errors = null;
export function useErrors(classes) { errors = classes; }

const isBin = (v, n) => Buffer.isBuffer(v) && v.length === n;
const isIntAtLeast1 = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1) || (typeof v === 'bigint' && v >= 1n);
const hkdf = (ikm, salt, info) => Buffer.from(crypto.hkdfSync('sha256', ikm, salt, info, 32));

function chachaSeal(key, K) {
  const c = crypto.createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
  return Buffer.concat([c.update(K), c.final(), c.getAuthTag()]);
}

/** The 32-byte data key, or null when the tag does not verify. */
function chachaOpen(key, wrapped) {
  try {
    const d = crypto.createDecipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
    d.setAuthTag(wrapped.subarray(32));
    return Buffer.concat([d.update(wrapped.subarray(0, 32)), d.final()]);
  } catch {
    return null;
  }
}

/** A shared Fernet key from its text form: exactly the padded base64url of 32 bytes (§4.6). */
export function fernetKey(text) {
  const t = String(text).trim();
  const raw = Buffer.from(t, 'base64url');
  if (t.length !== 44 || raw.length !== 32 || raw.toString('base64url') + '=' !== t) {
    throw new errors.InvalidKeyError('not a Fernet key (32 bytes in url-safe base64)');
  }
  return { kind: 'fernet', shared: raw, kid: hkdf(raw, Buffer.alloc(0), FERNET_KID_INFO) };
}

/** A passphrase: text is normalised to NFC and encoded as UTF-8, bytes are taken as given (§4.5). */
export function passphrase(value, { workFactor = 18, maxWorkFactor = MAX_WORK_FACTOR } = {}) {
  const bytes = typeof value === 'string' ? Buffer.from(value.normalize('NFC'), 'utf8') : Buffer.from(value);
  if (bytes.length === 0) throw new TypeError('the passphrase is empty');
  for (const w of [workFactor, maxWorkFactor]) {
    if (!Number.isInteger(w) || w < 1 || w > WORK_FACTOR_CEILING) throw new TypeError(`work factors are 1 to ${WORK_FACTOR_CEILING}`);
  }
  return { kind: 'scrypt', bytes, workFactor, maxWorkFactor };
}

export const isSymmetricKey = (k) => k !== null && typeof k === 'object' && (k.kind === 'fernet' || k.kind === 'scrypt');

function scryptKey(bytes, salt, ln) {
  const N = 2 ** ln;
  return crypto.scryptSync(bytes, Buffer.concat([SCRYPT_LABEL, salt]), 32,
    { N, r: SCRYPT_R, p: 1, maxmem: 128 * SCRYPT_R * N + (1 << 20) });
}

/** The recipient entry (a Map, in the key order of §4.5 / §4.6) wrapping K for `key`. */
export function wrapSymmetric(key, K) {
  const salt = crypto.randomBytes(SALT_LEN);
  if (key.kind === 'fernet') {
    const wrapped = chachaSeal(hkdf(key.shared, salt, FERNET_WRAP_INFO), K);
    return new Map([['type', 'fernet'], ['kid', key.kid], ['salt', salt], ['key', wrapped]]);
  }
  const wrapped = chachaSeal(scryptKey(key.bytes, salt, key.workFactor), K);
  return new Map([['type', 'scrypt'], ['salt', salt], ['ln', key.workFactor], ['key', wrapped]]);
}

/**
 * §4.5 rule 1 and §4.6 rule 1, for every entry of the header, whatever keys the reader holds:
 * R45 (a fernet entry's fields; a key id twice), R47 (a scrypt entry's fields), R49 (a scrypt
 * entry beside any other).
 */
export function checkSymmetricEntries(recipients) {
  const fernetKids = new Set();
  for (const e of recipients) {
    if (e.type === 'fernet') {
      if (!isBin(e.kid, 32) || !isBin(e.salt, SALT_LEN) || !isBin(e.key, WRAPPED_LEN)) throw new errors.MalformedError('bad fernet recipient entry');
      const kid = e.kid.toString('hex');
      if (fernetKids.has(kid)) throw new errors.MalformedError('duplicate recipient key id');
      fernetKids.add(kid);
    } else if (e.type === 'scrypt') {
      if (!isBin(e.salt, SALT_LEN) || !isIntAtLeast1(e.ln) || !isBin(e.key, WRAPPED_LEN)) throw new errors.MalformedError('bad scrypt recipient entry');
    }
  }
  if (recipients.length > 1 && recipients.some((e) => e.type === 'scrypt')) {
    throw new errors.MalformedError('a scrypt entry must be the only recipient'); // R49
  }
}

/**
 * The entry `key` finds (by key id for fernet, the scrypt entry for a passphrase), or undefined.
 * unwrap(entry) then gives K, or null when the tag does not verify (R46, R50); a scrypt entry over
 * the reader's limit throws LimitError first (R48).
 */
export function findSymmetric(key, recipients) {
  if (key.kind === 'fernet') return recipients.find((e) => e.type === 'fernet' && crypto.timingSafeEqual(e.kid, key.kid));
  return recipients.find((e) => e.type === 'scrypt');
}

export function unwrapSymmetric(key, entry) {
  if (key.kind === 'fernet') return chachaOpen(hkdf(key.shared, entry.salt, FERNET_WRAP_INFO), entry.key);
  if (BigInt(entry.ln) > BigInt(key.maxWorkFactor)) {
    throw new errors.LimitError(`scrypt work factor over the limit of ${key.maxWorkFactor}`); // R48, before any work
  }
  return chachaOpen(scryptKey(key.bytes, entry.salt, Number(entry.ln)), entry.key);
}
