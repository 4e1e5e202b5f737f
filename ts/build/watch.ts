/**
 * How the farm watches a recipe (`recipes-and-farm.md` §8.3–8.4): `[upstream]` git, tag_pattern
 * (RE2), peios_revision, submodules and min_version, checked by the rules the manager applies. It
 * lives with the recipe so that `peipkg-build check` and the manager judge a recipe alike.
 */

import { versionProblem } from '../format/version.js';
import type { Recipe } from './recipe.js';
import { compileTagPattern, type TagPattern } from './tagPattern.js';

export interface WatchedUpstream {
  git: string;
  pattern: TagPattern;
  peiosRevision: number;
  submodules: boolean;
  minVersion: string;
}

export interface WatchCheck {
  /** Present when the recipe is auto-built (both `git` and `tag_pattern` set) and its rules hold. */
  upstream: WatchedUpstream | undefined;
  /** Reasons the farm would skip the recipe (none: it would watch or ignore it). */
  problems: string[];
  warnings: string[];
}

/** The farm's rules for recipe folder `id` beyond what peipkg-build checks (`managerProblems` come from the recipe loader). */
export function checkWatch(id: string, recipe: Recipe, managerProblems: string[]): WatchCheck {
  const problems = [...managerProblems];
  const warnings: string[] = [];
  let upstream: WatchedUpstream | undefined;
  const u = recipe.upstream;
  if (u && u.git !== '' && u.tagPattern !== '') {
    if (u.git.startsWith('-')) problems.push(`[upstream].git: "${u.git}" must not start with "-"`);
    const compiled = compileTagPattern(u.tagPattern);
    if ('problem' in compiled) problems.push(`[upstream].tag_pattern: ${compiled.problem}`);
    const minProblem = u.minVersion === '' ? undefined : versionProblem(`${u.minVersion}-1`);
    if (minProblem) problems.push(`[upstream].min_version: "${u.minVersion}" is not an upstream version (${minProblem})`);
    if ('pattern' in compiled) upstream = { git: u.git, pattern: compiled.pattern, peiosRevision: u.peiosRevision, submodules: u.submodules, minVersion: u.minVersion };
  }
  const names = recipe.packages.map((p) => p.name);
  if (!names.includes(id)) warnings.push(`recipe folder "${id}" matches none of its packages (${names.join(', ')}); name it after the primary package`);
  if (upstream && upstream.pattern.unnamedGroups > 1) {
    warnings.push(`tag_pattern has ${upstream.pattern.unnamedGroups} capture groups; only group 1 becomes the version`);
  }
  return { upstream: problems.length > 0 ? undefined : upstream, problems, warnings };
}
