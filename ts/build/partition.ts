/**
 * Splits the staged tree across a recipe's stanzas (`recipes-and-farm.md` §4.4, §4.5) and checks
 * what each stanza claims (§4.7). Files and symlinks are leaves; a directory is a leaf only when
 * some stanza has a directory pattern for it, and then every stanza's patterns are tried on it.
 */

import { InputError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';
import { layoutProblem, payloadPathProblem, symlinkLayoutProblem } from '../format/paths.js';
import type { Stanza } from './recipe.js';
import type { StagedEntry } from './stage.js';

export class PartitionError extends InputError {}

export interface Partition {
  /** Claimed leaves per stanza, in recipe order, each list in walk order. */
  claims: StagedEntry[][];
  /** Patterns that claimed nothing, as `package <name>: files[<i>] "<pattern>"`. */
  unmatched: string[];
}

export function partition(stanzas: readonly Stanza[], staged: readonly StagedEntry[]): Partition {
  const claims: StagedEntry[][] = stanzas.map(() => []);
  const used = stanzas.map((s) => s.files.map(() => false));
  const orphans: string[] = [];
  for (const entry of staged) {
    const isDirectory = entry.kind === 'directory';
    // A directory becomes a leaf only if some directory pattern matches it.
    if (isDirectory && !stanzas.some((s) => s.files.some((g) => g.directoryOnly && g.matches(entry.path)))) continue;
    const owners: number[] = [];
    stanzas.forEach((stanza, i) => {
      let claimed = false;
      stanza.files.forEach((glob, j) => {
        if (glob.directoryOnly && !isDirectory) return;
        if (glob.matches(entry.path)) {
          used[i]![j] = true;
          claimed = true;
        }
      });
      if (claimed) owners.push(i);
    });
    if (owners.length === 0) orphans.push(entry.path);
    else if (owners.length > 1) {
      const names = owners.map((i) => stanzas[i]!.name).join(' ');
      throw new PartitionError(`path "${entry.path}" matches multiple packages [${names}]; package file globs must be disjoint`);
    } else claims[owners[0]!]!.push(entry);
  }
  if (orphans.length > 0) {
    throw new PartitionError(`staged paths claimed by no package:\n${orphans.sort(compareUtf8).map((p) => `  ${p}`).join('\n')}`);
  }
  const unmatched: string[] = [];
  stanzas.forEach((stanza, i) =>
    stanza.files.forEach((glob, j) => {
      if (!used[i]![j]) unmatched.push(`package ${stanza.name}: files[${j}] "${glob.pattern}" matches nothing`);
    }),
  );
  return { claims, unmatched };
}

/** §4.7 (and §5.1 for every path): all problems of all stanzas, stanzas in order, paths sorted. */
export function payloadProblems(stanzas: readonly Stanza[], claims: readonly StagedEntry[][]): string[] {
  const problems: string[] = [];
  stanzas.forEach((stanza, i) => {
    const sorted = [...claims[i]!].sort((a, b) => compareUtf8(a.path, b.path));
    for (const entry of sorted) {
      const invalid = payloadPathProblem(entry.path);
      if (invalid) {
        problems.push(`package ${stanza.name}: ${entry.path}: ${invalid} (PSD-009 §3.2.6)`);
        continue;
      }
      const layout = layoutProblem(entry.path, entry.kind, stanza.architecture);
      if (layout) problems.push(`package ${stanza.name}${layout}`);
      if (entry.kind === 'symlink') {
        const target = symlinkLayoutProblem(entry.path, entry.target);
        if (target) problems.push(`package ${stanza.name}${target}`);
      }
    }
  });
  return problems;
}
