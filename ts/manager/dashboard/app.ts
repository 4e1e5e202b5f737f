/**
 * The dashboard's script (`/dashboard/app.js`), plain browser JavaScript. It renders with DOM
 * calls and `textContent` only (recipe names, errors and build output are never parsed as HTML),
 * fetches relative URLs (so the page works behind a reverse proxy under any path), refreshes from
 * `/status` every two seconds, and opens one EventSource per running build for its log.
 */

export const DASHBOARD_JS = `'use strict';
(function () {
  var TOKEN_KEY = 'peipkg-farm-token';
  var MAX_LOG_LINES = 2000;
  var KEEP_FINISHED_MS = 5 * 60 * 1000;
  /** Live log panels by build id: { box, pre, source, ended, endedAt }. */
  var panels = new Map();
  var lastHistory = [];
  var openLogs = new Set();

  function $(id) { return document.getElementById(id); }
  function el(tag, props, children) {
    var node = document.createElement(tag);
    if (props) for (var k in props) {
      if (k === 'text') node.textContent = props[k];
      else if (k === 'className') node.className = props[k];
      else if (k === 'dataset') for (var d in props[k]) node.dataset[d] = props[k][d];
      else node.setAttribute(k, props[k]);
    }
    (children || []).forEach(function (c) { if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function td(content, className) {
    var cell = el('td', className ? { className: className } : null);
    if (content instanceof Node) cell.appendChild(content); else cell.textContent = content == null ? '' : String(content);
    return cell;
  }
  function replaceRows(table, rows) {
    var body = table.tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function badge(state) { return el('span', { className: 'badge state-' + state, text: state }); }
  function when(iso) {
    if (!iso) return '';
    var t = Date.parse(iso);
    if (isNaN(t)) return iso;
    var s = Math.round((t - Date.now()) / 1000);
    var a = Math.abs(s);
    var text = a < 60 ? a + 's' : a < 3600 ? Math.round(a / 60) + 'm' : a < 86400 ? Math.round(a / 3600) + 'h' : Math.round(a / 86400) + 'd';
    return s <= 0 ? text + ' ago' : 'in ' + text;
  }
  function duration(seconds) {
    if (seconds == null) return '';
    var s = Math.round(seconds);
    return s < 60 ? s + 's' : Math.floor(s / 60) + 'm' + (s % 60 < 10 ? '0' : '') + (s % 60) + 's';
  }
  function timeCell(iso) {
    var cell = td(when(iso));
    if (iso) cell.title = iso;
    return cell;
  }
  function say(text, isError) {
    var m = $('message');
    m.textContent = text || '';
    m.className = isError ? 'error' : '';
  }
  function getJson(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
      return r.json();
    });
  }

  // ---- operator actions ----
  function token() { try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }
  $('token').value = token();
  $('token-form').addEventListener('submit', function (event) {
    event.preventDefault();
    try { localStorage.setItem(TOKEN_KEY, $('token').value.trim()); } catch (e) { /* private mode: kept for this page only */ }
    say('Operator token saved in this browser.');
  });
  function retry(recipe, version, button) {
    var t = token() || $('token').value.trim();
    if (!t) { say('Retrying needs the operator token: paste the contents of state_dir/control.token above.', true); return; }
    if (button) button.disabled = true;
    say('Asking the farm to build ' + recipe + (version ? ' ' + version : '') + ' now…');
    fetch('api/retry', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + t }, body: JSON.stringify(version ? { recipe: recipe, version: version } : { recipe: recipe }) })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { say('Retry refused: ' + (res.body && res.body.error ? res.body.error : 'HTTP error'), true); return; }
        var b = res.body;
        var started = b.running.concat(b.queued);
        say(started.length > 0 ? recipe + ': building ' + started.join(', ') : recipe + ': ' + (b.reason || 'nothing to build'));
        refresh();
      })
      .catch(function (e) { say('Retry failed: ' + e.message, true); })
      .then(function () { if (button) button.disabled = false; });
  }

  // ---- live logs ----
  function panelFor(job) {
    var id = job.build;
    var panel = panels.get(id);
    if (panel) return panel;
    var pre = el('pre', { className: 'log', 'aria-live': 'polite' });
    var state = el('span', { className: 'badge state-running', text: 'running' });
    var box = el('div', { className: 'build', dataset: { build: id } }, [
      el('div', { className: 'head' }, [el('strong', { text: job.recipe + ' ' + job.version }), state, el('span', { className: 'muted', text: job.worker ? 'on ' + job.worker : '' }), el('a', { href: 'builds/' + encodeURIComponent(id) + '/log', text: 'full log' })]),
      pre,
    ]);
    var source = new EventSource('builds/' + encodeURIComponent(id) + '/log/stream');
    panel = { box: box, pre: pre, state: state, source: source, ended: false, endedAt: 0 };
    source.addEventListener('line', function (event) { append(panel, event.data); });
    source.addEventListener('skipped', function (event) { append(panel, '[' + event.data + ']'); });
    source.addEventListener('end', function (event) {
      panel.ended = true;
      panel.endedAt = Date.now();
      panel.state.textContent = event.data;
      panel.state.className = 'badge state-' + event.data;
      source.close();
    });
    panels.set(id, panel);
    return panel;
  }
  function append(panel, line) {
    var pre = panel.pre;
    var follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(line + '\\n'));
    while (pre.childNodes.length > MAX_LOG_LINES) pre.removeChild(pre.firstChild);
    if (follow) pre.scrollTop = pre.scrollHeight;
  }
  function renderRunning(running) {
    var box = $('running');
    var shown = running.filter(function (j) { return j.build; });
    shown.forEach(function (j) { panelFor(j); });
    var live = new Set(shown.map(function (j) { return j.build; }));
    panels.forEach(function (panel, id) {
      if (!live.has(id) && panel.ended && Date.now() - panel.endedAt > KEEP_FINISHED_MS) { panels.delete(id); }
    });
    // Rebuilt only when the set of panels changes: moving a panel would lose its scroll position.
    var wanted = Array.from(panels.keys()).reverse().map(function (id) { return panels.get(id).box; });
    var current = Array.from(box.children);
    var same = wanted.length === current.length && wanted.every(function (node, i) { return node === current[i]; });
    if (!same) {
      while (box.firstChild) box.removeChild(box.firstChild);
      if (wanted.length === 0) box.appendChild(el('p', { className: 'empty', text: 'No build is running.' }));
      wanted.forEach(function (node) { box.appendChild(node); });
    }
    $('running-count').textContent = running.length ? '(' + running.length + ')' : '';
  }

  // ---- tables ----
  function renderRecipes(doc) {
    var rows = (doc.recipe_status || []).map(function (r) {
      var last = r.last_result;
      var result = last ? el('span', null, [badge(last.state), ' ', el('a', { href: 'builds/' + encodeURIComponent(last.build) + '/log', text: last.version })]) : el('span', { className: 'muted', text: 'never built' });
      var poll = r.last_poll ? el('span', { className: r.last_poll.ok ? 'poll-ok' : 'poll-failed', text: when(r.last_poll.at) + (r.last_poll.ok ? '' : ' (failed)'), title: r.last_poll.at }) : el('span', { className: 'muted', text: r.polling ? 'polling…' : r.watched ? 'not yet' : 'not watched' });
      var button = null;
      if (r.watched) {
        button = el('button', { type: 'button', text: 'Build now', dataset: { recipe: r.recipe } });
        button.addEventListener('click', function () { retry(r.recipe, null, button); });
      }
      return el('tr', { dataset: { recipe: r.recipe } }, [td(r.recipe), td(result), td(poll), timeCell(r.next_retry && (!r.next_poll || r.next_retry < r.next_poll) ? r.next_retry : r.next_poll), td(r.watched ? (r.github_webhook ? 'on' : 'off') : ''), td(button)]);
    });
    replaceRows($('recipes'), rows);
    var skipped = $('skipped');
    while (skipped.firstChild) skipped.removeChild(skipped.firstChild);
    (doc.skipped_recipes || []).forEach(function (s) {
      skipped.appendChild(el('p', { className: 'error-text', text: 'Skipped ' + s.recipe + ': ' + s.problems.join('; ') }));
    });
    var select = $('filter-recipe');
    var chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    (doc.recipes || []).forEach(function (id) { select.appendChild(el('option', { value: id, text: id })); });
    select.value = chosen;
  }
  function renderQueue(queue) {
    replaceRows($('queue'), queue.map(function (q) { return el('tr', null, [td(q.recipe), td(q.version), td(q.tag), td(q.waiting || '', 'wrap')]); }));
    $('queue-count').textContent = queue.length ? '(' + queue.length + ')' : '';
  }
  function renderWorkers(doc) {
    var workers = doc.workers || [];
    var show = doc.queue_backend === 'redis' || workers.some(function (w) { return w.id !== 'local'; });
    $('workers-section').hidden = !show;
    if (!show) return;
    replaceRows($('workers'), workers.map(function (w) {
      var job = w.current_job ? w.current_job.recipe + ' ' + w.current_job.version : '';
      return el('tr', null, [td(w.id), td(w.host), td((w.architectures || []).join(', ')), td((w.keys || []).join(', ')), td(badge(w.state)), td(job), timeCell(w.last_seen)]);
    }));
  }
  function renderHistory() {
    var recipe = $('filter-recipe').value;
    var state = $('filter-state').value;
    var text = $('filter-text').value.trim().toLowerCase();
    var rows = [];
    lastHistory.forEach(function (b) {
      if (recipe && b.recipe !== recipe) return;
      if (state && b.state !== state) return;
      if (text && [b.id, b.version, b.tag, b.error || '', b.worker || ''].join(' ').toLowerCase().indexOf(text) === -1) return;
      var showLog = el('button', { type: 'button', text: openLogs.has(b.id) ? 'Hide log' : 'Show log' });
      var actions = el('span');
      if (b.state === 'failed' || b.state === 'interrupted') {
        var again = el('button', { type: 'button', text: 'Retry', dataset: { retry: b.id } });
        again.addEventListener('click', function () { retry(b.recipe, b.version, again); });
        actions.appendChild(again);
      }
      var row = el('tr', { dataset: { build: b.id, state: b.state } }, [
        td(b.recipe + ' ' + b.version), td(badge(b.state)), td(b.worker || ''), timeCell(b.started_at || b.queued_at), td(duration(b.duration_s)), td(el('a', { href: b.log_url.replace(/^\\//, ''), text: 'log' })), td(actions),
      ]);
      row.cells[5].appendChild(document.createTextNode(' '));
      row.cells[5].appendChild(showLog);
      rows.push(row);
      if (b.error) rows.push(el('tr', { className: 'error-row' }, [el('td', { className: 'error-text', colspan: '7', text: (b.stage ? b.stage + ': ' : '') + b.error })]));
      var logRow = el('tr', { className: 'log-row', dataset: { logFor: b.id } }, [el('td', { colspan: '7' })]);
      if (openLogs.has(b.id)) { rows.push(logRow); loadLog(b, logRow.cells[0]); }
      showLog.addEventListener('click', function () {
        if (openLogs.has(b.id)) openLogs.delete(b.id); else openLogs.add(b.id);
        renderHistory();
      });
    });
    replaceRows($('history'), rows);
  }
  var logCache = new Map();
  function loadLog(b, cell) {
    var pre = el('pre', { className: 'log', text: 'loading…' });
    cell.appendChild(pre);
    var cached = logCache.get(b.id);
    if (cached && cached.state === b.state) { pre.textContent = cached.text; return; }
    fetch(b.log_url.replace(/^\\//, ''), { cache: 'no-store' }).then(function (r) { return r.text(); }).then(function (text) {
      var shown = text.length > 200000 ? '[… ' + (text.length - 200000) + ' earlier characters; open the full log]\\n' + text.slice(-200000) : text;
      logCache.set(b.id, { state: b.state, text: shown });
      pre.textContent = shown;
      pre.scrollTop = pre.scrollHeight;
    }).catch(function (e) { pre.textContent = 'could not load the log: ' + e.message; });
  }
  ['filter-recipe', 'filter-state'].forEach(function (id) { $(id).addEventListener('change', renderHistory); });
  $('filter-text').addEventListener('input', renderHistory);
  $('filters').addEventListener('submit', function (event) { event.preventDefault(); });

  // ---- refresh ----
  var refreshing = false;
  function refresh() {
    if (refreshing) return;
    refreshing = true;
    Promise.all([
      getJson('status'),
      getJson('builds?limit=500'),
      fetch('healthz', { cache: 'no-store' }).then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t.trim() }; }); }),
    ]).then(function (all) {
      var doc = all[0];
      $('farm-id').textContent = doc.farm_id;
      document.title = doc.farm_id + ' — peipkg farm';
      var health = $('health');
      health.textContent = all[2].ok ? 'healthy' : all[2].text;
      health.className = 'badge ' + (all[2].ok ? 'health-ok' : /^degraded|^draining/.test(all[2].text) ? 'health-degraded' : 'health-bad');
      renderRunning(doc.running || []);
      renderQueue(doc.queue || []);
      renderRecipes(doc);
      renderWorkers(doc);
      var changed = JSON.stringify(all[1].builds) !== JSON.stringify(lastHistory);
      lastHistory = all[1].builds;
      if (changed) renderHistory();
      $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
    }).catch(function (e) {
      $('health').textContent = 'unreachable';
      $('health').className = 'badge health-bad';
      $('updated').textContent = 'Could not reach the manager: ' + e.message;
    }).then(function () { refreshing = false; });
  }
  refresh();
  setInterval(refresh, 2000);
})();
`;
