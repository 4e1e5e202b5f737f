/**
 * The farm dashboard (`GET /`): one page, its stylesheet and its script, all served by the manager
 * itself — no CDN, no inline script (the page is served with a strict Content-Security-Policy), so
 * it works offline and on an isolated network. The page reads the same JSON anyone can
 * (`/status`, `/builds`, `/healthz`), follows running builds' logs live (Server-Sent Events from
 * `/builds/<id>/log/stream`), and offers the one operator action, retry, with the operator token.
 */

import { DASHBOARD_JS } from './app.js';
import { DASHBOARD_CSS } from './style.js';

export interface DashboardFile {
  /** `index.html`, or `dashboard/<name>` (served at `/` and `/dashboard/<name>`). */
  path: string;
  type: string;
  content: string;
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peipkg farm</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="dashboard/style.css">
<script src="dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1><span class="brand">peipkg farm</span> <span id="farm-id" data-testid="farm-id"></span></h1>
  <span id="health" class="badge" data-testid="health">…</span>
  <nav>
    <a href="repo/">Repository</a>
    <a href="status">/status</a>
    <a href="metrics">/metrics</a>
  </nav>
  <form id="token-form" autocomplete="off">
    <label for="token">Operator token</label>
    <input id="token" type="password" placeholder="state_dir/control.token" data-testid="token">
    <button type="submit">Save</button>
  </form>
</header>
<p id="message" role="status" data-testid="message"></p>
<main>
  <section id="running-section">
    <h2>Running <span class="count" id="running-count"></span></h2>
    <div id="running" data-testid="running"><p class="empty">No build is running.</p></div>
  </section>
  <section>
    <h2>Queue <span class="count" id="queue-count"></span></h2>
    <table id="queue" data-testid="queue"><thead><tr><th>Recipe</th><th>Version</th><th>Tag</th><th>Waiting</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Recipes</h2>
    <table id="recipes" data-testid="recipes"><thead><tr><th>Recipe</th><th>Last result</th><th>Last poll</th><th>Next poll</th><th>Webhook</th><th></th></tr></thead><tbody></tbody></table>
    <div id="skipped"></div>
  </section>
  <section id="workers-section" hidden>
    <h2>Workers</h2>
    <table id="workers" data-testid="workers"><thead><tr><th>Worker</th><th>Host</th><th>Architectures</th><th>Keys</th><th>State</th><th>Building</th><th>Last seen</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>History</h2>
    <form id="filters" class="filters" autocomplete="off">
      <label>Recipe <select id="filter-recipe" data-testid="filter-recipe"><option value="">all</option></select></label>
      <label>Result <select id="filter-state" data-testid="filter-state"><option value="">all</option><option>succeeded</option><option>failed</option><option>running</option><option>queued</option><option>interrupted</option><option>held</option><option>verifying</option></select></label>
      <label>Search <input id="filter-text" type="search" placeholder="version, tag, error" data-testid="filter-text"></label>
    </form>
    <table id="history" data-testid="history"><thead><tr><th>Build</th><th>Result</th><th>Worker</th><th>Started</th><th>Duration</th><th>Log</th><th></th></tr></thead><tbody></tbody></table>
  </section>
</main>
<footer><span id="updated"></span></footer>
</body>
</html>
`;

export function dashboardFiles(): DashboardFile[] {
  return [
    { path: 'index.html', type: 'text/html; charset=utf-8', content: PAGE },
    { path: 'dashboard/style.css', type: 'text/css; charset=utf-8', content: DASHBOARD_CSS },
    { path: 'dashboard/app.js', type: 'text/javascript; charset=utf-8', content: DASHBOARD_JS },
  ];
}
