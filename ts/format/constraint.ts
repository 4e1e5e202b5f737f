/**
 * Dependency version constraints (`>= 1.0, < 2.0`): parsing and matching, per package-format.md
 * §1.4. A clause without a revision matches every revision of its upstream, which is why clauses
 * are not stored as `Version`s. Ordering comes from version.ts; nothing here resolves packages.
 */

import { InputError } from '../errors.js';
import { checkRevision, compareUpstreams, parseVersion, splitEpoch, upstreamProblem } from './version.js';
import type { Version } from './version.js';

export type ConstraintOp = '>=' | '<=' | '!=' | '>' | '<' | '=';

export interface ConstraintClause {
  readonly op: ConstraintOp;
  readonly epoch: bigint;
  readonly upstream: string;
  readonly revision: bigint | undefined;
}

/** Longest first, so `>=` wins over `>`. */
const OPERATORS: readonly ConstraintOp[] = ['>=', '<=', '!=', '>', '<', '='];
const CANONICAL_POSITIVE = /^[1-9][0-9]*$/;
const OPERATOR_START = /^[<>=!]/;
const OPERATOR_RUN = /^[<>=!][<>=!\s]*/;

type Parsed =
  | { readonly ok: true; readonly clauses: ConstraintClause[] }
  | { readonly ok: false; readonly problem: string };

function parseOperand(op: ConstraintOp, operand: string): ConstraintClause | string {
  const split = splitEpoch(operand);
  if (!split.ok) return split.problem;
  const { epoch, rest } = split.value;
  const dash = rest.lastIndexOf('-');
  const tail = dash < 0 ? '' : rest.slice(dash + 1);
  let upstream = rest;
  let revision: bigint | undefined;
  if (CANONICAL_POSITIVE.test(tail)) {
    // It looks like a revision, so it is one, and must then also fit int64 like any revision.
    const checked = checkRevision(tail);
    if (!checked.ok) return checked.problem;
    upstream = rest.slice(0, dash);
    revision = checked.value;
  }
  const problem = upstreamProblem(upstream);
  if (problem !== undefined) return problem;
  return { op, epoch, upstream, revision };
}

function parsePart(part: string): ConstraintClause | string {
  const written = OPERATORS.find((candidate) => part.startsWith(candidate));
  const operand = part.slice(written?.length ?? 0).trim();
  // `=>`, `==`, `>>`, `!`: operator characters left over after the longest valid operator.
  if (OPERATOR_START.test(operand)) {
    const run = (OPERATOR_RUN.exec(part)?.[0] ?? part).trim();
    return `unknown operator "${run}" (use one of >=, <=, !=, >, <, =)`;
  }
  if (operand === '') return `operator "${written ?? ''}" has no version after it`;
  const clause = parseOperand(written ?? '=', operand);
  return typeof clause === 'string' ? `"${part}": ${clause}` : clause;
}

function analyse(text: string): Parsed {
  if (text === '') return { ok: true, clauses: [] };
  const clauses: ConstraintClause[] = [];
  const parts = text.split(',');
  for (const [index, raw] of parts.entries()) {
    const part = raw.trim();
    if (part === '') {
      const problem = `part ${index + 1} of ${parts.length} is empty (parts are separated by ',')`;
      return { ok: false, problem };
    }
    const clause = parsePart(part);
    if (typeof clause === 'string') return { ok: false, problem: clause };
    clauses.push(clause);
  }
  return { ok: true, clauses };
}

/** `""` means any version → []. Throws InputError(`constraint "<text>": <reason>`). */
export function parseConstraint(text: string): ConstraintClause[] {
  const result = analyse(text);
  if (!result.ok) throw new InputError(`constraint "${text}": ${result.problem}`);
  return result.clauses;
}

/** Returns undefined when valid, else the reason (without the `constraint "<s>": ` prefix). */
export function constraintProblem(text: string): string | undefined {
  const result = analyse(text);
  return result.ok ? undefined : result.problem;
}

function compareToClause(version: Version, clause: ConstraintClause): -1 | 0 | 1 {
  if (version.epoch !== clause.epoch) return version.epoch < clause.epoch ? -1 : 1;
  const upstream = compareUpstreams(version.upstream, clause.upstream);
  if (upstream !== 0 || clause.revision === undefined) return upstream;
  return version.revision < clause.revision ? -1 : version.revision > clause.revision ? 1 : 0;
}

function clauseMatches(version: Version, clause: ConstraintClause): boolean {
  const c = compareToClause(version, clause);
  switch (clause.op) {
    case '>=':
      return c >= 0;
    case '<=':
      return c <= 0;
    case '!=':
      return c !== 0;
    case '>':
      return c > 0;
    case '<':
      return c < 0;
    case '=':
      return c === 0;
  }
}

/** True when `version` satisfies every clause (AND). Invalid strings throw InputError. */
export function satisfiesConstraint(
  version: Version | string,
  constraint: string | readonly ConstraintClause[],
): boolean {
  const parsed = typeof version === 'string' ? parseVersion(version) : version;
  const clauses = typeof constraint === 'string' ? parseConstraint(constraint) : constraint;
  return clauses.every((clause) => clauseMatches(parsed, clause));
}
