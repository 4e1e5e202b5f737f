/**
 * Strict JSON parser and canonical encoder (ts/format/json.ts) against package-format.md §3 and
 * §8.1/§8.3 and repository.md §3. Every rejection rule has its own test that fails if the rule is
 * dropped, and the spec's printed documents must survive parse + encode byte for byte.
 */

import { readFileSync } from 'node:fs';

import test from 'ava';
import type { ExecutionContext } from 'ava';

import { InputError, InternalError } from '../../ts/errors.js';
import { JsonSyntaxError, canonicalJson, parseStrictJson } from '../../ts/format/json.js';
import type { StrictJsonOptions } from '../../ts/format/json.js';
import { vector } from '../helpers/fixtures.js';

// Copied verbatim from package-format.md §3.2–§3.4 (without their trailing "\n").
const HELLO_MANIFEST = String.raw`{"schema_version":1,"name":"hello","version":"0.1-1","architecture":"noarch","description":"Smallest legal peipkg test fixture.","license":"CC0-1.0","homepage":"https://peios.org","dependencies":[],"optional_dependencies":[],"conflicts":[],"provides":[],"replaces":[],"side_effects":[],"size_installed":14,"sd_overrides":[],"build":{"timestamp":"2026-05-06T12:00:00Z","farm_id":"test-farm-1","source_ref":"test://hello-noarch"}}`;
const LIBFOO_DEV_MANIFEST = String.raw`{"schema_version":1,"name":"libfoo-dev","version":"1.2.3-1","architecture":"x86_64","description":"Multi-package fixture: development files.","license":"MIT","homepage":"https://peios.org","dependencies":[{"name":"libc-dev"},{"name":"libfoo","constraint":"= 1.2.3-1"}],"optional_dependencies":[],"conflicts":[],"provides":[],"replaces":[],"side_effects":[],"size_installed":424,"sd_overrides":[],"build":{"timestamp":"2026-05-06T12:00:00Z","farm_id":"test-farm-1","source_ref":"test://libfoo-multipackage"}}`;
const EDGE_MANIFEST = String.raw`{"schema_version":1,"name":"edge-case","version":"2:1.0~rc.1-3","architecture":"noarch","description":"Format edge cases <&> for implementers","license":"MIT OR Apache-2.0","homepage":"https://example.org/edge?a=1&b=2","dependencies":[{"name":"aaa","constraint":">= 1.0, < 2.0"},{"name":"bbb","arch":"any"},{"name":"ccc","constraint":"= 1:2.3-4"}],"optional_dependencies":[{"name":"opt"}],"conflicts":[{"name":"old-edge","constraint":"< 1.0-1"}],"provides":[{"name":"edge-virtual","version":"1.0-1"},{"name":"edgy"}],"replaces":[{"name":"edge-legacy"}],"side_effects":["man-db"],"size_installed":13,"sd_overrides":[],"build":{"timestamp":"2026-05-06T12:00:00Z","farm_id":"farm-é-\u2028-\t","source_ref":"git+https://example.org/edge#refs/tags/v1.0~rc.1"}}`;
const HELLO_FILES = String.raw`{"schema_version":1,"algorithm":"sha256","entries":[{"path":"usr/share/hello/MESSAGE","size":14,"hash":"4f91e7c17054930fd12bf2de72f8f31eb44090052475b88dc2338163d642e7ac"}]}`;
const HELLO_ENVELOPE = String.raw`{"schema_version":1,"algorithm":"ed25519","key_fingerprint":"5a491c24f72d717f1f6c09620af2bbccc79513118c3919be7f86f64e825d0b68","signature":"wS3ZuRDK5qJDLN10eZKjqF+5+82tOpkVFmbPp1slHGlaViqt//Tiqu78BNgSyPcekI52c+hBqeNWFKHOtx6ICw"}`;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
/** Strings as UTF-8 and numbers as raw bytes, concatenated. */
const bytes = (...parts: (string | number[])[]): Uint8Array => Buffer.concat(parts.map((p) => Buffer.from(p)));

/** Asserts that parsing fails with exactly `<reason> at byte <offset>`. */
function rejects(
  t: ExecutionContext,
  input: string | Uint8Array,
  reason: string,
  offset: number,
  options?: StrictJsonOptions,
): void {
  const error = t.throws(() => parseStrictJson(input, options), { instanceOf: JsonSyntaxError });
  t.is(error?.message, `${reason} at byte ${offset}`, typeof input === 'string' ? JSON.stringify(input) : 'bytes');
}

const roundTrip = (text: string): string => canonicalJson(parseStrictJson(utf8(text)));

// --- canonical encoding: the spec's exact bytes ---

test('the three printed manifests survive parse + encode byte for byte', (t) => {
  for (const text of [HELLO_MANIFEST, LIBFOO_DEV_MANIFEST, EDGE_MANIFEST]) {
    t.is(roundTrip(text), `${text}\n`);
  }
});

test('edge-case farm_id: U+2028 comes out as six characters, é and TAB as the spec shows', (t) => {
  const manifest = parseStrictJson(EDGE_MANIFEST) as { build: { farm_id: string } };
  t.is(manifest.build.farm_id, 'farm-é-\u2028-\t');
  const bytes = Buffer.from(canonicalJson(manifest), 'utf8');
  t.true(bytes.includes(Buffer.from('"farm_id":"farm-\xc3\xa9-\\u2028-\\t"', 'latin1')));
  t.false(bytes.includes(Buffer.from('\u2028', 'utf8')));
  t.is(bytes.length, 757);
});

test('files.json and envelope examples survive parse + encode; the envelope is 229 bytes', (t) => {
  t.is(roundTrip(HELLO_FILES), `${HELLO_FILES}\n`);
  const envelope = roundTrip(HELLO_ENVELOPE);
  t.is(envelope, `${HELLO_ENVELOPE}\n`);
  t.is(Buffer.byteLength(envelope), 229);
});

/** The data of each `.peipkg/…` entry in a ustar file (names are short, so no PAX handling). */
function metadataEntries(tarPath: string): Map<string, Buffer> {
  const tar = readFileSync(tarPath);
  const entries = new Map<string, Buffer>();
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const name = tar.subarray(at, at + 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('ascii').replace(/\0.*$/s, ''), 8);
    if (name.startsWith('.peipkg/')) entries.set(name, tar.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

test('the JSON inside the signed vector tars is canonical and matches the printed text', (t) => {
  const printed: Record<string, [string, string, string]> = {
    'hello-noarch': [HELLO_MANIFEST, HELLO_FILES, HELLO_ENVELOPE],
    'edge-case': [EDGE_MANIFEST, '', ''],
  };
  for (const [name, [manifest, files, envelope]] of Object.entries(printed)) {
    const entries = metadataEntries(vector(`${name}/signed.tar`));
    t.is(entries.size, 3, name);
    for (const [entry, bytes] of entries) {
      t.is(canonicalJson(parseStrictJson(bytes)), bytes.toString('utf8'), `${name} ${entry}`);
    }
    t.is(entries.get('.peipkg/manifest.json')?.toString('utf8'), `${manifest}\n`);
    if (files !== '') t.is(entries.get('.peipkg/files.json')?.toString('utf8'), `${files}\n`);
    if (envelope !== '') t.is(entries.get('.peipkg/signature')?.toString('utf8'), `${envelope}\n`);
  }
});

// --- canonical encoding: rules ---

test('control characters use the short forms or lowercase \\u00xx, like JSON.stringify', (t) => {
  const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
  for (let c = 0; c < 0x20; c++) {
    const expected = short[c] ?? `\\u00${c.toString(16).padStart(2, '0')}`;
    t.is(canonicalJson(String.fromCharCode(c)), `"${expected}"\n`, `U+${c.toString(16)}`);
  }
  t.is(canonicalJson('\x1b\x1f'), '"\\u001b\\u001f"\n');
  t.is(canonicalJson('"\\'), '"\\"\\\\"\n');
});

test('/ < > & DEL, non-ASCII and astral characters are literal; U+2028 and U+2029 are escaped', (t) => {
  t.is(canonicalJson('a/<b>&c\x7fé€😀'), '"a/<b>&c\x7fé€😀"\n');
  t.is(canonicalJson('\u2028x\u2029'), '"\\u2028x\\u2029"\n');
  t.is(canonicalJson({ '\u2029': ['\u2028'] }), '{"\\u2029":["\\u2028"]}\n');
});

test('compact output in insertion order with one trailing newline; empty arrays are []', (t) => {
  const value = { z: 1, a: [], m: { y: null, b: true, c: false }, list: [{ k: 'v' }, 0, -7, ''] };
  t.is(canonicalJson(value), '{"z":1,"a":[],"m":{"y":null,"b":true,"c":false},"list":[{"k":"v"},0,-7,""]}\n');
  t.is(canonicalJson([]), '[]\n');
  t.is(canonicalJson({}), '{}\n');
  t.is(canonicalJson(Number.MAX_SAFE_INTEGER), '9007199254740991\n');
  t.is(canonicalJson(Object.assign(Object.create(null) as object, { a: 1 })), '{"a":1}\n');
});

test('the encoder refuses values the format cannot hold, naming where they are', (t) => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const cases: [unknown, string][] = [
    [{ a: 'x\uD800' }, '$.a contains a lone surrogate'],
    [['\uDC00y'], '$[0] contains a lone surrogate'],
    [{ ['k\uD83D']: 1 }, '$.k\uD83D contains a lone surrogate'],
    [{ n: 1.5 }, '$.n is 1.5, not a safe integer'],
    [NaN, '$ is NaN, not a safe integer'],
    [[Infinity], '$[0] is Infinity, not a safe integer'],
    [2 ** 53, '$ is 9007199254740992, not a safe integer'],
    [{ a: undefined }, '$.a is a undefined, which JSON cannot hold'],
    [undefined, '$ is a undefined, which JSON cannot hold'],
    [[() => 1], '$[0] is a function, which JSON cannot hold'],
    [{ s: Symbol('s') }, '$.s is a symbol, which JSON cannot hold'],
    [{ b: 1n }, '$.b is a bigint, which JSON cannot hold'],
    [{ d: new Date(0) }, '$.d is not a plain object'],
    [new Map(), '$ is not a plain object'],
    [cycle, '$.self is a cycle'],
    [[, 1], '$[0] is a undefined, which JSON cannot hold'],
  ];
  for (const [value, message] of cases) {
    const error = t.throws(() => canonicalJson(value), { instanceOf: InternalError });
    t.is(error?.message, `canonicalJson: ${message}`);
  }
  t.is(canonicalJson('\uD83D\uDE00'), '"😀"\n', 'a surrogate pair is fine');
  const shared = { x: 1 };
  t.is(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]\n', 'a repeated object is not a cycle');
});

// --- strict parser: accepted input ---

test('parses to ordinary values equal to JSON.parse, from bytes or a string', (t) => {
  const text = ' {"a":[1,-2,0,"s\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00",true,false,null,{},[]],"b":{"c":"é😀\x7f"}} \r\n\t';
  const expected: unknown = JSON.parse(text);
  t.deepEqual(parseStrictJson(text), expected);
  t.deepEqual(parseStrictJson(utf8(text)), expected);
  t.deepEqual(parseStrictJson(Buffer.from(text)), expected);
  const object = parseStrictJson('{"k":[]}');
  t.is(Object.getPrototypeOf(object), Object.prototype);
  t.true(Array.isArray((object as { k: unknown }).k));
  for (const scalar of ['0', '-1', '9007199254740991', '-9007199254740991', '"x"', 'true', 'null']) {
    t.deepEqual(parseStrictJson(scalar), JSON.parse(scalar) as unknown, scalar);
  }
});

test('keys that differ in case or only look alike are distinct; inherited names are not duplicates', (t) => {
  t.deepEqual(parseStrictJson('{"name":1,"Name":2,"NAME":3}'), { name: 1, Name: 2, NAME: 3 });
  t.deepEqual(parseStrictJson('{"e\\u0301":1,"\\u00e9":2}'), { 'e\u0301': 1, '\u00e9': 2 });
  t.deepEqual(parseStrictJson('{"toString":1,"constructor":2,"hasOwnProperty":3}'), {
    toString: 1,
    constructor: 2,
    hasOwnProperty: 3,
  });
});

test('__proto__ becomes an own data property and never changes a prototype', (t) => {
  const text = '{"__proto__":{"polluted":true},"a":{"__proto__":[1]}}';
  const value = parseStrictJson(text) as Record<string, unknown>;
  t.is(Object.getPrototypeOf(value), Object.prototype);
  t.true(Object.hasOwn(value, '__proto__'));
  t.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__'), {
    value: { polluted: true },
    writable: true,
    enumerable: true,
    configurable: true,
  });
  t.is(value.polluted, undefined);
  t.is(({} as Record<string, unknown>).polluted, undefined);
  const inner = value.a as Record<string, unknown>;
  t.is(Object.getPrototypeOf(inner), Object.prototype);
  t.deepEqual(Object.keys(inner), ['__proto__']);
  t.deepEqual(value, JSON.parse(text) as unknown);
  t.is(canonicalJson(value), `${text}\n`);
  rejects(t, '{"__proto__":1,"__proto__":2}', 'duplicate key "__proto__"', 15);
});

test('a document of 100,000 entries parses to what JSON.parse returns', (t) => {
  const entries = Array.from({ length: 100_000 }, (_, i) => ({
    path: `usr/share/pkg-${i}/fïle-${i}\t.txt`,
    size: i * 7919,
    hash: i.toString(16).padStart(64, '0'),
    flags: [i % 2 === 0, null],
  }));
  const text = JSON.stringify({ schema_version: 1, algorithm: 'sha256', entries });
  const parsed = parseStrictJson(utf8(text));
  t.deepEqual(parsed, JSON.parse(text) as unknown);
  t.is(canonicalJson(parsed), `${text}\n`);
});

// --- strict parser: one test per rejection rule ---

test('rejects invalid UTF-8 in bytes input at the offending byte', (t) => {
  rejects(t, bytes('"é', [0xff], '"'), 'invalid UTF-8', 3);
  rejects(t, bytes('"', [0xc0, 0xaf], '"'), 'invalid UTF-8', 1); // overlong '/'
  rejects(t, bytes('"ab', [0xed, 0xa0, 0x80], '"'), 'invalid UTF-8', 3); // encoded surrogate
  rejects(t, bytes('"\uFFFD', [0xf4, 0x90, 0x80, 0x80], '"'), 'invalid UTF-8', 4); // above U+10FFFF
  rejects(t, bytes('"😀', [0xe2, 0x82]), 'invalid UTF-8', 5); // truncated at the end
});

test('rejects a byte order mark', (t) => {
  rejects(t, bytes([0xef, 0xbb, 0xbf], '{}'), 'byte order mark', 0);
  rejects(t, '\uFEFF{}', 'byte order mark', 0);
});

test('rejects data after the value, but not trailing whitespace', (t) => {
  rejects(t, '{} x', 'unexpected data after the JSON value', 3);
  rejects(t, '{}{}', 'unexpected data after the JSON value', 2);
  rejects(t, '1 2', 'unexpected data after the JSON value', 2);
  rejects(t, '{}\n\0', 'unexpected data after the JSON value', 3);
  t.deepEqual(parseStrictJson('{} \t\r\n'), {});
});

test('rejects duplicate keys, comparing decoded strings', (t) => {
  rejects(t, '{"a":1,"a":2}', 'duplicate key "a"', 7);
  rejects(t, '{"a":1,"\\u0061":2}', 'duplicate key "a"', 7);
  rejects(t, '[{"x":{"k":[],"k":{}}}]', 'duplicate key "k"', 14);
});

test('rejects numbers with a fraction', (t) => {
  rejects(t, '1.0', 'number with a fraction (only integers are allowed)', 1);
  rejects(t, '[0.5]', 'number with a fraction (only integers are allowed)', 2);
  rejects(t, '{"a":-12.25}', 'number with a fraction (only integers are allowed)', 8);
});

test('rejects numbers with an exponent', (t) => {
  rejects(t, '1e3', 'number with an exponent (only integers are allowed)', 1);
  rejects(t, '[10E0]', 'number with an exponent (only integers are allowed)', 3);
  rejects(t, '-1e-0', 'number with an exponent (only integers are allowed)', 2);
});

test('rejects negative zero and leading zeros', (t) => {
  rejects(t, '-0', 'negative zero is not an integer', 0);
  rejects(t, '[1,-0]', 'negative zero is not an integer', 3);
  rejects(t, '01', 'leading zero in number', 0);
  rejects(t, '-007', 'leading zero in number', 0);
  t.is(parseStrictJson('0'), 0);
});

test('rejects integers outside the safe range', (t) => {
  rejects(t, '9007199254740992', 'integer out of range', 0);
  rejects(t, '[-9007199254740992]', 'integer out of range', 1);
  rejects(t, '{"size":123456789012345678901234567890}', 'integer out of range', 8);
  t.is(parseStrictJson('-9007199254740991'), -Number.MAX_SAFE_INTEGER);
});

test('rejects invalid escapes', (t) => {
  rejects(t, '"\\x"', 'invalid escape', 1);
  rejects(t, '"ab\\\'"', 'invalid escape', 3);
  rejects(t, '"\\U0041"', 'invalid escape', 1);
  rejects(t, '"\\', 'invalid escape', 1);
  rejects(t, '"\\u12"', 'invalid \\u escape', 1);
  rejects(t, '"é\\u12G4"', 'invalid \\u escape', 3);
  rejects(t, '"\\uD800\\uDCG0"', 'invalid \\u escape', 7);
});

test('rejects \\u escapes that leave a lone surrogate', (t) => {
  rejects(t, '"\\uD800"', 'lone high surrogate escape', 1);
  rejects(t, '"\\udbff\\u0041"', 'lone high surrogate escape', 1);
  rejects(t, '"\\uD800x\\uDC00"', 'lone high surrogate escape', 1);
  rejects(t, '"\\uD800\\uD800\\uDC00"', 'lone high surrogate escape', 1);
  rejects(t, '"a\\uDC00"', 'lone low surrogate escape', 2);
  rejects(t, '{"\\uDFFF":1}', 'lone low surrogate escape', 2);
  t.is(parseStrictJson('"\\uD83D\\uDE00\\udbff\\udfff"'), '😀\u{10FFFF}');
});

test('rejects lone surrogates in string input', (t) => {
  rejects(t, '"a\uD800"', 'lone surrogate in string', 2);
  rejects(t, '"\uDC00"', 'lone surrogate in string', 1);
  t.is(parseStrictJson('"\uD83D\uDE00"'), '😀');
});

test('rejects raw control characters in strings, but not DEL', (t) => {
  rejects(t, '"a\tb"', 'control character in string', 2);
  rejects(t, '"\0"', 'control character in string', 1);
  rejects(t, '{"k\n":1}', 'control character in string', 3);
  rejects(t, utf8('"é\x1f"'), 'control character in string', 3);
  t.is(parseStrictJson('"\x7f"'), '\x7f');
});

test('nesting: 64 levels are accepted, 65 rejected; maxDepth changes the bound', (t) => {
  const arrays = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
  const objects = (n: number): string => `${'{"a":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}`;
  t.notThrows(() => parseStrictJson(arrays(64)));
  t.notThrows(() => parseStrictJson(objects(64)));
  rejects(t, arrays(65), 'nesting deeper than 64', 64);
  rejects(t, objects(65), 'nesting deeper than 64', 64 * 5);
  rejects(t, `[${arrays(100_000)}]`, 'nesting deeper than 64', 64);
  t.deepEqual(parseStrictJson('[[1]]', { maxDepth: 2 }), [[1]]);
  rejects(t, '[[[1]]]', 'nesting deeper than 2', 2, { maxDepth: 2 });
  rejects(t, '[]', 'nesting deeper than 0', 0, { maxDepth: 0 });
  t.is(parseStrictJson('7', { maxDepth: 0 }), 7);
  t.throws(() => parseStrictJson('1', { maxDepth: -1 }), { instanceOf: InternalError });
});

test('rejects ordinary syntax errors', (t) => {
  const cases: [string, string, number][] = [
    ['', 'unexpected end of input', 0],
    ['  ', 'unexpected end of input', 2],
    ['{', 'expected a string key', 1],
    ['[', 'unexpected end of input', 1],
    ['[1', "expected ',' or ']'", 2],
    ['[1,]', 'expected a JSON value', 3],
    ['[1 2]', "expected ',' or ']'", 3],
    ['{"a":1,}', 'expected a string key', 7],
    ['{"a" 1}', "expected ':'", 5],
    ['{"a":1 "b":2}', "expected ',' or '}'", 7],
    ['{a:1}', 'expected a string key', 1],
    ['{"a":}', 'expected a JSON value', 5],
    ["'a'", 'expected a JSON value', 0],
    ['"abc', 'unterminated string', 0],
    ['tru', 'expected a JSON value', 0],
    ['nul', 'expected a JSON value', 0],
    ['True', 'expected a JSON value', 0],
    ['NaN', 'expected a JSON value', 0],
    ['Infinity', 'expected a JSON value', 0],
    ['+1', 'expected a JSON value', 0],
    ['.5', 'expected a JSON value', 0],
    ['-', 'invalid number', 0],
    ['--1', 'invalid number', 0],
    ['[-a]', 'invalid number', 1],
    ['\u00a0{}', 'expected a JSON value', 0],
    ['\v1', 'expected a JSON value', 0],
    ['\f1', 'expected a JSON value', 0],
    ['[1]]', 'unexpected data after the JSON value', 3],
    ['{"a":1}}', 'unexpected data after the JSON value', 7],
  ];
  for (const [input, reason, offset] of cases) rejects(t, input, reason, offset);
});

test('errors are InputErrors whose offset counts UTF-8 bytes, for string and bytes input', (t) => {
  const text = '{"é":"😀","é":1}';
  rejects(t, text, 'duplicate key "é"', 13);
  rejects(t, utf8(text), 'duplicate key "é"', 13);
  const error = t.throws(() => parseStrictJson('[1.5]'));
  t.true(error instanceof InputError);
  t.is((error as InputError).exitCode, 1);
  t.is(error?.name, 'JsonSyntaxError');
});
