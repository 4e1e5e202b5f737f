/**
 * Listing an upstream's tags (`recipes-and-farm.md` §8.3): `git ls-remote --tags` through
 * simple-git (argv, never a shell), bounded by a timeout, with git never prompting for
 * credentials. Output lines are parsed with a named-group pattern; peeled `^{}` entries are dropped
 * and so are malformed lines and tag names that are not safe `TagName`s.
 */

import { simpleGit } from 'simple-git';

import { asTagName, type TagName } from './tagPattern.js';

export interface UpstreamTag {
  name: TagName;
  /** The object the tag ref points at (an annotated tag object or a commit). */
  sha: string;
}

export interface ListedTags {
  tags: UpstreamTag[];
  /** Tag names refused as unsafe, for the log. */
  refused: string[];
}

const LINE = /^(?<sha>[0-9a-f]{40}|[0-9a-f]{64})\t(?<ref>refs\/tags\/(?<name>.+))$/;

export function parseLsRemote(output: string): ListedTags {
  const listed: ListedTags = { tags: [], refused: [] };
  for (const line of output.split('\n')) {
    const m = LINE.exec(line);
    if (!m?.groups) continue;
    const raw = m.groups.name!;
    if (raw.endsWith('^{}')) continue;
    const name = asTagName(raw);
    if (name) listed.tags.push({ name, sha: m.groups.sha! });
    else listed.refused.push(raw);
  }
  return listed;
}

/** git must fail instead of waiting for a password nobody will type. */
export const GIT_ENV = { GIT_TERMINAL_PROMPT: '0' };

/** `git ls-remote --tags <url>`; throws with git's message when it fails or times out. */
export async function listTags(url: string, timeoutMs: number): Promise<ListedTags> {
  const git = simpleGit({ timeout: { block: timeoutMs } }).env({ ...process.env, ...GIT_ENV });
  const output = await git.listRemote(['--tags', url]);
  return parseLsRemote(output);
}
