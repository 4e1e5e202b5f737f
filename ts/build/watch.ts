/**
 * How the farm watches a recipe (`recipes-and-farm.md` §8.3–8.4): `[upstream]` git, tag_pattern
 * (RE2), peios_revision, submodules and min_version, checked by the rules the manager applies. It
 * lives with the recipe so that `peipkg-build check` and the manager judge a recipe alike.
 */

import { compareVersions, versionProblem } from '../format/version.js';
import type { Recipe } from './recipe.js';
import { asTagName, compileTagPattern, type TagName, type TagPattern } from './tagPattern.js';

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

/** What one upstream tag gives a watched recipe (§8.4–8.5): the only mapping from tag to version. */
export type TagVersion =
  /** Not a safe tag name (`asTagName`): the farm never hands it to git. */
  | { kind: 'unsafe' }
  | { kind: 'no-match'; tag: TagName }
  /** `<upstream>-<peios_revision>` is not a valid version (D-18): dropped with a warning. */
  | { kind: 'invalid'; tag: TagName; upstreamVersion: string; version: string; problem: string }
  | { kind: 'below-min-version'; tag: TagName; upstreamVersion: string; version: string }
  | { kind: 'builds'; tag: TagName; upstreamVersion: string; version: string };

/** Whether upstream version `upstreamVersion` meets `min_version` (empty: no minimum); both get `-1` and go through the one comparator. */
export function meetsMinVersion(minVersion: string, upstreamVersion: string): boolean {
  if (minVersion === '') return true;
  return compareVersions(`${upstreamVersion}-1`, `${minVersion}-1`) >= 0;
}

/**
 * The package version `tag` gives `upstream`: tag_pattern's capture, then `-<peios_revision>`
 * (at least 1), then the version and `min_version` rules. `peipkg-build check --tags` and the
 * manager's planner both call this, so check shows exactly what the farm would build.
 */
export function tagVersion(upstream: Pick<WatchedUpstream, 'pattern' | 'peiosRevision' | 'minVersion'>, tag: string): TagVersion {
  const name = asTagName(tag);
  if (!name) return { kind: 'unsafe' };
  const upstreamVersion = upstream.pattern.versionOf(name);
  if (upstreamVersion === undefined) return { kind: 'no-match', tag: name };
  const version = `${upstreamVersion}-${Math.max(upstream.peiosRevision, 1)}`;
  const problem = versionProblem(version);
  if (problem) return { kind: 'invalid', tag: name, upstreamVersion, version, problem };
  if (!meetsMinVersion(upstream.minVersion, upstreamVersion)) return { kind: 'below-min-version', tag: name, upstreamVersion, version };
  return { kind: 'builds', tag: name, upstreamVersion, version };
}
