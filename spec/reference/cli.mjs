#!/usr/bin/env node
// Command line front end of the Node.js envelope implementation. See README.md.
//   cli.mjs seal --recipient PUB.pem [--recipient ...] [--chunk-size N] [--meta-json JSON] [--sign-with KEY.pem]
//                [--work-factor LN] IN OUT
//   cli.mjs open --key PRIV.pem [--key ...] [--signed-by PUB.pem ...] IN OUT [--meta-out FILE] [--signer-out FILE]
// A key or recipient file named *.fernet holds a shared Fernet key, one named *.passphrase a passphrase
// (UTF-8 text; sealed with work factor LN, 18 unless given).
//   cli.mjs check [--signed-by PUB.pem ...] IN
//   cli.mjs vectors DIR
// Exit status: 0 success, 1 envelope error (one line "ClassName: message" on stderr) or failed
// vectors, 2 usage error.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as envelope from './envelope.mjs';
import { seal, open, openStream, checkSignature, readFolder, EnvelopeError, Float } from './envelope.mjs';

class UsageError extends Error {}

const USAGE = `usage:
  cli.mjs seal --recipient PUB.pem [--recipient PUB2.pem ...] [--chunk-size N] [--meta-json JSON]
               [--sign-with KEY.pem] [--work-factor LN] IN OUT
  (a key file named *.fernet holds a shared Fernet key, *.passphrase a passphrase)
  cli.mjs open --key PRIV.pem [--key PRIV2.pem ...] [--signed-by PUB.pem ...] IN OUT
               [--meta-out FILE] [--signer-out FILE]
  cli.mjs check [--signed-by PUB.pem ...] IN
  cli.mjs vectors DIR`;

// ---- tagged JSON (spec/vectors/README.md) ----------------------------------------------------

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const defineKey = (obj, key, value) =>
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
// An object with exactly one key beginning with `$` is always a tag; a map whose only key begins
// with `$` is written {"$map": {...}}, and only such a map (spec/vectors/README.md).
const TAGS = ['$int', '$float', '$bin', '$map'];
const tagOf = (v) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const keys = Object.keys(v);
  if (keys.length !== 1 || !keys[0].startsWith('$')) return null;
  if (!TAGS.includes(keys[0])) throw new UsageError(`tagged JSON: unknown tag ${JSON.stringify(keys[0])}`);
  return keys[0];
};

/** Decoded metadata value -> tagged JSON value. */
export function toTagged(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return v; // the decoder yields Number only for safe integers
  if (typeof v === 'bigint') return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : { $int: v.toString() };
  if (v instanceof Float) return { $float: Number.isFinite(v.value) ? v.value : String(v.value) };
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(toTagged);
  const out = {};
  for (const [k, x] of Object.entries(v)) defineKey(out, k, toTagged(x));
  const keys = Object.keys(out);
  return keys.length === 1 && keys[0].startsWith('$') ? { $map: out } : out;
}

/** Tagged JSON value -> metadata value for seal(). */
export function fromTagged(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new UsageError('tagged JSON: bare numbers must be safe integers');
    return v;
  }
  if (Array.isArray(v)) return v.map(fromTagged);
  const tag = tagOf(v);
  if (tag === '$int') {
    if (typeof v.$int !== 'string' || !/^-?\d+$/.test(v.$int)) throw new UsageError('tagged JSON: bad $int');
    return BigInt(v.$int);
  }
  if (tag === '$float') {
    const x = typeof v.$float === 'number' ? v.$float : { NaN, Infinity, '-Infinity': -Infinity }[v.$float];
    if (typeof x !== 'number') throw new UsageError('tagged JSON: bad $float');
    return new Float(x);
  }
  if (tag === '$bin') {
    if (typeof v.$bin !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v.$bin)) throw new UsageError('tagged JSON: bad $bin');
    return Buffer.from(v.$bin, 'hex');
  }
  const inner = tag === '$map' ? v.$map : v;
  if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) throw new UsageError('tagged JSON: bad $map');
  // Only a map whose one key begins with `$` is wrapped: any other $map is refused.
  if (tag === '$map' && (Object.keys(inner).length !== 1 || !Object.keys(inner)[0].startsWith('$'))) {
    throw new UsageError('tagged JSON: a $map must hold exactly one key, beginning with $');
  }
  const out = {};
  for (const [k, x] of Object.entries(inner)) defineKey(out, k, fromTagged(x));
  return out;
}

/** Structural equality of tagged JSON values (map order ignored). */
/** Two maps (their keys as they are, values in tagged JSON) are equal. */
function mapsEqual(a, b) {
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && taggedEqual(a[k], b[k]));
}

function taggedEqual(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => taggedEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a), kb = Object.keys(b);
    const ta = tagOf(a), tb = tagOf(b);
    if (ta === '$float' && tb === '$float') return Object.is(Number(a.$float), Number(b.$float)) || a.$float === b.$float;
    if (ta === '$bin' && tb === '$bin') return a.$bin.toLowerCase() === b.$bin.toLowerCase();
    if (ta === '$map' || tb === '$map') return ta === tb && mapsEqual(a.$map, b.$map);
    if (ta !== null || tb !== null) return ta === tb && a[ta] === b[tb];
    return mapsEqual(a, b);
  }
  return a === b;
}

// ---- commands --------------------------------------------------------------------------------

function parseArgs(argv, repeatable, single) {
  const opts = Object.fromEntries(repeatable.map((o) => [o, []]));
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (repeatable.includes(a) || single.includes(a)) {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      if (repeatable.includes(a)) opts[a].push(argv[++i]);
      else if (a in opts) throw new UsageError(`${a} given twice`);
      else opts[a] = argv[++i];
    } else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  return { opts, positional };
}

const tempNameFor = (file) => path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);

/** Writes via a temporary file in the same directory, then renames (FORMAT.md §7.4). */
function writeAtomic(file, data) {
  const tmp = tempNameFor(file);
  try {
    fs.writeFileSync(tmp, data, { flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** The signer as the vectors' JSON writes it. */
const signerJson = (signer) => (signer ? { algorithm: signer.algorithm, key_id: signer.keyId } : null);

function cmdSeal(argv) {
  const { opts, positional } = parseArgs(argv, ['--recipient'], ['--chunk-size', '--meta-json', '--sign-with', '--work-factor']);
  if (positional.length !== 2 || opts['--recipient'].length === 0) throw new UsageError('seal needs --recipient, IN and OUT');
  const options = {};
  if (opts['--chunk-size'] !== undefined) {
    if (!/^\d+$/.test(opts['--chunk-size'])) throw new UsageError('--chunk-size must be a decimal integer');
    options.chunkSize = Number(opts['--chunk-size']);
  }
  if (opts['--meta-json'] !== undefined) {
    let json;
    try { json = JSON.parse(opts['--meta-json']); } catch { throw new UsageError('--meta-json is not valid JSON'); }
    if (json === null || typeof json !== 'object' || Array.isArray(json) || tagOf(json)) throw new UsageError('--meta-json must be a JSON object');
    options.metadata = fromTagged(json);
  }
  if (opts['--sign-with'] !== undefined) options.signWith = fs.readFileSync(opts['--sign-with'], 'utf8');
  const workFactor = opts['--work-factor'] === undefined ? 18 : Number(opts['--work-factor']);
  if (!Number.isInteger(workFactor)) throw new UsageError('--work-factor must be an integer');
  const pems = opts['--recipient'].map((f) => keyFile(f, { workFactor }));
  const [input, output] = positional;
  writeAtomic(output, seal(fs.readFileSync(input), pems, options));
}

/** A PEM file's text, or the shared Fernet key (*.fernet) or passphrase (*.passphrase) a file holds. */
function keyFile(file, options = {}) {
  if (file.endsWith('.fernet')) return envelope.fernetKey(fs.readFileSync(file, 'utf8'));
  if (file.endsWith('.passphrase')) return envelope.passphrase(fs.readFileSync(file, 'utf8'), options);
  return fs.readFileSync(file, 'utf8');
}

/** Readable stream for the streaming reader; its errors (unreadable file) surface in the loop. */
const readChunks = (file) => fs.createReadStream(file, { highWaterMark: 1 << 20 });
const signedByOption = (opts) =>
  (opts['--signed-by'].length ? { signedBy: opts['--signed-by'].map((f) => fs.readFileSync(f, 'utf8')) } : {});

/**
 * Streams the plaintext into a temporary file beside OUT and renames it into place only once the
 * whole file, signature included, verified (FORMAT.md §7.4): memory stays at about one chunk.
 */
async function cmdOpen(argv) {
  const { opts, positional } = parseArgs(argv, ['--key', '--signed-by'], ['--meta-out', '--signer-out']);
  if (positional.length !== 2 || opts['--key'].length === 0) throw new UsageError('open needs --key, IN and OUT');
  const pems = opts['--key'].map((f) => keyFile(f));
  const [input, output] = positional;
  const stream = openStream(readChunks(input), pems, signedByOption(opts));
  const tmp = tempNameFor(output);
  const fd = fs.openSync(tmp, 'wx');
  let moved = false;
  try {
    for await (const chunk of stream) {
      for (let done = 0; done < chunk.length;) done += fs.writeSync(fd, chunk, done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, output);
    moved = true;
  } finally {
    if (!moved) { try { fs.closeSync(fd); } catch { /* closed already */ } fs.rmSync(tmp, { force: true }); }
  }
  if (opts['--meta-out'] !== undefined) writeAtomic(opts['--meta-out'], JSON.stringify(toTagged(stream.metadata)) + '\n');
  if (opts['--signer-out'] !== undefined) writeAtomic(opts['--signer-out'], JSON.stringify(signerJson(stream.signer)) + '\n');
}

/** Keyless signature check (FORMAT.md §8.3): prints the signer as JSON. */
function cmdCheck(argv) {
  const { opts, positional } = parseArgs(argv, ['--signed-by'], []);
  if (positional.length !== 1) throw new UsageError('check needs IN');
  console.log(JSON.stringify(signerJson(checkSignature(fs.readFileSync(positional[0]), signedByOption(opts)))));
}

// Error classes by name, for the vectors' `error`: a reader passes when it raises that class or a
// subclass of it (a SignatureError is an AuthenticationError, as FORMAT.md §9 categorises R26, R27).
const ERROR_CLASSES = new Map(Object.entries(envelope).filter(([, v]) => v === EnvelopeError || v?.prototype instanceof EnvelopeError));

/** Outcome of one reader on a vector: { result } or { error }. */
async function attempt(fn) {
  try { return { result: await fn() }; } catch (error) { return { error }; }
}

/** Checks one reader's outcome against the vector; null when it matches. */
function judge(spec, { result, error }) {
  if (error) {
    if (!(error instanceof EnvelopeError)) return `unexpected ${error.name}: ${error.message}`;
    if (spec.expect !== 'error') return `expected success, got ${error.name}: ${error.message}`;
    const want = ERROR_CLASSES.get(spec.error);
    if (!want) return `unknown error class ${spec.error}`;
    return error instanceof want ? null : `expected ${spec.error} (${spec.rule}), got ${error.name}: ${error.message}`;
  }
  if (spec.expect !== 'success') return `expected ${spec.error} (${spec.rule}), but the file opened`;
  const { plaintext, metadata, chunkSize, chunkCount, signer } = result;
  const problems = [];
  if (plaintext.length !== spec.plaintext_length) problems.push('plaintext_length');
  if (crypto.createHash('sha256').update(plaintext).digest('hex') !== spec.plaintext_sha256.toLowerCase()) problems.push('plaintext_sha256');
  if (spec.plaintext_hex !== undefined && plaintext.toString('hex') !== spec.plaintext_hex.toLowerCase()) problems.push('plaintext_hex');
  if (chunkSize !== spec.chunk_size) problems.push('chunk_size');
  if (chunkCount !== spec.chunk_count) problems.push('chunk_count');
  // Normalise the expected side too (e.g. a small {"$int": "5"} is the same value as 5).
  if (!taggedEqual(toTagged(metadata), toTagged(fromTagged(spec.metadata)))) problems.push('metadata');
  // `signer` ({algorithm, key_id}, or null for an unsigned file) is checked when the vector has it.
  if (spec.signer !== undefined && !taggedEqual(signerJson(signer), spec.signer)) problems.push('signer');
  return problems.length ? `mismatch in ${problems.join(', ')}` : null;
}

/**
 * Runs one vector through every reader: open() (whole file), openStream() (the file in pieces) and,
 * for a signed success vector, the keyless checkSignature(). Returns null on success or a failure
 * description. `signed_by` (key names whose keys/NAME.pub.pem the reader pins) is optional.
 */
/**
 * keys/NAME.pem (a PEM string), NAME.age (an age identity file), NAME.openssh (an OpenSSH key),
 * NAME.fernet (a shared Fernet key) or NAME.passphrase (UTF-8 text).
 */
function vectorKey(dir, name) {
  const file = (ext) => path.join(dir, 'keys', `${name}.${ext}`);
  return keyFile(['fernet', 'passphrase', 'age', 'openssh'].map(file).find((f) => fs.existsSync(f)) ?? file('pem'));
}

export async function runVector(dir, spec) {
  const file = fs.readFileSync(path.join(dir, 'v1', `${spec.name}.envelope`));
  const pems = (spec.keys ?? []).map((k) => vectorKey(dir, k));
  const options = spec.signed_by === undefined ? {}
    : { signedBy: spec.signed_by.map((k) => fs.readFileSync(path.join(dir, 'keys', `${k}.pub.pem`), 'utf8')) };
  if (spec.read_as === 'folder') return runFolderVector(spec, file, pems, options);
  const whole = await attempt(() => open(file, pems, options));
  const streamed = await attempt(async () => {
    const pieces = [];
    for (let p = 0; p < file.length; p += 4093) pieces.push(file.subarray(p, p + 4093)); // prime: pieces straddle every field
    const stream = openStream(pieces, pems, options);
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    return { ...stream, plaintext: Buffer.concat(chunks) };
  });
  const problems = [];
  for (const [reader, outcome] of [['open', whole], ['stream', streamed]]) {
    const problem = judge(spec, outcome);
    if (problem) problems.push(`${reader}: ${problem}`);
  }
  if (spec.expect === 'success' && whole.result?.signer) {
    const keyless = await attempt(() => checkSignature(file, options));
    if (keyless.error) problems.push(`check: ${keyless.error.name}: ${keyless.error.message}`);
    else if (!taggedEqual(signerJson(keyless.result), signerJson(whole.result.signer))) problems.push('check: signer differs');
  }
  return problems.length ? problems.join('; ') : null;
}

/** A folder vector (§11): the file opens, and its payload read as a folder gives the members. */
async function runFolderVector(spec, file, pems, options) {
  const outcome = await attempt(() => {
    const opened = open(file, pems, options);
    return readFolder(opened.plaintext, opened.metadata, opened.chunkSize);
  });
  if (outcome.error || spec.expect === 'error') return judge(spec, outcome);
  const found = outcome.result.map(({ name, size, executable, data }) => ({
    name, size, sha256: crypto.createHash('sha256').update(data).digest('hex'), executable,
  }));
  return JSON.stringify(found) === JSON.stringify(spec.folder) ? null : 'folder: members differ';
}

async function cmdVectors(argv) {
  if (argv.length !== 1) throw new UsageError('vectors needs DIR');
  const dir = argv[0];
  const v1 = path.join(dir, 'v1');
  if (!fs.existsSync(v1)) throw new UsageError(`no directory ${v1}`);
  const names = fs.readdirSync(v1).filter((f) => f.endsWith('.json')).sort();
  let passed = 0, failed = 0;
  for (const name of names) {
    let problem;
    try {
      problem = await runVector(dir, JSON.parse(fs.readFileSync(path.join(v1, name), 'utf8')));
    } catch (e) {
      problem = `cannot run vector: ${e.message}`;
    }
    if (problem) { failed++; console.log(`FAIL ${path.basename(name, '.json')}: ${problem}`); } else passed++;
  }
  if (names.length === 0) console.error(`no vectors in ${v1}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || names.length === 0 ? 1 : 0;
}

async function main(argv) {
  const [command, ...rest] = argv;
  try {
    if (command === 'seal') cmdSeal(rest);
    else if (command === 'open') await cmdOpen(rest);
    else if (command === 'check') cmdCheck(rest);
    else if (command === 'vectors') return await cmdVectors(rest);
    else throw new UsageError(command ? `unknown command ${command}` : 'no command');
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`${e.message}\n${USAGE}`); return 2; }
    if (e instanceof EnvelopeError) { console.error(`${e.name}: ${e.message}`); return 1; }
    console.error(`Error: ${e.message}`);
    return 1;
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
