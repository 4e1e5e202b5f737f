/**
 * Which tags become builds (`recipes-and-farm.md` §8.4–8.5): tag_pattern → upstream version,
 * `min_version`, `<upstream>-<peios_revision>` (dropped with a warning when it is not a valid
 * version, D-18), de-duplication against the archive on every stanza (D-20), and back-off.
 *
 * A version is done when every stanza's (name, version, architecture) is published. When only some
 * are — a stanza added to the recipe later — it is built again only if it is at least the newest
 * version already published, so a new stanza is back-filled for current versions, not history.
 */

import { compareVersions } from '../format/version.js';
import type { Logger } from '../log.js';
import type { PublishedView } from './published.js';
import type { RosterRecipe } from './roster.js';
import type { TagName } from '../build/tagPattern.js';
import { meetsMinVersion as meetsMin, tagVersion } from '../build/watch.js';
import type { UpstreamTag } from './upstream.js';

export type TriggerSource = 'poll' | 'webhook';

export interface Trigger {
  recipe: RosterRecipe;
  tag: TagName;
  sha: string;
  /** The commit the tag names (what a remote worker's clone must check out). */
  commit: string;
  upstreamVersion: string;
  version: string;
  source: TriggerSource;
}

export interface Backoff {
  /** Epoch ms before which `<recipe>@<version>` must not be tried again. */
  nextRetry(recipe: string, version: string): number | undefined;
  /** Built and waiting for a damaged repository to be repaired: building it again would not help. */
  held(recipe: string, version: string): boolean;
}

export interface PollStats {
  tags_seen: number;
  matches_emitted: number;
  skipped_below_min_version: number;
  /** Versions not built now: in their failure back-off, or built and held for a damaged repository. */
  waiting: number;
}

export type Decision = 'build' | 'published' | 'backoff' | 'held';

/** Whether `version` of `recipe` still needs building. */
export function decide(recipe: RosterRecipe, version: string, published: PublishedView, backoff: Backoff, now: number): Decision {
  const done = recipe.packages.filter((p) => published.has(p.name, version, p.architecture));
  if (done.length === recipe.packages.length) return 'published';
  if (done.length > 0) {
    const newest = recipe.packages.map((p) => published.newest(p.name)).filter((v): v is string => v !== undefined);
    const top = newest.reduce<string | undefined>((a, b) => (a === undefined || compareVersions(b, a) > 0 ? b : a), undefined);
    if (top !== undefined && compareVersions(version, top) < 0) return 'published';
  }
  if (backoff.held(recipe.id, version)) return 'held';
  const retry = backoff.nextRetry(recipe.id, version);
  if (retry !== undefined && now < retry) return 'backoff';
  return 'build';
}

/** Meets the recipe's current `min_version`? (The rule `tagVersion` applies, for a trigger re-checked later.) */
export function meetsMinVersion(recipe: RosterRecipe, upstreamVersion: string): boolean {
  return meetsMin(recipe.upstream?.minVersion ?? '', upstreamVersion);
}

/** The triggers one poll of `recipe` produces, in tag-listing order. */
export function planPoll(
  recipe: RosterRecipe,
  tags: readonly UpstreamTag[],
  source: TriggerSource,
  published: PublishedView,
  backoff: Backoff,
  now: number,
  log: Logger,
): { triggers: Trigger[]; stats: PollStats } {
  const stats: PollStats = { tags_seen: tags.length, matches_emitted: 0, skipped_below_min_version: 0, waiting: 0 };
  const triggers: Trigger[] = [];
  const upstream = recipe.upstream;
  if (!upstream) return { triggers, stats };
  for (const tag of tags) {
    // The one tag → version mapping, shared with `peipkg-build check --tags`.
    const given = tagVersion(upstream, tag.name);
    if (given.kind === 'unsafe' || given.kind === 'no-match') continue;
    if (given.kind === 'invalid') {
      log.warn('trigger dropped (tag gives an invalid version)', { recipe: recipe.id, tag: tag.name, version: given.version, err: given.problem });
      continue;
    }
    if (given.kind === 'below-min-version') {
      stats.skipped_below_min_version++;
      continue;
    }
    const { upstreamVersion: captured, version } = given;
    const decision = decide(recipe, version, published, backoff, now);
    if (decision === 'published') {
      log.debug('trigger skipped (already published)', { recipe: recipe.id, version, source });
      continue;
    }
    if (decision === 'backoff' || decision === 'held') stats.waiting++;
    if (decision === 'backoff') {
      log.debug('trigger skipped (in failure backoff window)', { recipe: recipe.id, version, source });
      continue;
    }
    if (decision === 'held') {
      log.debug('trigger skipped (built; held until the repository is repaired)', { recipe: recipe.id, version, source });
      continue;
    }
    stats.matches_emitted++;
    triggers.push({ recipe, tag: tag.name, sha: tag.sha, commit: tag.commit, upstreamVersion: captured, version, source });
  }
  return { triggers, stats };
}
