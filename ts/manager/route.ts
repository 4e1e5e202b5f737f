/**
 * Which worker may take a job. A recipe's route is what a worker must have: every non-`noarch`
 * architecture of its stanzas, and every binary-signing key its `[[grant]]` lets it sign with.
 * Each route is a BullMQ queue of its own; a worker takes jobs only from the routes it satisfies,
 * so routing costs nothing per job and no job is ever offered to a worker that cannot build it.
 */

import type { BUILD_ARCHITECTURES } from '../format/names.js';
import type { RosterRecipe } from './roster.js';

export interface Route {
  /** Sorted, without `noarch`; empty for a noarch-only recipe (any worker). */
  architectures: string[];
  /** Sorted binary-signing key names. */
  keys: string[];
}

/** What a worker offers. */
export interface Capabilities {
  architectures: readonly string[];
  keys: readonly string[];
}

export function routeOf(recipe: RosterRecipe, signKeys: readonly string[]): Route {
  const architectures = [...new Set(recipe.packages.map((p) => p.architecture).filter((a) => a !== 'noarch'))].sort();
  return { architectures, keys: [...new Set(signKeys)].sort() };
}

/** The route's BullMQ queue name: `build.any`, `build.aarch64`, `build.aarch64+x86_64.keys.kernel`. (BullMQ names may not hold `:`.) */
export function queueName(route: Route): string {
  const archs = route.architectures.length === 0 ? 'any' : route.architectures.join('+');
  return route.keys.length === 0 ? `build.${archs}` : `build.${archs}.keys.${route.keys.map(encodeURIComponent).join('+')}`;
}

export function canTake(worker: Capabilities, route: Route): boolean {
  return route.architectures.every((a) => worker.architectures.includes(a)) && route.keys.every((k) => worker.keys.includes(k));
}

/** Why no worker among `workers` can take a job on `route` (`no worker for aarch64`), or undefined when one can. */
export function whyWaiting(route: Route, workers: readonly Capabilities[]): string | undefined {
  if (workers.some((w) => canTake(w, route))) return undefined;
  if (route.architectures.length === 0 && route.keys.length === 0) return 'no worker connected';
  const archs = route.architectures.filter((a) => !workers.some((w) => w.architectures.includes(a)));
  const keys = route.keys.filter((k) => !workers.some((w) => w.keys.includes(k)));
  const parts: string[] = [];
  if (archs.length > 0) parts.push(`for ${archs.join(' and ')}`);
  if (keys.length > 0) parts.push(`holding ${keys.map((k) => `key ${k}`).join(' and ')}`);
  // Each need is met by some worker, but none meets them all.
  if (parts.length === 0) parts.push(`for ${route.architectures.join(' and ') || 'noarch'}${route.keys.length > 0 ? ` holding ${route.keys.join(' and ')}` : ''} at once`);
  return `no worker ${parts.join(' ')}`;
}

/** The labels a job is counted under in `/status` (`noarch` for a noarch-only recipe). */
export const architectureLabels = (route: Route): string[] => (route.architectures.length === 0 ? ['noarch'] : route.architectures);

/** This host's build architecture, as the format names it. */
export function hostArchitecture(): (typeof BUILD_ARCHITECTURES)[number] | undefined {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined;
}
