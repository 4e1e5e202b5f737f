/**
 * Version parsing and ordering against the spec's checked tables: package-format.md §1.2 and
 * §1.3, and repository.md §7.1 and §7.4 using the "Spec = reference client" column (DECISIONS.md
 * "Version comparison"). The repo tool's `-` reset and int64 clamp are deliberately not expected.
 */

import test from 'ava';
import type { ExecutionContext } from 'ava';

import { InputError } from '../../ts/errors.js';
import {
  compareUpstreams,
  compareVersions,
  isValidVersion,
  parseVersion,
  versionProblem,
} from '../../ts/format/version.js';

type Op = '<' | '=' | '>';
const SIGN: Record<Op, -1 | 0 | 1> = { '<': -1, '=': 0, '>': 1 };
const MIRRORED: Record<Op, -1 | 0 | 1> = { '<': 1, '=': 0, '>': -1 };

// ---- §1.2 checked results ----

const checked: Array<[string, boolean]> = [
  ['1.0', false],
  ['1:1.0-1', true],
  ['01:1.0-1', false],
  ['1.0-01', false],
  ['1.0-0', false],
  ['-1', false],
  ['.1-1', false],
  ['~1-1', false],
  ['a.1-1', true],
  ['1.0-1-2', true],
  ['1_0-1', false],
  ['1.0 -1', false],
  ['1.0-99999999999999999999', false],
];

for (const [text, valid] of checked) {
  test(`§1.2: "${text}" is ${valid ? 'valid' : 'invalid'}`, (t) => {
    t.is(isValidVersion(text), valid);
    t.is(versionProblem(text) === undefined, valid);
    if (valid) t.notThrows(() => parseVersion(text));
    else t.throws(() => parseVersion(text), { instanceOf: InputError });
  });
}

test('§1.2: fields of valid versions', (t) => {
  t.deepEqual(parseVersion('1:1.0-1'), { text: '1:1.0-1', epoch: 1n, upstream: '1.0', revision: 1n });
  t.deepEqual(parseVersion('a.1-1'), { text: 'a.1-1', epoch: 0n, upstream: 'a.1', revision: 1n });
  t.deepEqual(parseVersion('1.0-1-2'), { text: '1.0-1-2', epoch: 0n, upstream: '1.0-1', revision: 2n });
  t.deepEqual(parseVersion('0:1.0~rc.1+x-10'), {
    text: '0:1.0~rc.1+x-10',
    epoch: 0n,
    upstream: '1.0~rc.1+x',
    revision: 10n,
  });
});

// ---- §7.1 messages ----

const problems: Array<[string, string]> = [
  ['1.0', "missing peios revision (expected '<upstream>-<revision>')"],
  [':1.0-1', 'empty epoch'],
  ['x:1.0-1', 'epoch "x" is not decimal digits'],
  ['-1:1.0-1', 'epoch "-1" is not decimal digits'],
  ['01:1.0-1', 'epoch "01" has leading zero'],
  ['9223372036854775808:1.0-1', 'epoch "9223372036854775808" is out of range'],
  ['-1', 'empty upstream'],
  ['1:-1', 'empty upstream'],
  ['1.0-', 'empty revision'],
  ['1.0-1a', 'revision "1a" is not decimal digits'],
  ['1.0-+1', 'revision "+1" is not decimal digits'],
  ['1.0-01', 'revision "01" has leading zero'],
  ['1.0-00', 'revision "00" has leading zero'],
  ['1.0-0', 'revision 0 (must be >= 1; revision 0 is reserved)'],
  ['1.0-99999999999999999999', 'revision "99999999999999999999" is out of range'],
  ['1.0-9223372036854775808', 'revision "9223372036854775808" is out of range'],
  ['.1-1', 'upstream ".1": first character must be a letter or digit'],
  ['~1-1', 'upstream "~1": first character must be a letter or digit'],
  ['1_0-1', `upstream "1_0": forbidden character '_'`],
  ['1.0 -1', `upstream "1.0 ": forbidden character ' '`],
  ['1:2:3-4', `upstream "2:3": forbidden character ':'`],
  ['1.0\t-1', `upstream "1.0\t": forbidden character '\\t'`],
  ['1.é-1', `upstream "1.é": forbidden character 'é'`],
];

for (const [text, reason] of problems) {
  test(`§7.1: "${text}" → ${reason}`, (t) => {
    t.is(versionProblem(text), reason);
    const error = t.throws(() => parseVersion(text), { instanceOf: InputError });
    t.is(error?.message, `version "${text}": ${reason}`);
    t.is(error?.exitCode, 1);
  });
}

test('epoch and revision accept the int64 maximum and zero epoch', (t) => {
  const max = 9223372036854775807n;
  const text = `${max}:1-${max}`;
  t.deepEqual(parseVersion(text), { text, epoch: max, upstream: '1', revision: max });
  t.is(parseVersion('0:1-1').epoch, 0n);
  t.is(parseVersion('1-1').epoch, 0n);
});

// ---- comparison tables ----

/** Checks `a op b`, the mirrored `b op' a`, reflexivity, and that strings and parsed values agree. */
function checkOrder(a: string, op: Op, b: string): (t: ExecutionContext) => void {
  return (t) => {
    t.is(compareVersions(a, b), SIGN[op], `${a} ${op} ${b}`);
    t.is(compareVersions(b, a), MIRRORED[op], `mirrored: ${b} vs ${a}`);
    t.is(compareVersions(parseVersion(a), parseVersion(b)), SIGN[op]);
    t.is(compareVersions(parseVersion(a), b), SIGN[op]);
    t.is(compareVersions(a, a), 0);
    t.is(compareVersions(b, b), 0);
  };
}

// package-format.md §1.3, both column pairs of the results table.
const formatTable: Array<[string, Op, string]> = [
  ['1.10-1', '>', '1.9-1'],
  ['1.0-1', '<', '1.0.1-1'],
  ['1.0-1', '>', '1.0-rc.1-1'],
  ['1.0-rc.1-1', '<', '1.0-rc.2-1'],
  ['1.0-alpha-1', '<', '1.0-beta-1'],
  ['1.0-rc-1', '>', '1.0-pre-1'],
  ['1.0a1-1', '<', '1.0b1-1'],
  ['1.0~rc1-1', '<', '1.0-1'],
  ['0:1.0-1', '<', '1:0.5-1'],
  ['1.0-foo-1', '>', '1.0-1'],
  ['1.0~alpha-1', '=', '1.0~a-1'],
  ['1.0~Alpha-1', '=', '1.0~ALPHA-1'],
  ['1.0-foo-1', '<', '1.0-zzz-1'],
  ['1.0-Foo-1', '<', '1.0-foo-1'],
  ['1.0-1', '>', '1.0.alpha-1'],
  ['1.0-1', '>', '1.0a-1'],
  ['16beta1-1', '<', '16-1'],
  ['1.0dev-1', '<', '1.0alpha-1'],
  ['1.0+build.42-1', '>', '1.0-1'],
  ['1.0~foo-1', '<', '1.0-1'],
  ['1.0-1', '=', '1-0-1'],
  ['007-1', '=', '7-1'],
  ['1.0~1-1', '>', '1.0-1'],
  ['2:0.1-1', '>', '1:9.9-9'],
];

for (const [a, op, b] of formatTable) test(`§1.3: ${a} ${op} ${b}`, checkOrder(a, op, b));

// repository.md §7.4, "Spec = reference client" column (bold rows and the int64 row included).
const repositoryTable: Array<[string, Op, string]> = [
  ['1.0-1', '<', '1.0.1-1'],
  ['1.0-1', '>', '1.0-rc.1-1'],
  ['1.0-1', '>', '1.0.alpha-1'],
  ['1.0-1', '>', '1.0a-1'],
  ['1.10-1', '>', '1.9-1'],
  ['1.0-10', '>', '1.0-9'],
  ['2:0.5.0-1', '>', '1:99.99-1'],
  ['0:1.0-1', '=', '1.0-1'],
  ['1.0~a-1', '=', '1.0~alpha-1'],
  ['1.0~Alpha-1', '=', '1.0~ALPHA-1'],
  ['1.0~rc.1-1', '=', '1.0-rc.1-1'],
  ['1.0rc1-1', '=', '1.0~rc1-1'],
  ['16beta1-1', '<', '16-1'],
  ['1.0-foo-1', '>', '1.0-1'],
  ['1.0-foo-1', '<', '1.0-zzz-1'],
  ['1.0Foo-1', '<', '1.0foo-1'],
  ['1.0+build.42-1', '>', '1.0-1'],
  ['1.01-1', '=', '1.1-1'],
  ['1.0-1', '=', '1.0.-1'],
  ['1.0~-1', '=', '1.0-1'],
  ['1.0-1-1', '=', '1.0.1-1'],
  ['1.0.dev-1', '<', '1.0~alpha-1'],
  ['1.0~foo-1', '<', '1.0-1'],
  ['1.0-rc.foo-1', '<', '1.0-rc-1'],
  ['1.0-rc-foo-1', '<', '1.0-rc-1'],
  ['1.0~1-foo-1', '<', '1.0~1-1'],
  ['1.0~rc-foo-1', '<', '1.0~rc-2-1'],
  ['1.0~.foo-1', '<', '1.0-1'],
  ['99999999999999999999-1', '>', '99999999999999999998-1'],
];

for (const [a, op, b] of repositoryTable) test(`§7.4: ${a} ${op} ${b}`, checkOrder(a, op, b));

// ---- rank chain ----

const rankChain = ['1.0~dev1-1', '1.0~alpha1-1', '1.0~beta1-1', '1.0~pre1-1', '1.0~rc1-1', '1.0-1'];

test('§7.4 rank chain: every earlier version is smaller than every later one', (t) => {
  for (const [i, a] of rankChain.entries()) {
    for (const [j, b] of rankChain.entries()) {
      t.is(compareVersions(a, b), i < j ? -1 : i > j ? 1 : 0, `${a} vs ${b}`);
    }
  }
});

test('sorting shuffled versions with compareVersions gives the rank-chain order', (t) => {
  const shuffles = [
    ['1.0-1', '1.0~rc1-1', '1.0~pre1-1', '1.0~beta1-1', '1.0~alpha1-1', '1.0~dev1-1'],
    ['1.0~pre1-1', '1.0~dev1-1', '1.0-1', '1.0~alpha1-1', '1.0~rc1-1', '1.0~beta1-1'],
    ['1.0~beta1-1', '1.0-1', '1.0~alpha1-1', '1.0~rc1-1', '1.0~dev1-1', '1.0~pre1-1'],
  ];
  for (const shuffled of shuffles) {
    t.deepEqual([...shuffled].sort(compareVersions), rankChain);
    t.deepEqual(shuffled.map((v) => parseVersion(v)).sort(compareVersions).map((v) => v.text), rankChain);
  }
});

// ---- details outside the tables ----

test('compareUpstreams compares upstreams only', (t) => {
  t.is(compareUpstreams('1.0', '1.0'), 0);
  t.is(compareUpstreams('1.10', '1.9'), 1);
  t.is(compareUpstreams('1.0~rc1', '1.0'), -1);
  t.is(compareUpstreams('1.0', '1.0~rc1'), 1);
  t.is(compareUpstreams('1.0-1', '1.0.1'), 0);
  t.is(compareUpstreams('1.0-rc-foo', '1.0-rc'), -1);
  t.is(compareUpstreams('1.0rc', '1.0RC'), 0);
  t.is(compareUpstreams('1.0~BETA', '1.0~b'), 0);
});

test('numeric segments compare unbounded, ignoring leading zeros', (t) => {
  t.is(compareUpstreams('18446744073709551616', '18446744073709551615'), 1);
  t.is(compareUpstreams('000018446744073709551616', '18446744073709551616'), 0);
  t.is(compareUpstreams('1.0000000000000000000000000000009', '1.10'), -1);
  t.is(compareUpstreams('0', '00'), 0);
});

test('epochs and revisions compare as integers', (t) => {
  t.is(compareVersions('10:1-1', '9:2-1'), 1);
  t.is(compareVersions('1-10', '1-9'), 1);
  t.is(compareVersions('9223372036854775807:1-1', '9223372036854775806:2-1'), 1);
});

test('a pre-release tail runs to the end of the upstream', (t) => {
  // `foo` after `~` (even across `-` and `.`) is pre-release: longer side is smaller.
  t.is(compareUpstreams('1.0~x-y-foo', '1.0~x-y'), -1);
  // A word before any `~` or token is not pre-release and beats a number.
  t.is(compareUpstreams('1.0.foo', '1.0.2'), 1);
  t.is(compareUpstreams('1.0~foo', '1.0~2'), -1);
});

test('compareVersions throws InputError for an invalid string', (t) => {
  const error = t.throws(() => compareVersions('1.0', '1.0-1'), { instanceOf: InputError });
  t.is(error?.message, `version "1.0": missing peios revision (expected '<upstream>-<revision>')`);
  t.throws(() => compareVersions('1.0-1', '1.0-0'), { instanceOf: InputError });
});
