/**
 * Strict JSON reading and canonical JSON writing for package and repository documents.
 *
 * The parser exists because manifests, files.json, envelopes and repository state come from
 * untrusted archives and servers, and the verifier must reject what `JSON.parse` lets through
 * (package-format.md §8.1, §8.3): duplicate keys (`JSON.parse` keeps the last, so two readers could
 * see different documents), fractions, exponents, integers a double cannot hold exactly, lone
 * surrogates, a BOM and deep nesting. It does not check schemas (callers do), never returns bigint
 * (no field we read needs more than 2^53-1) and never repairs input: repository.md §3's U+FFFD
 * substitution describes a lenient reader. `__proto__` becomes an own property, never the prototype.
 *
 * The encoder writes what Go's encoding/json writes with HTML escaping off (package-format.md §3.1,
 * repository.md §3). It does not sort keys: the contract order is the caller's insertion order, so
 * integer-like keys (which JS always lists first) must not appear in contract objects. It refuses
 * what `JSON.stringify` would silently drop or garble (undefined, NaN, lone surrogates), because a
 * document written wrong becomes a signed, published document that is wrong.
 */

import { InputError, InternalError } from '../errors.js';

/** The input is not a JSON document this project accepts. The message ends in "at byte N". */
export class JsonSyntaxError extends InputError {}

export interface StrictJsonOptions {
  /** Deepest allowed nesting of arrays and objects; the default is 64 (package-format.md §8.1). */
  maxDepth?: number;
}

const DEFAULT_MAX_DEPTH = 64;
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses UTF-8 bytes or a string into plain objects, arrays, strings, safe integers, booleans and
 * null. Throws `JsonSyntaxError("<reason> at byte <offset>")` for anything outside strict JSON
 * (see the module comment). Offsets count UTF-8 bytes from the start of the input.
 */
export function parseStrictJson(input: Uint8Array | string, options?: StrictJsonOptions): unknown {
  const maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 0) {
    throw new InternalError(`parseStrictJson: maxDepth must be a non-negative integer, got ${maxDepth}`);
  }
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = decoder.decode(input);
    } catch {
      throw new JsonSyntaxError(`invalid UTF-8 at byte ${firstInvalidUtf8(input)}`);
    }
  }
  return new Parser(text, maxDepth).parseDocument();
}

/** One open array or object while parsing; `key` is the member whose value is being read. */
type Frame =
  | { array: unknown[]; object: null; key: string }
  | { array: null; object: Record<string, unknown>; key: string };

/** What `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` stand for, indexed by the character after `\`. */
const SIMPLE_ESCAPES: (string | undefined)[] = [];
for (const [c, v] of Object.entries({ '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' })) {
  SIMPLE_ESCAPES[c.charCodeAt(0)] = v;
}

class Parser {
  private pos = 0;

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
  ) {}

  parseDocument(): unknown {
    if (this.s.charCodeAt(0) === 0xfeff) this.fail('byte order mark', 0);
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.pos < this.s.length) this.fail('unexpected data after the JSON value', this.pos);
    return value;
  }

  /** Reads one value without recursion; `stack` holds the open containers. */
  private parseValue(): unknown {
    const s = this.s;
    const stack: Frame[] = [];
    for (;;) {
      // Read the start of a value: a scalar, an empty container, or the first member of one.
      this.skipWhitespace();
      let value: unknown;
      const c = s.charCodeAt(this.pos);
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length >= this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`, this.pos);
        this.pos++;
        this.skipWhitespace();
        if (s.charCodeAt(this.pos) === c + 2 /* the matching } or ] */) {
          this.pos++;
          value = c === 0x7b ? {} : [];
        } else if (c === 0x5b) {
          stack.push({ array: [], object: null, key: '' });
          continue;
        } else {
          const object: Record<string, unknown> = {};
          stack.push({ array: null, object, key: this.parseKey(object) });
          continue;
        }
      } else if (c === 0x22 /* " */) {
        value = this.parseString();
      } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
        value = this.parseNumber();
      } else {
        const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : c === 0x6e ? 'null' : '';
        if (word === '' || !s.startsWith(word, this.pos)) {
          this.fail(this.pos < s.length ? 'expected a JSON value' : 'unexpected end of input', this.pos);
        }
        this.pos += word.length;
        value = word === 'null' ? null : word === 'true';
      }

      // Store the finished value in its parent, closing every container that ends here.
      for (;;) {
        const frame = stack[stack.length - 1];
        if (frame === undefined) return value;
        this.skipWhitespace();
        const next = s.charCodeAt(this.pos);
        if (frame.array !== null) {
          frame.array.push(value);
          if (next === 0x2c /* , */) {
            this.pos++;
            break;
          }
          if (next !== 0x5d /* ] */) this.fail("expected ',' or ']'", this.pos);
          this.pos++;
          value = frame.array;
        } else {
          const object = frame.object;
          setOwn(object, frame.key, value);
          if (next === 0x2c /* , */) {
            this.pos++;
            this.skipWhitespace();
            frame.key = this.parseKey(object);
            break;
          }
          if (next !== 0x7d /* } */) this.fail("expected ',' or '}'", this.pos);
          this.pos++;
          value = object;
        }
        stack.pop();
      }
    }
  }

  /** Reads `"key":` (whitespace already skipped) and rejects a key the object already has. */
  private parseKey(object: Record<string, unknown>): string {
    const start = this.pos;
    if (this.s.charCodeAt(start) !== 0x22) this.fail('expected a string key', start);
    const key = this.parseString();
    if (Object.hasOwn(object, key)) this.fail(`duplicate key ${quoteForMessage(key)}`, start);
    this.skipWhitespace();
    if (this.s.charCodeAt(this.pos) !== 0x3a /* : */) this.fail("expected ':'", this.pos);
    this.pos++;
    return key;
  }

  /** Reads a string starting at the opening quote. Unescaped runs are sliced, not copied by char. */
  private parseString(): string {
    const s = this.s;
    const len = s.length;
    let i = this.pos + 1;
    let runStart = i;
    let out = '';
    for (;;) {
      if (i >= len) this.fail('unterminated string', this.pos);
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out + s.slice(runStart, i);
      }
      if (c === 0x5c /* \ */) {
        out += s.slice(runStart, i);
        const e = s.charCodeAt(i + 1);
        const simple = SIMPLE_ESCAPES[e];
        if (simple !== undefined) {
          out += simple;
        } else if (e === 0x75 /* u */) {
          const unit = this.hex4(i + 2, i);
          if (unit >= 0xdc00 && unit <= 0xdfff) this.fail('lone low surrogate escape', i);
          if (unit >= 0xd800 && unit <= 0xdbff) {
            const low = s.charCodeAt(i + 6) === 0x5c && s.charCodeAt(i + 7) === 0x75 ? this.hex4(i + 8, i + 6) : -1;
            if (low < 0xdc00 || low > 0xdfff) this.fail('lone high surrogate escape', i);
            out += String.fromCharCode(unit, low);
            i += 6;
          } else {
            out += String.fromCharCode(unit);
          }
          i += 4;
        } else {
          this.fail('invalid escape', i);
        }
        i += 2;
        runStart = i;
      } else if (c < 0x20) {
        this.fail('control character in string', i);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        // Decoded bytes only ever hold pairs; a string input may hold a lone half.
        const low = s.charCodeAt(i + 1);
        if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) this.fail('lone surrogate in string', i);
        i += 2;
      } else {
        i++;
      }
    }
  }

  /** The value of four hex digits at `at`, or a failure reported at the escape's backslash. */
  private hex4(at: number, escapeStart: number): number {
    let unit = 0;
    for (let k = at; k < at + 4; k++) {
      const c = this.s.charCodeAt(k);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else return this.fail('invalid \\u escape', escapeStart);
      unit = unit * 16 + d;
    }
    return unit;
  }

  /** Reads an integer; fractions, exponents, -0, leading zeros and unsafe magnitudes fail. */
  private parseNumber(): number {
    const s = this.s;
    const start = this.pos;
    let i = start;
    const negative = s.charCodeAt(i) === 0x2d;
    if (negative) i++;
    const first = s.charCodeAt(i);
    if (!(first >= 0x30 && first <= 0x39)) this.fail('invalid number', start);
    let n = 0;
    for (let c = first; c >= 0x30 && c <= 0x39; c = s.charCodeAt(++i)) {
      n = n * 10 + (c - 0x30);
      // Exact until it passes 2^53-1, and rounding cannot bring it back below.
      if (n > Number.MAX_SAFE_INTEGER) this.fail('integer out of range', start);
    }
    if (first === 0x30 && i - start > (negative ? 2 : 1)) this.fail('leading zero in number', start);
    const c = s.charCodeAt(i);
    if (c === 0x2e /* . */) this.fail('number with a fraction (only integers are allowed)', i);
    if (c === 0x65 || c === 0x45 /* e E */) this.fail('number with an exponent (only integers are allowed)', i);
    if (negative && n === 0) this.fail('negative zero is not an integer', start);
    this.pos = i;
    return negative ? -n : n;
  }

  private skipWhitespace(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    this.pos = i;
  }

  /** Throws with the UTF-8 byte offset of UTF-16 index `index`. */
  private fail(reason: string, index: number): never {
    const offset = Buffer.byteLength(this.s.slice(0, index), 'utf8');
    throw new JsonSyntaxError(`${reason} at byte ${offset}`);
  }
}

/** Defines `key` as an own data property, so `__proto__` can never replace the prototype. */
function setOwn(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

function quoteForMessage(key: string): string {
  return JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);
}

/** Offset of the first invalid UTF-8 sequence, found by replaying a lenient decode; error path only. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let offset = 0;
  for (const ch of new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)) {
    const cp = ch.codePointAt(0) as number;
    const literal = bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd;
    if (cp === 0xfffd && !literal) return offset;
    offset += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return offset;
}

const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LINE_SEPARATORS = /[\u2028\u2029]/g;

/**
 * Compact canonical JSON of `value` plus one trailing "\n" (package-format.md §3.1). Objects are
 * written in their key insertion order. Throws `InternalError` for values the format cannot
 * hold: lone surrogates, numbers that are not safe integers, undefined, functions, symbols,
 * bigints, objects that are not plain, and cycles.
 */
export function canonicalJson(value: unknown): string {
  // Once the tree holds only what JSON.stringify writes exactly as Go does, JSON.stringify is the
  // encoder: same key order, compact, same escapes. U+2028/U+2029 can only occur inside strings.
  check(value, [], new Set());
  const json = JSON.stringify(value).replace(LINE_SEPARATORS, (c) => (c === '\u2028' ? '\\u2028' : '\\u2029'));
  return `${json}\n`;
}

/** Walks the tree; `path` is the member chain (built only into error messages) and `open` the ancestors. */
function check(value: unknown, path: (string | number)[], open: Set<object>): void {
  switch (typeof value) {
    case 'string':
      checkString(value, path);
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isSafeInteger(value)) refuse(path, `is ${value}, not a safe integer`);
      return;
    case 'object': {
      if (value === null) return;
      if (open.has(value)) refuse(path, 'is a cycle');
      open.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          check(value[i], path, open);
          path.pop();
        }
      } else {
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) refuse(path, 'is not a plain object');
        for (const key of Object.keys(value)) {
          path.push(key);
          checkString(key, path);
          check((value as Record<string, unknown>)[key], path, open);
          path.pop();
        }
      }
      open.delete(value);
      return;
    }
    case 'undefined':
    case 'function':
    case 'symbol':
    case 'bigint':
      refuse(path, `is a ${typeof value}, which JSON cannot hold`);
  }
}

function checkString(s: string, path: (string | number)[]): void {
  if (SURROGATE.test(s) && LONE_SURROGATE.test(s)) refuse(path, 'contains a lone surrogate');
}

function refuse(path: (string | number)[], problem: string): never {
  const where = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
  throw new InternalError(`canonicalJson: $${where} ${problem}`);
}
