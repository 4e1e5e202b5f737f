/** The dashboard's stylesheet: system fonts, light and dark schemes, nothing loaded from elsewhere. */

export const DASHBOARD_CSS = `:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa;
  --accent: #0a58b5; --ok: #1a7f37; --bad: #b42318; --warn: #9a6700; --run: #0969da;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9ea7b3; --line: #30363d; --soft: #161b22; --accent: #4493f8; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --run: #58a6ff; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 var(--sans); background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.25rem; padding: 0.75rem 1.25rem; border-bottom: 1px solid var(--line); background: var(--soft); }
h1 { font-size: 1.15rem; margin: 0; }
h1 .brand { font-weight: 700; }
h1 #farm-id { font-weight: 400; color: var(--muted); font-family: var(--mono); }
h2 { font-size: 1rem; margin: 1.25rem 0 0.5rem; }
h2 .count { color: var(--muted); font-weight: 400; }
nav { display: flex; gap: 0.75rem; }
a { color: var(--accent); }
header form { margin-left: auto; display: flex; gap: 0.4rem; align-items: center; }
input, select, button { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 0.2rem 0.5rem; }
button { cursor: pointer; background: var(--soft); }
button:hover { border-color: var(--accent); }
main { padding: 0 1.25rem 2rem; max-width: 110rem; }
#message { margin: 0; padding: 0 1.25rem; min-height: 1.5rem; color: var(--muted); }
#message.error { color: var(--bad); }
table { border-collapse: collapse; width: 100%; display: block; overflow-x: auto; }
th, td { text-align: left; padding: 0.3rem 0.75rem 0.3rem 0; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; }
th { color: var(--muted); font-weight: 600; }
tbody:empty::after { content: "none"; color: var(--muted); display: block; padding: 0.3rem 0; }
.badge { display: inline-block; padding: 0 0.5rem; border-radius: 999px; border: 1px solid currentColor; font-size: 0.85em; }
.state-succeeded, .health-ok, .poll-ok { color: var(--ok); }
.state-failed, .health-bad, .poll-failed { color: var(--bad); }
.state-running, .state-queued, .state-verifying { color: var(--run); }
.state-interrupted, .state-held, .health-degraded { color: var(--warn); }
.muted, .empty { color: var(--muted); }
.error-text { color: var(--bad); white-space: normal; max-width: 50rem; }
.filters { display: flex; flex-wrap: wrap; gap: 0.75rem; margin-bottom: 0.5rem; }
.build { border: 1px solid var(--line); border-radius: 8px; margin-bottom: 0.75rem; overflow: hidden; }
.build > .head { display: flex; gap: 1rem; padding: 0.4rem 0.75rem; background: var(--soft); border-bottom: 1px solid var(--line); }
pre.log { margin: 0; padding: 0.5rem 0.75rem; font: 12px/1.4 var(--mono); max-height: 22rem; overflow: auto; white-space: pre-wrap; word-break: break-all; }
tr.log-row td { padding: 0; }
tr.log-row pre.log { border: 1px solid var(--line); border-radius: 6px; margin: 0.25rem 0 0.75rem; }
footer { padding: 0.5rem 1.25rem; color: var(--muted); font-size: 0.85em; }
`;
