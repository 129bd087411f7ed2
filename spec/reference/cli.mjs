#!/usr/bin/env node
// Command line front end of the Node.js envelope implementation. See README.md.
//   cli.mjs seal --recipient PUB.pem [--recipient ...] [--chunk-size N] [--meta-json JSON] IN OUT
//   cli.mjs open --key PRIV.pem [--key ...] IN OUT [--meta-out FILE]
//   cli.mjs vectors DIR
// Exit status: 0 success, 1 envelope error (one line "ClassName: message" on stderr) or failed
// vectors, 2 usage error.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { seal, open, EnvelopeError, Float } from './envelope.mjs';

class UsageError extends Error {}

const USAGE = `usage:
  cli.mjs seal --recipient PUB.pem [--recipient PUB2.pem ...] [--chunk-size N] [--meta-json JSON] IN OUT
  cli.mjs open --key PRIV.pem [--key PRIV2.pem ...] IN OUT [--meta-out FILE]
  cli.mjs vectors DIR`;

// ---- tagged JSON (spec/vectors/README.md) ----------------------------------------------------

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const defineKey = (obj, key, value) =>
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
const tagOf = (v) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const keys = Object.keys(v);
  return keys.length === 1 && ['$int', '$float', '$bin'].includes(keys[0]) ? keys[0] : null;
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
  return out;
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
  const out = {};
  for (const [k, x] of Object.entries(v)) defineKey(out, k, fromTagged(x));
  return out;
}

/** Structural equality of tagged JSON values (map order ignored). */
function taggedEqual(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => taggedEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a), kb = Object.keys(b);
    if (tagOf(a) === '$float' && tagOf(b) === '$float') return Object.is(Number(a.$float), Number(b.$float)) || a.$float === b.$float;
    if (tagOf(a) === '$bin' && tagOf(b) === '$bin') return a.$bin.toLowerCase() === b.$bin.toLowerCase();
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && taggedEqual(a[k], b[k]));
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

/** Writes via a temporary file in the same directory, then renames (FORMAT.md §7.4). */
function writeAtomic(file, data) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(tmp, data, { flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function cmdSeal(argv) {
  const { opts, positional } = parseArgs(argv, ['--recipient'], ['--chunk-size', '--meta-json']);
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
  const pems = opts['--recipient'].map((f) => fs.readFileSync(f, 'utf8'));
  const [input, output] = positional;
  writeAtomic(output, seal(fs.readFileSync(input), pems, options));
}

function cmdOpen(argv) {
  const { opts, positional } = parseArgs(argv, ['--key'], ['--meta-out']);
  if (positional.length !== 2 || opts['--key'].length === 0) throw new UsageError('open needs --key, IN and OUT');
  const pems = opts['--key'].map((f) => fs.readFileSync(f, 'utf8'));
  const [input, output] = positional;
  const { plaintext, metadata } = open(fs.readFileSync(input), pems);
  writeAtomic(output, plaintext);
  if (opts['--meta-out'] !== undefined) writeAtomic(opts['--meta-out'], JSON.stringify(toTagged(metadata)) + '\n');
}

/** Runs one vector; returns null on success or a failure description. */
function runVector(dir, spec) {
  const file = fs.readFileSync(path.join(dir, 'v1', `${spec.name}.envelope`));
  const pems = spec.keys.map((k) => fs.readFileSync(path.join(dir, 'keys', `${k}.pem`), 'utf8'));
  let result;
  try {
    result = open(file, pems);
  } catch (e) {
    if (!(e instanceof EnvelopeError)) return `unexpected ${e.name}: ${e.message}`;
    if (spec.expect !== 'error') return `expected success, got ${e.name}: ${e.message}`;
    return e.name === spec.error ? null : `expected ${spec.error} (${spec.rule}), got ${e.name}: ${e.message}`;
  }
  if (spec.expect !== 'success') return `expected ${spec.error} (${spec.rule}), but the file opened`;
  const { plaintext, metadata, chunkSize, chunkCount } = result;
  const problems = [];
  if (plaintext.length !== spec.plaintext_length) problems.push('plaintext_length');
  if (crypto.createHash('sha256').update(plaintext).digest('hex') !== spec.plaintext_sha256.toLowerCase()) problems.push('plaintext_sha256');
  if (spec.plaintext_hex !== undefined && plaintext.toString('hex') !== spec.plaintext_hex.toLowerCase()) problems.push('plaintext_hex');
  if (chunkSize !== spec.chunk_size) problems.push('chunk_size');
  if (chunkCount !== spec.chunk_count) problems.push('chunk_count');
  // Normalise the expected side too (e.g. a small {"$int": "5"} is the same value as 5).
  if (!taggedEqual(toTagged(metadata), toTagged(fromTagged(spec.metadata)))) problems.push('metadata');
  return problems.length ? `mismatch in ${problems.join(', ')}` : null;
}

function cmdVectors(argv) {
  if (argv.length !== 1) throw new UsageError('vectors needs DIR');
  const dir = argv[0];
  const v1 = path.join(dir, 'v1');
  if (!fs.existsSync(v1)) throw new UsageError(`no directory ${v1}`);
  const names = fs.readdirSync(v1).filter((f) => f.endsWith('.json')).sort();
  let passed = 0, failed = 0;
  for (const name of names) {
    let problem;
    try {
      problem = runVector(dir, JSON.parse(fs.readFileSync(path.join(v1, name), 'utf8')));
    } catch (e) {
      problem = `cannot run vector: ${e.message}`;
    }
    if (problem) { failed++; console.log(`FAIL ${path.basename(name, '.json')}: ${problem}`); } else passed++;
  }
  if (names.length === 0) console.error(`no vectors in ${v1}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || names.length === 0 ? 1 : 0;
}

function main(argv) {
  const [command, ...rest] = argv;
  try {
    if (command === 'seal') cmdSeal(rest);
    else if (command === 'open') cmdOpen(rest);
    else if (command === 'vectors') return cmdVectors(rest);
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
  process.exitCode = main(process.argv.slice(2));
}
