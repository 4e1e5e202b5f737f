/**
 * The browse page's rules for turning an index entry's `url` into links relative to the page, as
 * browser JavaScript source. They mirror `filesScriptPath` in `site.ts` (the tests run both over the
 * same URLs), so the page looks for `files.js` exactly where publish writes it. This module holds
 * source text only; it does not run in Node and does not build the page.
 */

/**
 * Defines `isExternal(url)`, `localPath(url)` (the cleaned path below the state root, or null),
 * `filesPath(url)` (where its `files.js` is, or null), `relHref(path)` (a `./`-relative href with
 * each segment percent-encoded, so `:`, `#`, `?` and `%` in versions stay literal) and
 * `packageHref(url)`. ES5 function declarations, so the tests can evaluate this text on its own.
 */
export const CLIENT_PATHS_JS = String.raw`
function isExternal(url) {
  return /^https?:\/\//.test(url);
}
function localPath(url) {
  if (isExternal(url)) return null;
  var parts = (url.charAt(0) === '/' ? url.slice(1) : url).split('/');
  var out = [];
  for (var i = 0; i < parts.length; i++) {
    var seg = parts[i];
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return out.length > 0 ? out.join('/') : null;
}
function filesPath(url) {
  var path = localPath(url);
  if (path === null) return null;
  var slash = path.lastIndexOf('/');
  return (slash === -1 ? '' : path.slice(0, slash + 1)) + 'files.js';
}
function relHref(path) {
  return './' + path.split('/').map(encodeURIComponent).join('/');
}
function packageHref(url) {
  if (isExternal(url)) return url;
  var path = localPath(url);
  return path === null ? null : relHref(path);
}
`;
