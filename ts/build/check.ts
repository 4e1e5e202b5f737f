/**
 * `peipkg-build check`: validates a recipe completely without building, for recipe authors and for
 * CI on a recipes repository — the build sections (schema, and every manifest field by the
 * manifest's own rules, so `build` cannot refuse one after build.sh has run), the manager's sections
 * (tag_pattern compiled with the same RE2 engine, min_version, poll interval, whether a GitHub
 * webhook wakes the recipe), the tags given with `--tags` and the versions the planner would give
 * them (`tagVersion`, the planner's own function), and, with `--staged`, how a staged tree
 * partitions (orphans, overlaps, layout, and globs that match nothing, which are errors here).
 */

import { statSync } from 'node:fs';
import { basename } from 'node:path';

import { InputError } from '../errors.js';
import { descriptionWarnings } from '../format/manifest.js';
import { loadRecipe, RecipeError, type Recipe } from './recipe.js';
import { partition, PartitionError, payloadProblems } from './partition.js';
import { walkStaged } from './stage.js';
import { checkWatch, tagVersion, type TagVersion, type WatchCheck } from './watch.js';

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
  /**
   * Whether a GitHub webhook wakes this recipe (`[watch] github_webhook`, opt-in per recipe): shown
   * when the recipe has a `[watch]` table or is auto-built. `active` is false when it is enabled
   * but the recipe has no `[upstream]` git and tag_pattern, so no push can name it.
   */
  webhook?: { enabled: boolean; active: boolean; line: string };
}

/** How `check --tags` words what the planner's own mapping (`tagVersion`) gives a tag. */
export function tagResult(tag: string, given: TagVersion, minVersion: string): CheckReport['tags'][number] {
  switch (given.kind) {
    case 'unsafe':
      return { tag, result: 'refused: not a safe tag name (the farm ignores it)' };
    case 'no-match':
      return { tag, result: 'no match' };
    case 'invalid':
      return { tag, version: given.version, result: `dropped: invalid version (${given.problem})` };
    case 'below-min-version':
      return { tag, version: given.version, result: `skipped: below min_version ${minVersion}` };
    case 'builds':
      return { tag, version: given.version, result: 'builds' };
  }
}

/** The `webhook:` line (and JSON member) for a recipe with `[watch]` or an auto-built `[upstream]`. */
function webhookResult(recipe: Recipe, watch: WatchCheck, report: CheckReport): void {
  if (!recipe.watch && !watch.upstream) return;
  const enabled = recipe.watch?.githubWebhook ?? false;
  const active = enabled && watch.upstream !== undefined;
  let line: string;
  if (active) line = `webhook: enabled (github_webhook = true): a signed tag push to ${watch.upstream!.git} polls this recipe at once`;
  else if (enabled) {
    line = 'webhook: enabled (github_webhook = true), but no push can trigger it: the recipe has no [upstream] git and tag_pattern';
    report.warnings.push('[watch].github_webhook = true does nothing without [upstream] git and tag_pattern');
  } else line = `webhook: off (set [watch] github_webhook = true to build on pushes${watch.upstream ? '; until then tags are found by polling' : ''})`;
  report.webhook = { enabled, active, line };
  report.summary.push(line);
}

function tagResults(tags: string[], report: CheckReport, watch: WatchCheck): void {
  if (tags.length === 0) return;
  const upstream = watch.upstream;
  if (!upstream) {
    if (watch.problems.length > 0) return; // the pattern itself is broken; already reported
    report.problems.push('--tags was given, but the recipe has no [upstream] git and tag_pattern to match them against');
    return;
  }
  for (const tag of tags) report.tags.push(tagResult(tag, tagVersion(upstream, tag), upstream.minVersion));
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
  for (const p of recipe.packages) {
    report.summary.push(`  ${p.name} (${p.architecture}): ${p.files.length} file pattern(s)`);
    report.warnings.push(...descriptionWarnings(p.name, p.description));
  }
  if (watch.upstream) {
    const u = watch.upstream;
    report.summary.push(`upstream ${u.git}, tag_pattern ${u.pattern.source}, peios_revision ${u.peiosRevision}${u.minVersion ? `, min_version ${u.minVersion}` : ''}`);
  } else if (watch.problems.length === 0) report.summary.push('no [upstream]: built by hand only, never watched');
  if (watch.problems.length === 0) webhookResult(recipe, watch, report);
  tagResults(request.tags, report, watch);
  if (request.stagedDir) stagedResults(recipe, request.stagedDir, report);
  return report;
}
