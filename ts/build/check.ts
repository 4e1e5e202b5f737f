/**
 * `peipkg-build check`: validates a recipe completely without building, for recipe authors and for
 * CI on a recipes repository — the build sections (schema, names, relations, globs), the manager's
 * sections (tag_pattern compiled with the same RE2 engine, min_version, poll interval), the tags
 * given with `--tags` and the versions they would produce, and, with `--staged`, how a staged tree
 * partitions (orphans, overlaps, layout, and globs that match nothing, which are errors here).
 */

import { statSync } from 'node:fs';
import { basename } from 'node:path';

import { InputError } from '../errors.js';

import { compareVersions, versionProblem } from '../format/version.js';
import { asTagName } from './tagPattern.js';
import { loadRecipe, RecipeError, type Recipe } from './recipe.js';
import { partition, PartitionError, payloadProblems } from './partition.js';
import { walkStaged } from './stage.js';
import { checkWatch, type WatchCheck } from './watch.js';

export interface CheckRequest {
  recipePath: string;
  tags: string[];
  stagedDir: string | undefined;
}

export interface CheckReport {
  recipe: string;
  problems: string[];
  warnings: string[];
  /** What the recipe builds and what each tag gives, for people. */
  summary: string[];
  tags: Array<{ tag: string; version?: string; result: string }>;
}

function tagResults(tags: string[], report: CheckReport, watch: WatchCheck): void {
  if (tags.length === 0) return;
  const upstream = watch.upstream;
  if (!upstream) {
    if (watch.problems.length > 0) return; // the pattern itself is broken; already reported
    report.problems.push('--tags was given, but the recipe has no [upstream] git and tag_pattern to match them against');
    return;
  }
  for (const tag of tags) {
    if (!asTagName(tag)) {
      report.tags.push({ tag, result: 'refused: not a safe tag name (the farm ignores it)' });
      continue;
    }
    const captured = upstream.pattern.versionOf(tag);
    if (captured === undefined) {
      report.tags.push({ tag, result: 'no match' });
      continue;
    }
    const version = `${captured}-${Math.max(upstream.peiosRevision, 1)}`;
    const problem = versionProblem(version);
    if (problem) report.tags.push({ tag, version, result: `dropped: invalid version (${problem})` });
    else if (upstream.minVersion && compareVersions(`${captured}-1`, `${upstream.minVersion}-1`) < 0) {
      report.tags.push({ tag, version, result: `skipped: below min_version ${upstream.minVersion}` });
    } else report.tags.push({ tag, version, result: 'builds' });
  }
}

function stagedResults(recipe: Recipe, stagedDir: string, report: CheckReport): void {
  let info;
  try {
    info = statSync(stagedDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`--staged ${stagedDir}: ${code === 'ENOENT' ? 'no such directory' : (error as Error).message}`);
  }
  if (!info.isDirectory()) throw new InputError(`--staged ${stagedDir}: not a directory (give the staged tree, as build.sh left it in $DESTDIR)`);
  const staged = walkStaged(stagedDir);
  try {
    const { claims, unmatched } = partition(recipe.packages, staged);
    report.problems.push(...unmatched, ...payloadProblems(recipe.packages, claims));
    recipe.packages.forEach((p, i) => report.summary.push(`  ${p.name}: ${claims[i]!.length} staged paths claimed`));
  } catch (error) {
    if (!(error instanceof PartitionError)) throw error;
    report.problems.push(error.message);
  }
}

export async function checkRecipe(request: CheckRequest): Promise<CheckReport> {
  const report: CheckReport = { recipe: request.recipePath, problems: [], warnings: [], summary: [], tags: [] };
  let loaded;
  try {
    loaded = await loadRecipe(request.recipePath);
  } catch (error) {
    if (!(error instanceof RecipeError)) throw error;
    // Every problem at once: the manager's sections are checked even when a stanza is broken.
    report.problems.push(...error.problems, ...error.managerProblems);
    return report;
  }
  const { recipe, managerProblems } = loaded;
  const watch = checkWatch(basename(recipe.dir), recipe, managerProblems);
  report.problems.push(...watch.problems.map((p) => (p.startsWith('peipkg.toml:') ? p : `peipkg.toml: ${p}`)));
  if (watch.problems.length === 0) report.warnings.push(...watch.warnings);
  report.summary.push(`recipe ${recipe.id}: ${recipe.packages.length} package(s), build script ${basename(recipe.buildScript)}`);
  for (const p of recipe.packages) report.summary.push(`  ${p.name} (${p.architecture}): ${p.files.length} file pattern(s)`);
  if (watch.upstream) {
    const u = watch.upstream;
    report.summary.push(`upstream ${u.git}, tag_pattern ${u.pattern.source}, peios_revision ${u.peiosRevision}${u.minVersion ? `, min_version ${u.minVersion}` : ''}`);
  } else if (watch.problems.length === 0) report.summary.push('no [upstream]: built by hand only, never watched');
  tagResults(request.tags, report, watch);
  if (request.stagedDir) stagedResults(recipe, request.stagedDir, report);
  return report;
}
