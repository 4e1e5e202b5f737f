/**
 * The static browse site that `peipkg-repo publish` writes into a state (DECISIONS.md: ours to
 * design, unsigned, outside byte compatibility): `index.html` at the state root, its stylesheet and
 * script under `assets/`, the package rows as `assets/packages.js` (written by the native index
 * store, which holds the entries), and one `files.js` beside each
 * repo-rooted package's sidecars. Data travels as scripts that call `window.peipkgSite.packages(...)`
 * and `window.peipkgSite.files(...)`, because a page opened from file:// cannot fetch JSON; every
 * path is relative, so the site works from any base path; nothing external is loaded.
 *
 * This module only produces file contents and paths. It does not write files, read packages or
 * indexes, or decide when the site is written; publish does.
 */

import { createHash } from 'node:crypto';

import { APP_JS } from './clientApp.js';
import { scriptValue } from './escape.js';
import { renderPage } from './page.js';
import { STYLE_CSS } from './style.js';

export interface SiteInput {
  repo: { name: string; description: string };
  indexVersion: number;
  generatedAt: string;
}

export const SITE_STYLE = 'assets/style.css';
export const SITE_SCRIPT = 'assets/app.js';
export const SITE_PACKAGES = 'assets/packages.js';

/**
 * The site's page, stylesheet and script, paths relative to the state root. Deterministic: same
 * input → same bytes. The rows (`assets/packages.js`) come from the native index store, which
 * holds the entries (`IndexStore.writeSiteScript`).
 */
export function siteFiles(input: SiteInput): Array<{ path: string; content: string }> {
  const index = renderPage({
    repo: input.repo,
    indexVersion: input.indexVersion,
    generatedAt: input.generatedAt,
    styleHref: `${SITE_STYLE}?v=${shortHash(STYLE_CSS)}`,
    scriptHref: `${SITE_SCRIPT}?v=${shortHash(APP_JS)}`,
  });
  return [
    { path: 'index.html', content: index },
    { path: SITE_STYLE, content: STYLE_CSS },
    { path: SITE_SCRIPT, content: APP_JS },
  ];
}

/**
 * The content of the files.js written beside a package's sidecars, from the package's files.json
 * bytes. `packageUrl` is the entry's url, so the page can tell when the list in a shared directory
 * belongs to another package. Only paths and sizes are kept; the page links to files.json for
 * hashes. files.json comes from the package's author and publish does not validate it, so a
 * malformed one does not throw: the script then carries a message the page shows instead.
 */
export function filesScript(packageUrl: string, filesJson: string): string {
  const entries = parseFileEntries(filesJson);
  const data = entries === undefined ? { error: 'files.json beside this package is malformed' } : { entries };
  return (
    '/* peipkg browse data: the files of one package, from its files.json. Unsigned. */\n' +
    `if (window.peipkgSite) window.peipkgSite.files(${scriptValue(packageUrl)},${scriptValue(data)});\n`
  );
}

/**
 * Where files.js goes for a repo-rooted url (`/p/a/1.0-1/a_1.0-1_noarch.peipkg` → `p/a/1.0-1/files.js`);
 * undefined for external urls (`http://`, `https://`) and for urls that name no file inside the
 * state. The path is cleaned the way publish places packages (one leading `/` removed, empty and `.`
 * segments dropped, `..` resolved), and matches `filesPath` in the page (`clientPaths.ts`).
 */
export function filesScriptPath(packageUrl: string): string | undefined {
  if (packageUrl.startsWith('http://') || packageUrl.startsWith('https://')) return undefined;
  const segments: string[] = [];
  for (const segment of (packageUrl.startsWith('/') ? packageUrl.slice(1) : packageUrl).split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) return undefined;
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  if (segments.length === 0) return undefined;
  segments[segments.length - 1] = 'files.js';
  return segments.join('/');
}

const shortHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

function parseFileEntries(filesJson: string): Array<[string, number]> | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(filesJson);
  } catch {
    return undefined;
  }
  const entries = typeof doc === 'object' && doc !== null && 'entries' in doc ? doc.entries : undefined;
  if (!Array.isArray(entries)) return undefined;
  const out: Array<[string, number]> = [];
  for (const entry of entries as unknown[]) {
    if (typeof entry !== 'object' || entry === null || !('path' in entry) || !('size' in entry)) return undefined;
    const { path, size } = entry;
    if (typeof path !== 'string' || typeof size !== 'number') return undefined;
    out.push([path, size]);
  }
  return out;
}
