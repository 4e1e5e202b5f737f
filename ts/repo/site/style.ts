/**
 * The browse page's stylesheet (`assets/style.css`): system font stacks only, light and dark
 * schemes from the reader's preference, and tables that scroll sideways on narrow screens. It loads
 * nothing: no @import, no url(), no web fonts. This module holds text only; `site.ts` writes it.
 */

export const STYLE_CSS = `/* peipkg repository browse page. System fonts only; no external resources. */
:root {
  color-scheme: light dark;
  --bg: #ffffff;
  --fg: #1f2328;
  --muted: #57606a;
  --line: #d0d7de;
  --soft: #f6f8fa;
  --accent: #0a58b5;
  --on-accent: #ffffff;
  --note-bg: #fff8e5;
  --note-line: #d4a72c;
  --error: #b42318;
  --ok: #1a7f37;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans", Arial, sans-serif;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117;
    --fg: #e6edf3;
    --muted: #9ea7b3;
    --line: #30363d;
    --soft: #161b22;
    --accent: #58a6ff;
    --on-accent: #0d1117;
    --note-bg: #2a2111;
    --note-line: #9e6a03;
    --error: #ff7b72;
    --ok: #3fb950;
  }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.5 var(--sans); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
a:focus-visible, button:focus-visible, input:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
h2:focus { outline: none; }
.wrap { max-width: 76rem; margin: 0 auto; padding-left: 1.25rem; padding-right: 1.25rem; }
.top { background: var(--soft); border-bottom: 1px solid var(--line); padding-top: 1.5rem; padding-bottom: 1.25rem; }
.top h1 { margin: 0; font-size: 1.6rem; line-height: 1.25; overflow-wrap: anywhere; }
.top h1 a { color: inherit; }
.top .desc { margin: .35rem 0 0; color: var(--muted); max-width: 50rem; overflow-wrap: anywhere; }
.meta { display: flex; flex-wrap: wrap; gap: .25rem 1.5rem; margin: .75rem 0 0; font-size: .85rem; color: var(--muted); }
.meta div { display: flex; gap: .4rem; }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; font-family: var(--mono); }
main { padding-top: 1.25rem; padding-bottom: 2rem; }
.notice { border: 1px solid var(--note-line); background: var(--note-bg); border-radius: 6px; padding: .7rem 1rem; margin: 0 0 1.25rem; overflow-wrap: anywhere; }
.status { color: var(--muted); }
.status.error { color: var(--error); font-weight: 600; }
.muted { color: var(--muted); }
.search { display: block; width: 100%; font: inherit; font-size: 1rem; padding: .6rem .8rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
.count { color: var(--muted); font-size: .875rem; margin: .6rem 0; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; white-space: nowrap; }
th.num, td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.mono { font-family: var(--mono); font-size: .85rem; white-space: nowrap; }
td.name a { font-weight: 600; overflow-wrap: break-word; }
td.desc { color: var(--muted); min-width: 14rem; overflow-wrap: anywhere; }
tbody tr:hover { background: var(--soft); }
.nav { margin: 0 0 .5rem; }
h2.pkg { margin: 0 0 .35rem; font-size: 1.5rem; font-family: var(--mono); overflow-wrap: anywhere; }
.lead { margin: 0 0 .5rem; font-size: 1.05rem; overflow-wrap: anywhere; }
.badge { display: inline-block; margin-left: .5rem; padding: 0 .45rem; border: 1px solid var(--ok); border-radius: 999px; color: var(--ok); font-family: var(--sans); font-size: .7rem; font-weight: 600; line-height: 1.5; vertical-align: .1em; }
td.get { white-space: nowrap; }
td.get > * + * { margin-left: .75rem; }
button.toggle { font: inherit; font-size: .8rem; padding: .1rem .6rem; border: 1px solid var(--line); border-radius: 4px; background: var(--soft); color: var(--fg); cursor: pointer; }
button.toggle:hover { border-color: var(--accent); }
button.toggle[aria-expanded="true"] { background: var(--accent); border-color: var(--accent); color: var(--on-accent); }
tr.files > td { background: var(--soft); padding: .5rem 1rem .9rem; }
tr.files p { margin: .25rem 0 .5rem; }
table.filelist { font-size: .8rem; }
table.filelist td { padding: .15rem .5rem; }
table.filelist td.path { font-family: var(--mono); overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: .8rem; border-top: 1px solid var(--line); padding-top: 1rem; padding-bottom: 2rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 40rem) {
  body { font-size: 14px; }
  .wrap { padding-left: .8rem; padding-right: .8rem; }
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack > tbody > tr > td { display: block; width: auto; }
  table.stack > tbody > tr { border-bottom: 1px solid var(--line); padding: .5rem 0; }
  table.stack > tbody > tr > td { border: 0; padding: .1rem 0; text-align: left; white-space: normal; min-width: 0; }
  table.stack > tbody > tr > td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-family: var(--sans); font-size: .8rem; }
  table.stack > tbody > tr.files > td { padding: .5rem .6rem; }
  td.get { padding-top: .35rem; }
}
`;
