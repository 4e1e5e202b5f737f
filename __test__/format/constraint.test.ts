/**
 * Constraint parsing and matching against package-format.md §1.4: longest operator prefix, an
 * optional revision on the operand, revisions compared only when the operand has one, AND of parts.
 */

import test from 'ava';

import { InputError } from '../../ts/errors.js';
import { constraintProblem, parseConstraint, satisfiesConstraint } from '../../ts/format/constraint.js';
import type { ConstraintClause } from '../../ts/format/constraint.js';
import { parseVersion } from '../../ts/format/version.js';

// ---- §1.4 examples ----

const examples: Array<[string, string, boolean]> = [
  ['3.0-7', '>= 3.0', true],
  ['1.0-9', '= 1.0', true],
  ['1.0-2', '!= 1.0', false],
  ['1.26.2-4', '1.26.2-3', false],
  ['1.26.2-3', '1.26.2-3', true],
];

for (const [version, constraint, expected] of examples) {
  test(`§1.4: "${constraint}" ${expected ? 'matches' : 'does not match'} ${version}`, (t) => {
    t.is(satisfiesConstraint(version, constraint), expected);
    t.is(satisfiesConstraint(parseVersion(version), parseConstraint(constraint)), expected);
  });
}

test('§1.4: "= 1.0-rc" is upstream 1.0-rc with no revision', (t) => {
  t.deepEqual(parseConstraint('= 1.0-rc'), [{ op: '=', epoch: 0n, upstream: '1.0-rc', revision: undefined }]);
  t.true(satisfiesConstraint('1.0-rc-5', '= 1.0-rc'));
  t.false(satisfiesConstraint('1.0-5', '= 1.0-rc'));
});

// ---- parsing ----

const parsed: Array<[string, ConstraintClause[]]> = [
  ['', []],
  ['>= 3.0', [{ op: '>=', epoch: 0n, upstream: '3.0', revision: undefined }]],
  ['<=3.0-2', [{ op: '<=', epoch: 0n, upstream: '3.0', revision: 2n }]],
  ['!= 1:2.0', [{ op: '!=', epoch: 1n, upstream: '2.0', revision: undefined }]],
  ['> 0:1', [{ op: '>', epoch: 0n, upstream: '1', revision: undefined }]],
  ['<2', [{ op: '<', epoch: 0n, upstream: '2', revision: undefined }]],
  ['=1.0', [{ op: '=', epoch: 0n, upstream: '1.0', revision: undefined }]],
  ['1.26.2-3', [{ op: '=', epoch: 0n, upstream: '1.26.2', revision: 3n }]],
  ['1.0-1-2', [{ op: '=', epoch: 0n, upstream: '1.0-1', revision: 2n }]],
  ['= 1.0-0', [{ op: '=', epoch: 0n, upstream: '1.0-0', revision: undefined }]],
  ['= 1.0-01', [{ op: '=', epoch: 0n, upstream: '1.0-01', revision: undefined }]],
  ['= 1.0-', [{ op: '=', epoch: 0n, upstream: '1.0-', revision: undefined }]],
  [
    '  >= 1.0 ,< 2.0~rc1-4 ',
    [
      { op: '>=', epoch: 0n, upstream: '1.0', revision: undefined },
      { op: '<', epoch: 0n, upstream: '2.0~rc1', revision: 4n },
    ],
  ],
];

for (const [text, clauses] of parsed) {
  test(`parse "${text}"`, (t) => {
    t.deepEqual(parseConstraint(text), clauses);
    t.is(constraintProblem(text), undefined);
  });
}

const invalid: Array<[string, string]> = [
  ['=> 1.0', 'unknown operator "=>" (use one of >=, <=, !=, >, <, =)'],
  ['== 1.0', 'unknown operator "==" (use one of >=, <=, !=, >, <, =)'],
  ['= = 1.0', 'unknown operator "= =" (use one of >=, <=, !=, >, <, =)'],
  ['>> 1.0', 'unknown operator ">>" (use one of >=, <=, !=, >, <, =)'],
  ['! 1.0', 'unknown operator "!" (use one of >=, <=, !=, >, <, =)'],
  ['>= 1.0 , ', "part 2 of 2 is empty (parts are separated by ',')"],
  [',>= 1.0', "part 1 of 2 is empty (parts are separated by ',')"],
  ['>= 1.0,,< 2', "part 2 of 3 is empty (parts are separated by ',')"],
  ['   ', "part 1 of 1 is empty (parts are separated by ',')"],
  ['>=', 'operator ">=" has no version after it'],
  ['>= 1.0, <', 'operator "<" has no version after it'],
  ['>= .1', '">= .1": upstream ".1": first character must be a letter or digit'],
  ['>= 1.0 beta', `">= 1.0 beta": upstream "1.0 beta": forbidden character ' '`],
  ['>= 1_0', `">= 1_0": upstream "1_0": forbidden character '_'`],
  ['= 01:1.0', '"= 01:1.0": epoch "01" has leading zero'],
  ['= :1.0', '"= :1.0": empty epoch'],
  ['= 1:2:3', `"= 1:2:3": upstream "2:3": forbidden character ':'`],
  ['= -1', '"= -1": empty upstream'],
  [
    '= 1.0-99999999999999999999',
    '"= 1.0-99999999999999999999": revision "99999999999999999999" is out of range',
  ],
];

for (const [text, reason] of invalid) {
  test(`invalid "${text}"`, (t) => {
    t.is(constraintProblem(text), reason);
    const error = t.throws(() => parseConstraint(text), { instanceOf: InputError });
    t.is(error?.message, `constraint "${text}": ${reason}`);
    t.throws(() => satisfiesConstraint('1.0-1', text), { instanceOf: InputError });
  });
}

// ---- matching ----

const matches: Array<[string, string, boolean]> = [
  // Without an operand revision every revision of the upstream is "equal".
  ['1.0-1', '>= 1.0', true],
  ['1.0-1', '<= 1.0', true],
  ['1.0-1', '> 1.0', false],
  ['1.0-1', '< 1.0', false],
  ['1.0-99', '= 1.0', true],
  ['1.0.1-1', '= 1.0', false],
  ['1.0.1-1', '!= 1.0', true],
  // With an operand revision it decides between equal upstreams.
  ['1.0-2', '> 1.0-1', true],
  ['1.0-1', '> 1.0-1', false],
  ['1.0-1', '>= 1.0-1', true],
  ['1.0-1', '< 1.0-2', true],
  ['1.0-3', '<= 1.0-2', false],
  ['1.0-2', '!= 1.0-1', true],
  ['1.0-1', '!= 1.0-1', false],
  // Revisions only matter when epoch and upstream are equal.
  ['1.1-1', '> 1.0-9', true],
  ['0.9-9', '< 1.0-1', true],
  // Epochs dominate; a missing epoch is 0.
  ['1:0.1-1', '> 9.9', true],
  ['1:0.1-1', '= 1:0.1', true],
  ['0.1-1', '= 1:0.1', false],
  ['0:2.0-1', '= 2.0', true],
  // Comparison is the version order, not string equality.
  ['1.01-1', '= 1.1', true],
  ['1.0~rc1-1', '< 1.0', true],
  ['1.0rc1-1', '= 1.0~rc1', true],
  ['16beta1-1', '>= 16', false],
  ['1.0-rc-foo-1', '< 1.0-rc', true],
  // AND of parts.
  ['1.5-1', '>= 1.0, < 2.0', true],
  ['2.0-1', '>= 1.0, < 2.0', false],
  ['0.9-1', '>= 1.0, < 2.0', false],
  ['1.5-1', '>= 1.0, < 2.0, != 1.5', false],
  ['1.5.1-1', '>= 1.0, < 2.0, != 1.5', true],
  // The empty constraint means any version.
  ['0-1', '', true],
  ['99:zzz-9', '', true],
];

for (const [version, constraint, expected] of matches) {
  test(`"${constraint}" ${expected ? 'matches' : 'does not match'} ${version}`, (t) => {
    t.is(satisfiesConstraint(version, constraint), expected);
  });
}

test('satisfiesConstraint accepts an empty clause list and throws for an invalid version', (t) => {
  t.true(satisfiesConstraint('1.0-1', []));
  const error = t.throws(() => satisfiesConstraint('1.0', '>= 1.0'), { instanceOf: InputError });
  t.is(error?.message, `version "1.0": missing peios revision (expected '<upstream>-<revision>')`);
});
