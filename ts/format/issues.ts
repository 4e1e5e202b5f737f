/**
 * One way to print schema problems: `<source>: <path>: <message>`, with paths written the way a
 * person reads them in the file (`package[1].files[0]`, `[meta].homepag`), and one error map that
 * words zod's type errors as advice ("is required", "must be a string, not a number").
 */

import type { z } from 'zod';

export type IssuePath = ReadonlyArray<PropertyKey>;

export function formatIssuePath(path: IssuePath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  const type = typeof value;
  if (type === 'object') return 'a table';
  if (type === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${value}`;
  return type;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean (true or false)',
  array: 'an array',
  object: 'a table',
};

/** Error map for parsing untrusted documents: type errors say what was expected and what was found. */
export const adviceErrors: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'is required';
    return `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${describeValue(issue.input)}`;
  }
  return undefined;
};

/**
 * Every issue of a failed zod parse, each as `<source>: <path>: <message>`. Unknown keys come out
 * one per key, named by their full path. `pathText` can restyle paths (recipes write `[meta].x`).
 */
export function formatZodIssues(
  source: string,
  error: z.ZodError,
  pathText: (path: IssuePath) => string = formatIssuePath,
  unknownKeyAdvice = 'unknown key',
): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${source}: ${pathText([...issue.path, key])}: ${unknownKeyAdvice}`);
      continue;
    }
    const path = pathText(issue.path);
    lines.push(path === '' ? `${source}: ${issue.message}` : `${source}: ${path}: ${issue.message}`);
  }
  return lines;
}
