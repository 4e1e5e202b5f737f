/**
 * Listing an upstream's tags (`recipes-and-farm.md` §8.3): `git ls-remote --tags` run like every
 * other step (argv, never a shell, its own process group, bounded by a timeout), with the
 * operator's environment as the clone gets it, and git never prompting for credentials. (Not
 * through simple-git: it refuses to run at all when the environment holds EDITOR, PAGER,
 * GIT_SSH_COMMAND and the like, so every poll failed on an ordinary login shell.) Output lines
 * are parsed with a named-group pattern; a peeled `^{}` entry gives its annotated tag's commit;
 * malformed lines and tag names that are not safe `TagName`s are dropped.
 */

import { runStep } from './subprocess.js';
import { asTagName, type TagName } from '../build/tagPattern.js';

export interface UpstreamTag {
  name: TagName;
  /** The object the tag ref points at (an annotated tag object or a commit). */
  sha: string;
  /** The commit the tag names: the peeled `^{}` entry of an annotated tag, else `sha`. */
  commit: string;
}

export interface ListedTags {
  tags: UpstreamTag[];
  /** Tag names refused as unsafe, for the log. */
  refused: string[];
}

const LINE = /^(?<sha>[0-9a-f]{40}|[0-9a-f]{64})\t(?<ref>refs\/tags\/(?<name>.+))$/;

export function parseLsRemote(output: string): ListedTags {
  const listed: ListedTags = { tags: [], refused: [] };
  const peeled = new Map<string, string>();
  for (const line of output.split('\n')) {
    const m = LINE.exec(line);
    if (!m?.groups) continue;
    const raw = m.groups.name!;
    if (raw.endsWith('^{}')) {
      peeled.set(raw.slice(0, -3), m.groups.sha!);
      continue;
    }
    const name = asTagName(raw);
    if (name) listed.tags.push({ name, sha: m.groups.sha!, commit: m.groups.sha! });
    else listed.refused.push(raw);
  }
  for (const tag of listed.tags) tag.commit = peeled.get(tag.name) ?? tag.sha;
  return listed;
}

/** git must fail instead of waiting for a password nobody will type. */
export const GIT_ENV = { GIT_TERMINAL_PROMPT: '0' };

/** `git ls-remote --tags <url>`; throws with git's message when it fails or times out. */
export async function listTags(url: string, timeoutMs: number): Promise<ListedTags> {
  const output = await runStep('git ls-remote', 'git', ['ls-remote', '--tags', '--', url], { timeoutMs, captureStdout: true, env: GIT_ENV });
  return parseLsRemote(output);
}
