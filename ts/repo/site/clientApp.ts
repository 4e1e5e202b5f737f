/**
 * Browser JavaScript source for the browse page (`assets/app.js`): loads `assets/packages.js` by
 * inserting a relative <script> element (pages opened from file:// cannot fetch JSON), groups the
 * archive rows by package, searches names and descriptions, renders at most a few hundred rows,
 * and switches between the list and one package (`#pkg=<name>`) on hash changes. Data reaches the
 * page only through `window.peipkgSite.packages(...)` and `window.peipkgSite.files(...)`, and is
 * placed with `textContent`. It checks no signatures and makes no request outside the state. This
 * module holds source text only; `site.ts` writes it.
 */

import { CLIENT_DETAIL_JS } from './clientDetail.js';
import { CLIENT_PATHS_JS } from './clientPaths.js';

const CLIENT_LIST_JS = String.raw`
/* Where each cell is in a row: assets/packages.js names its columns, so the layout lives only
   where the rows are written (index.rs, SITE_COLUMNS). A column it lacks reads as empty. */
var ROW_NAME, ROW_VERSION, ROW_ARCH, ROW_DESC, ROW_URL, ROW_SIZE, ROW_INSTALLED, ROW_BUILT, ROW_ACTIVE;
function readColumns(columns) {
  function at(name) { return Array.isArray(columns) ? columns.indexOf(name) : -1; }
  ROW_NAME = at('name'); ROW_VERSION = at('version'); ROW_ARCH = at('architecture');
  ROW_DESC = at('description'); ROW_URL = at('url'); ROW_SIZE = at('size_compressed');
  ROW_INSTALLED = at('size_installed'); ROW_BUILT = at('build_timestamp'); ROW_ACTIVE = at('active');
}
var LIST_LIMIT = 250;
var FILES_LIMIT = 1000;
var doc = document;
var pageVersion = doc.documentElement.getAttribute('data-index-version') || '';
var overHttp = location.protocol === 'http:' || location.protocol === 'https:';
var pageTitle = doc.title;
var site = window.peipkgSite = window.peipkgSite || {};
var pkgs = null;
var byName = new Map();
var fileLists = new Map();
var pending = new Map();
var listDirty = true;
var listScroll = 0;
var view = '';
var timer = 0;

function $(id) { return doc.getElementById(id); }
function el(tag, cls, content) {
  var node = doc.createElement(tag);
  if (cls) node.className = cls;
  if (content !== undefined && content !== null) node.textContent = String(content);
  return node;
}
function text(v) { return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : ''; }
function number(v) { return typeof v === 'number' && isFinite(v) && v >= 0 ? v : null; }
function grouped(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
function plural(n, one, many) { return grouped(n) + ' ' + (n === 1 ? one : many); }
function formatSize(n) {
  if (n === null) return '';
  if (n < 1024) return n + ' B';
  var units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  var v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + ' ' + units[i];
}
function sizeCell(n) {
  var cell = el('td', 'num', formatSize(n));
  if (n !== null) cell.title = plural(n, 'byte', 'bytes');
  return cell;
}
/* The column name shown beside a cell when a narrow screen stacks the table (style.css). */
function labelled(cell, label) {
  cell.setAttribute('data-label', label);
  return cell;
}
function status(message, isError) {
  var node = $('status');
  node.textContent = message;
  node.hidden = !message;
  node.classList.toggle('error', !!isError);
}

/* Loads a script beside the page. Over HTTP the index version defeats stale caches. */
function loadScript(path, done) {
  var script = doc.createElement('script');
  script.src = relHref(path) + (overHttp && pageVersion ? '?v=' + encodeURIComponent(pageVersion) : '');
  script.onload = function () { script.remove(); done(true); };
  script.onerror = function () { script.remove(); done(false); };
  doc.head.appendChild(script);
}

/* Called by assets/packages.js with {indexVersion, generatedAt, columns, rows}; rows are in archive order. */
site.packages = function (data) {
  var rows = data && Array.isArray(data.rows) ? data.rows : [];
  readColumns(data && data.columns);
  pkgs = [];
  byName = new Map();
  for (var i = 0; i < rows.length; i++) {
    var row = rows[i];
    if (!Array.isArray(row)) continue;
    var name = text(row[ROW_NAME]);
    var pkg = byName.get(name);
    if (!pkg) {
      pkg = { name: name, rows: [], latest: null, hayName: '', hayDesc: '' };
      byName.set(name, pkg);
      pkgs.push(pkg);
    }
    pkg.rows.push(row);
    if (row[ROW_ACTIVE] === 1 && !pkg.latest) pkg.latest = row;
  }
  for (var j = 0; j < pkgs.length; j++) {
    var p = pkgs[j];
    if (!p.latest) p.latest = p.rows[0];
    p.hayName = p.name.toLowerCase();
    p.hayDesc = text(p.latest[ROW_DESC]).toLowerCase();
  }
  var listed = data ? text(data.indexVersion) : '';
  if (listed !== pageVersion) {
    $('stale').textContent = 'The package list is from index version ' + listed + ', but this page is from index version ' +
      pageVersion + '. The repository may be mid-publish, or a cache is stale; reload the page.';
    $('stale').hidden = false;
  }
  status('');
  listDirty = true;
  route();
};

function matches(query) {
  var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return pkgs;
  var whole = terms.join(' ');
  var ranked = [[], [], [], []];
  next: for (var i = 0; i < pkgs.length; i++) {
    var p = pkgs[i], inName = true;
    for (var t = 0; t < terms.length; t++) {
      if (p.hayName.indexOf(terms[t]) !== -1) continue;
      inName = false;
      if (p.hayDesc.indexOf(terms[t]) === -1) continue next;
    }
    ranked[!inName ? 3 : p.hayName === whole ? 0 : p.hayName.indexOf(terms[0]) === 0 ? 1 : 2].push(p);
  }
  return ranked[0].concat(ranked[1], ranked[2], ranked[3]);
}

function renderList() {
  listDirty = false;
  var query = $('q').value.trim();
  var found = matches(query);
  var shown = Math.min(found.length, LIST_LIMIT);
  var frag = doc.createDocumentFragment();
  for (var i = 0; i < shown; i++) frag.appendChild(listRow(found[i]));
  $('rows').replaceChildren(frag);
  $('table').hidden = shown === 0;
  var quoted = '\u201c' + query + '\u201d';
  var message;
  if (pkgs.length === 0) message = 'This repository has no packages yet.';
  else if (!query) message = plural(pkgs.length, 'package', 'packages') + '.';
  else if (found.length === 0) message = 'No package matches ' + quoted + '.';
  else message = grouped(found.length) + ' of ' + plural(pkgs.length, 'package', 'packages') + ' match ' + quoted + '.';
  if (shown < found.length) {
    message += ' Showing the first ' + grouped(shown) + (query ? '; refine the search to narrow it down.' : '; search to find the rest.');
  }
  $('count').textContent = message;
}

function listRow(pkg) {
  var row = pkg.latest;
  var tr = el('tr');
  var name = el('td', 'name');
  var link = name.appendChild(el('a', null, pkg.name));
  link.href = '#pkg=' + encodeURIComponent(pkg.name);
  tr.append(name, el('td', 'mono', text(row[ROW_VERSION])), labelled(el('td', 'mono', text(row[ROW_ARCH])), 'Architecture'),
    labelled(sizeCell(number(row[ROW_INSTALLED])), 'Installed'), el('td', 'desc', text(row[ROW_DESC])));
  return tr;
}

function route() {
  if (!pkgs) return;
  var match = /^#pkg=(.*)$/.exec(location.hash);
  if (!match) return showList();
  var name;
  try {
    name = decodeURIComponent(match[1]);
  } catch (e) {
    name = match[1];
  }
  showPackage(name);
}

function showList() {
  var from = view;
  view = 'list';
  doc.title = pageTitle;
  $('detail').hidden = true;
  $('detail').replaceChildren();
  $('list').hidden = false;
  if (listDirty) renderList();
  if (from === 'detail') window.scrollTo(0, listScroll);
}

function showPackage(name) {
  if (view === 'list') listScroll = window.scrollY;
  view = 'detail';
  doc.title = name + ' \u2013 ' + pageTitle;
  $('list').hidden = true;
  var detail = $('detail');
  detail.replaceChildren(detailView(name));
  detail.hidden = false;
  window.scrollTo(0, 0);
  var title = $('detail-title');
  if (title) title.focus({ preventScroll: true });
}

function start() {
  var search = $('q');
  search.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(renderList, pkgs && pkgs.length > 20000 ? 150 : 60);
  });
  search.addEventListener('keydown', function (event) {
    if (event.key !== 'Enter') return;
    clearTimeout(timer);
    renderList();
    var first = $('rows').querySelector('a');
    if (first) location.hash = first.getAttribute('href');
  });
  doc.addEventListener('keydown', function (event) {
    if (event.key !== '/' || view !== 'list' || event.ctrlKey || event.metaKey || event.altKey) return;
    if (doc.activeElement === search) return;
    event.preventDefault();
    search.focus();
  });
  window.addEventListener('hashchange', route);
  status('Loading the package list\u2026');
  loadScript('assets/packages.js', function (loaded) {
    if (pkgs) return;
    status(loaded
      ? 'The package list (assets/packages.js) is not in the form this page expects; reload the page.'
      : 'Could not load the package list (assets/packages.js). The repository may be mid-publish; try reloading.', true);
  });
}
`;

/** The whole of `assets/app.js`: one strict IIFE, plain ASCII, no network access but relative <script> elements. */
export const APP_JS = `/* peipkg repository browse page. It does not check signatures; the peipkg client does. */
(function () {
'use strict';
${CLIENT_PATHS_JS}${CLIENT_LIST_JS}${CLIENT_DETAIL_JS}
start();
})();
`;
