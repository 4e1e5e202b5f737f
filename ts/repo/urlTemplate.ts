/**
 * Package URL templates (`repository.md` §8.5): `{name}`, `{version}`, `{arch}`, `{filename}`,
 * replaced in one left-to-right pass. Unlike the reference, a template must be repo-rooted (start
 * with `/`) or an absolute `http(s)://` URL, and may not climb with `..`: a relative URL resolves
 * against the index document (so the file is never found), and `..` escapes the state directory.
 */

import { UsageError } from '../errors.js';

export const DEFAULT_URL_TEMPLATE = '/p/{name}/{version}/{filename}';

export function urlTemplateProblem(template: string): string | undefined {
  const external = /^https?:\/\//.test(template);
  if (!external && !template.startsWith('/')) {
    return `"${template}" must start with / (a path inside the repository) or be an http(s):// URL; relative URLs resolve against index/ and are never found`;
  }
  if (template.startsWith('//')) return `"${template}" is protocol-relative; write https:// or a path starting with a single /`;
  const path = external ? new URL(template.replace(/[{}]/g, '_')).pathname : template;
  if (path.split('/').some((part) => part === '..' || part === '.')) return `"${template}" has a . or .. component`;
  return undefined;
}

export function checkUrlTemplate(template: string): string {
  const problem = urlTemplateProblem(template);
  if (problem) throw new UsageError(`--package-url-template: ${problem}`);
  return template;
}

export interface UrlFields {
  name: string;
  version: string;
  arch: string;
  filename: string;
}

export function renderUrl(template: string, fields: UrlFields): string {
  return template.replace(/\{(name|version|arch|filename)\}/g, (_, key: keyof UrlFields) => fields[key]);
}

/** The top-level names a repository writes for itself (`repository.md` §8): a package there would be overwritten or deleted. */
const RESERVED_TOP = ['repo.json', 'repo.json.sig', 'index', 'keys', 'index.html', 'assets'];
/** The files publish writes beside each package. */
const SIDECARS = ['manifest.json', 'files.json', 'files.js'];

/** Why a package may not live at `path` inside the state (its rendered URL), or undefined when it may. */
export function statePathProblem(path: string): string | undefined {
  const parts = path.split('/');
  const top = parts[0]!;
  if (RESERVED_TOP.includes(top)) return `is inside the repository's own ${parts.length > 1 ? `${top}/` : top}`;
  if (top.includes('.tmp-')) return `starts with "${top}", a name publish keeps for its temporary files`;
  const last = parts.at(-1)!;
  if (SIDECARS.includes(last)) return `is named ${last}, which publish writes beside every package`;
  return undefined;
}

export const isExternalUrl = (url: string): boolean => url.startsWith('http://') || url.startsWith('https://');

/** The path inside the state a repo-rooted URL names (one leading `/` removed), or undefined for external URLs. */
export function statePathOf(url: string): string | undefined {
  if (isExternalUrl(url)) return undefined;
  const rest = url.replace(/^\//, '');
  const parts = rest.split('/').filter((p) => p !== '');
  if (parts.length === 0 || parts.some((p) => p === '..' || p === '.')) return undefined;
  return parts.join('/');
}
