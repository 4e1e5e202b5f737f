/**
 * Browser JavaScript source for the package view of the browse page: every archived version of one
 * package with its sizes, build time and download link, and a "Files" toggle that loads the
 * version's `files.js` by inserting a relative <script> element. Data is only ever placed with
 * `textContent` and DOM nodes, never parsed as HTML. This module holds source text only; the list,
 * search, routing and helpers it calls live in `clientApp.ts`, the URL rules in `clientPaths.ts`.
 */

export const CLIENT_DETAIL_JS = String.raw`
function detailView(name) {
  var frag = doc.createDocumentFragment();
  var back = el('a', 'back', '\u2190 All packages');
  back.href = '#';
  frag.appendChild(el('p', 'nav')).appendChild(back);
  var title = el('h2', 'pkg', name);
  title.id = 'detail-title';
  title.tabIndex = -1;
  frag.appendChild(title);
  var pkg = byName.get(name);
  if (!pkg) {
    frag.appendChild(el('p', 'notice', 'This repository has no package named \u201c' + name + '\u201d.'));
    return frag;
  }
  var latest = pkg.latest;
  var desc = text(latest[ROW_DESC]);
  if (desc) frag.appendChild(el('p', 'lead', desc));
  frag.appendChild(el('p', 'muted', 'Latest version ' + text(latest[ROW_VERSION]) + ' for ' +
    text(latest[ROW_ARCH]) + '. ' + plural(pkg.rows.length, 'version', 'versions') + ' in the archive.'));
  var table = el('table', 'versions stack');
  var head = table.appendChild(el('thead')).appendChild(el('tr'));
  head.append(el('th', null, 'Version'), el('th', null, 'Architecture'), el('th', 'num', 'Download'),
    el('th', 'num', 'Installed'), el('th', null, 'Built'), el('th', null, 'Get'));
  var body = table.appendChild(el('tbody'));
  var openFirst = null;
  for (var i = 0; i < pkg.rows.length; i++) {
    var toggle = versionRow(body, pkg.rows[i], pkg.rows[i] === latest);
    if (pkg.rows[i] === latest) openFirst = toggle;
  }
  frag.appendChild(el('div', 'scroll')).appendChild(table);
  if (openFirst) openFirst();
  return frag;
}

function versionRow(body, row, isLatest) {
  var url = text(row[ROW_URL]);
  var tr = body.appendChild(el('tr'));
  var version = el('td', 'mono', text(row[ROW_VERSION]));
  if (isLatest) version.appendChild(el('span', 'badge', 'latest'));
  var get = el('td', 'get');
  var target = packageHref(url);
  if (target === null) {
    get.appendChild(el('span', 'muted', 'no download'));
  } else {
    var link = get.appendChild(el('a', null, 'Download'));
    link.href = target;
    link.title = url;
    if (isExternal(url)) {
      link.rel = 'noreferrer';
      link.textContent = 'Download from ' + hostOf(url);
    }
  }
  var button = get.appendChild(el('button', 'toggle', 'Files'));
  button.type = 'button';
  button.setAttribute('aria-expanded', 'false');
  tr.append(version, labelled(el('td', 'mono', text(row[ROW_ARCH])), 'Architecture'),
    labelled(sizeCell(number(row[ROW_SIZE])), 'Download'), labelled(sizeCell(number(row[ROW_INSTALLED])), 'Installed'),
    labelled(el('td', 'mono', text(row[ROW_BUILT])), 'Built'), get);
  var panel = null;
  function toggle() {
    if (panel) {
      panel.remove();
      panel = null;
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    var cell = el('td');
    cell.colSpan = 6;
    cell.appendChild(el('p', 'muted', 'Loading the file list\u2026'));
    var mine = panel = el('tr', 'files');
    panel.appendChild(cell);
    tr.after(panel);
    button.setAttribute('aria-expanded', 'true');
    fileList(url, function (result) {
      if (panel === mine) cell.replaceChildren(filesView(url, result, FILES_LIMIT));
    });
  }
  button.addEventListener('click', toggle);
  return toggle;
}

function hostOf(url) {
  try {
    return new URL(url).host || url;
  } catch (e) {
    return url;
  }
}

/* Called by each files.js: window.peipkgSite.files(packageUrl, {entries: [[path, size], ...]} or {error}). */
site.files = function (url, data) {
  var path = typeof url === 'string' ? filesPath(url) : null;
  if (path === null || !data) return;
  var entries = Array.isArray(data.entries) ? data.entries : null;
  fileLists.set(path, { url: url, entries: entries, error: entries ? '' : text(data.error) || 'unreadable' });
};

function fileList(url, done) {
  if (isExternal(url)) {
    done({ error: 'This version is hosted outside the repository (' + hostOf(url) +
      '), so no file list is published for it.' });
    return;
  }
  var path = filesPath(url);
  if (path === null) {
    done({ error: 'This version\u2019s URL does not point inside the repository, so it has no file list.' });
    return;
  }
  var waiter = { url: url, done: done };
  var known = fileLists.get(path);
  if (known) return finish(path, known, [waiter]);
  var waiting = pending.get(path);
  if (waiting) return void waiting.push(waiter);
  pending.set(path, [waiter]);
  loadScript(path, function () {
    var waiters = pending.get(path) || [];
    pending.delete(path);
    finish(path, fileLists.get(path), waiters);
  });
}

function finish(path, list, waiters) {
  for (var i = 0; i < waiters.length; i++) {
    var w = waiters[i];
    if (!list) w.done({ error: 'No file list was found for this version (' + path + ' is missing).' });
    else if (list.url !== w.url) w.done({ error: 'The file list in this directory belongs to ' + list.url +
      ', which shares the directory with this version, so it is not shown here.' });
    else if (list.error) w.done({ error: 'The file list of this version could not be shown: ' + list.error + '.' });
    else w.done({ path: path, entries: list.entries });
  }
}

function filesView(url, result, limit) {
  var frag = doc.createDocumentFragment();
  if (result.error) {
    frag.appendChild(el('p', 'muted', result.error));
    return frag;
  }
  var entries = result.entries;
  var total = 0;
  for (var i = 0; i < entries.length; i++) total += (Array.isArray(entries[i]) && number(entries[i][1])) || 0;
  var about = frag.appendChild(el('p', 'muted', entries.length === 0
    ? 'This version installs no regular files. '
    : plural(entries.length, 'file', 'files') + ', ' + formatSize(total) + ' in total. '));
  var json = el('a', null, 'files.json');
  json.href = relHref(result.path.replace(/js$/, 'json'));
  about.append('Their SHA-256 hashes are in ', json, '.');
  if (entries.length === 0) return frag;
  var table = el('table', 'filelist');
  var head = table.appendChild(el('thead')).appendChild(el('tr'));
  head.append(el('th', null, 'Path'), el('th', 'num', 'Size'));
  var body = table.appendChild(el('tbody'));
  var shown = Math.min(entries.length, limit);
  for (var j = 0; j < shown; j++) {
    var tr = body.appendChild(el('tr'));
    var entry = Array.isArray(entries[j]) ? entries[j] : [];
    tr.append(el('td', 'path', text(entry[0])), sizeCell(number(entry[1])));
  }
  frag.appendChild(el('div', 'scroll')).appendChild(table);
  if (shown < entries.length) {
    var more = frag.appendChild(el('button', 'toggle', 'Show all ' + plural(entries.length, 'file', 'files')));
    more.type = 'button';
    more.addEventListener('click', function () {
      var cell = more.parentNode;
      if (cell) cell.replaceChildren(filesView(url, result, Infinity));
    });
  }
  return frag;
}
`;
