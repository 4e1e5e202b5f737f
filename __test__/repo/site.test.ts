/**
 * The browse site (ts/repo/site): deterministic output, no absolute or external URLs in the page,
 * its stylesheet or its script, inert embedding of hostile package data, where files.js goes, and
 * that the page's own URL rules agree with `filesScriptPath`. When /usr/bin/chromium exists, a
 * headless browser loads the site from file:// and from a sub-path over HTTP and the dumped DOM
 * must show the packages, their versions and a file list; otherwise those tests are skipped.
 */

import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { runInNewContext } from 'node:vm';

import { IndexStore } from '../../ts/native.js';
import { CLIENT_PATHS_JS } from '../../ts/repo/site/clientPaths.js';
import { filesScript, filesScriptPath, SITE_PACKAGES, siteFiles, type SiteInput } from '../../ts/repo/site/site.js';

const HOSTILE = '</script><img src=x onerror=alert(1)>\u2028\u2029 & "quoted" \u00e9 \u{1f600}';
const TS = '2026-05-06T12:00:00Z';

const rows: unknown[][] = [
  ['evil', '1.0-1', 'noarch', HOSTILE, 'https://cdn.example.org/evil_1.0-1_noarch.peipkg', 100, 200, TS, 1],
  ['hello', '0.2-1', 'noarch', 'Smallest legal peipkg test fixture.', '/p/hello/0.2-1/hello_0.2-1_noarch.peipkg', 570, 14, TS, 1],
  ['hello', '0.1-1', 'noarch', 'Older hello.', '/p/hello/0.1-1/hello_0.1-1_noarch.peipkg', 560, 12, '2026-05-01T00:00:00Z', 0],
  ['multi', '1.1-1', 'noarch', 'Shares its directory.', '/p/multi/multi_1.1-1_noarch.peipkg', 10, 20, TS, 1],
  ['multi', '1.0-1', 'noarch', 'Shares its directory.', '/p/multi/multi_1.0-1_noarch.peipkg', 10, 20, TS, 0],
  ['nofiles', '1-1', 'noarch', 'Has no files.js beside it.', '/p/nofiles/1-1/nofiles_1-1_noarch.peipkg', 10, 20, TS, 1],
  ['tool', '2:1.0~rc.1-3', 'x86_64', 'A "tool" <b>&\u2028</b> \u00e9', '/p/tool/2:1.0~rc.1-3/tool_2:1.0~rc.1-3_x86_64.peipkg', 1234567, 7654321, TS, 1],
];

const input: SiteInput = {
  repo: { name: 'rt <script>alert(1)</script>', description: 'Test repository \u2014 "quotes" & <tags>' },
  indexVersion: 7,
  generatedAt: '2026-05-07T01:00:00Z',
};

const COLUMNS = ['name', 'version', 'architecture', 'description', 'url', 'size_compressed', 'size_installed', 'build_timestamp', 'active'];

/**
 * assets/packages.js as publish writes it: the native index store makes each row's entry from a
 * manifest and the file's facts, and writes the script for the archive `rows` (active where the
 * row's last cell is 1).
 */
async function packagesScript(rows: readonly unknown[][]): Promise<string> {
  const store = IndexStore.create();
  const ids = store.addPackages(
    rows.map(([name, version, architecture, description, url, size, installed, built]) => ({
      manifest: Buffer.from(JSON.stringify({ name, version, architecture, description, size_installed: installed, build: { timestamp: built, farm_id: 'f' } })),
      size: Number(size),
      sha256: 'a'.repeat(64),
      url: String(url),
    })),
  );
  store.arrange(ids, ids.filter((_, i) => rows[i]![8] === 1));
  const dir = await mkdtemp(join(tmpdir(), 'peipkg-site-'));
  try {
    await store.writeSiteScript(join(dir, 'packages.js'), input.indexVersion, input.generatedAt);
    return await readFile(join(dir, 'packages.js'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const helloFiles =
  '{"schema_version":1,"algorithm":"sha256","entries":[{"path":"usr/share/hello/MESSAGE","size":14,"hash":"4f91e7c17054930fd12bf2de72f8f31eb44090052475b88dc2338163d642e7ac"}]}\n';
const toolFiles = JSON.stringify({
  schema_version: 1,
  algorithm: 'sha256',
  entries: [
    { path: 'usr/bin/tool', size: 4096, hash: 'a'.repeat(64) },
    { path: 'usr/share/doc/</script><b>x\u2028', size: 3, hash: 'b'.repeat(64) },
  ],
});

const byPath = (files: Array<{ path: string; content: string }>): Map<string, string> =>
  new Map(files.map((f) => [f.path, f.content]));

/** Runs a data script against a stub `window.peipkgSite` and returns what it was called with. */
function runData(script: string): { packages: unknown[]; files: unknown[] } {
  const calls = { packages: [] as unknown[], files: [] as unknown[] };
  const peipkgSite = {
    packages: (data: unknown) => calls.packages.push(JSON.parse(JSON.stringify(data))),
    files: (url: unknown, data: unknown) => calls.files.push([url, JSON.parse(JSON.stringify(data))]),
  };
  runInNewContext(script, { window: { peipkgSite } });
  return calls;
}

// ---- the generated files ----

test('siteFiles writes index.html and its assets, all relative to the state root', (t) => {
  t.deepEqual(
    siteFiles(input).map((f) => f.path),
    ['index.html', 'assets/style.css', 'assets/app.js'],
  );
  t.is(SITE_PACKAGES, 'assets/packages.js');
});

test('the site is deterministic, and only packages.js depends on the entries', async (t) => {
  t.deepEqual(siteFiles(input), siteFiles({ ...input }));
  t.is(await packagesScript(rows), await packagesScript(rows));
  t.not(await packagesScript([]), await packagesScript(rows));
});

test('every generated file is plain ASCII, so a wrong charset label cannot garble it', async (t) => {
  for (const file of siteFiles(input)) t.regex(file.content, /^[\n\x20-\x7e]*$/, file.path);
  t.regex(await packagesScript(rows), /^[\n\x20-\x7e]*$/);
  t.regex(filesScript('/p/tool/x.peipkg', toolFiles), /^[\n\x20-\x7e]*$/);
});

test('the page, stylesheet and script use no absolute or external URL', (t) => {
  const files = byPath(siteFiles(input));
  const html = files.get('index.html') ?? '';
  const refs = [...html.matchAll(/\s(?:src|href|action)\s*=\s*"([^"]*)"/gi)].map((m) => m[1] ?? '');
  t.true(refs.length >= 6);
  for (const ref of refs) {
    t.false(/^\/|\/\/|http|^[a-z][a-z0-9+.-]*:(?!,$)/i.test(ref), `page reference ${ref}`);
  }
  t.notRegex(html, /https?:|\/\/[a-z]/i);
  t.notRegex(html, /<(?:iframe|object|embed|img|base)\b/i);
  t.is(html.match(/<script\b/g)?.length, 1);
  t.is(html.match(/<link\b/g)?.length, 2);

  const css = files.get('assets/style.css') ?? '';
  t.notRegex(css, /@import|url\(|@font-face|https?:|\/\/[a-z]/i);

  const js = files.get('assets/app.js') ?? '';
  t.notRegex(js, /https?:\/\/[a-z0-9]|["']\/\/|["']\/[a-z]/i);
  for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'Function(', 'fetch(', 'XMLHttpRequest', 'import(', 'WebSocket', 'sendBeacon']) {
    t.false(js.includes(sink), `script uses ${sink}`);
  }
});

test('a hostile description is inert in packages.js and round-trips exactly', async (t) => {
  const packages = await packagesScript(rows);
  t.false(packages.includes('</script'));
  t.false(packages.includes('<img'));
  t.notRegex(packages, /[<>&\u2028\u2029]/);
  t.true(packages.includes('\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e\\u2028\\u2029'));
  const { packages: calls } = runData(packages);
  t.deepEqual(calls, [{ indexVersion: 7, generatedAt: '2026-05-07T01:00:00Z', columns: COLUMNS, rows }]);
});

test('the repository name and description are escaped in the page', (t) => {
  const html = byPath(siteFiles(input)).get('index.html') ?? '';
  t.false(html.includes('<script>alert'));
  t.true(html.includes('rt &lt;script&gt;alert(1)&lt;/script&gt;'));
  t.true(html.includes('Test repository &#x2014; &quot;quotes&quot; &amp; &lt;tags&gt;'));
  t.true(html.includes('data-index-version="7"'));
  t.true(html.includes('2026-05-07T01:00:00Z'));
  t.true(html.includes('This page does not check signatures.'));
  t.regex(html, /<noscript>/);
});

// ---- files.js ----

test('filesScript keeps paths and sizes, escapes them, and names the package url', (t) => {
  const script = filesScript('/p/tool/2:1.0~rc.1-3/tool_2:1.0~rc.1-3_x86_64.peipkg', toolFiles);
  t.notRegex(script, /[<>&\u2028\u2029]/);
  t.false(script.includes('a'.repeat(64)));
  t.deepEqual(runData(script).files, [
    [
      '/p/tool/2:1.0~rc.1-3/tool_2:1.0~rc.1-3_x86_64.peipkg',
      { entries: [['usr/bin/tool', 4096], ['usr/share/doc/</script><b>x\u2028', 3]] },
    ],
  ]);
  t.deepEqual(runData(filesScript('/p/e/1/e.peipkg', '{"schema_version":1,"algorithm":"sha256","entries":[]}\n')).files, [
    ['/p/e/1/e.peipkg', { entries: [] }],
  ]);
});

test('filesScript turns a malformed files.json into a message for the page instead of throwing', (t) => {
  for (const bad of ['', 'nope', '{}', '{"entries":[{"path":1,"size":2}]}', '{"entries":[{"path":"a"}]}']) {
    const calls = runData(filesScript('/p/a/1/a.peipkg', bad)).files;
    t.deepEqual(calls, [['/p/a/1/a.peipkg', { error: 'files.json beside this package is malformed' }]], bad);
  }
});

// ---- where files.js goes ----

const placements: Array<[string, string | undefined]> = [
  ['/p/a/1.0-1/a_1.0-1_noarch.peipkg', 'p/a/1.0-1/files.js'],
  ['/p/tool/2:1.0~rc.1-3/tool_2:1.0~rc.1-3_x86_64.peipkg', 'p/tool/2:1.0~rc.1-3/files.js'],
  ['/hello_0.1-1_noarch.peipkg', 'files.js'],
  ['hello_0.1-1_noarch.peipkg', 'files.js'],
  ['/p//a/./1/a.peipkg', 'p/a/1/files.js'],
  ['/p/x/../a/1/a.peipkg', 'p/a/1/files.js'],
  ['//host/a.peipkg', 'host/files.js'],
  ['/p/a b/1#2?3%41/a.peipkg', 'p/a b/1#2?3%41/files.js'],
  ['https://cdn.example.org/p/a/1/a.peipkg', undefined],
  ['http://cdn.example.org/a.peipkg', undefined],
  ['/../a.peipkg', undefined],
  ['/', undefined],
  ['', undefined],
];

for (const [url, expected] of placements) {
  test(`filesScriptPath(${JSON.stringify(url)}) is ${String(expected)}`, (t) => {
    t.is(filesScriptPath(url), expected);
  });
}

test('the page looks for files.js exactly where filesScriptPath puts it, and links packages relatively', (t) => {
  const client = runInNewContext(`${CLIENT_PATHS_JS}\n({ filesPath: filesPath, packageHref: packageHref })`) as {
    filesPath: (url: string) => string | null;
    packageHref: (url: string) => string | null;
  };
  for (const [url, expected] of placements) t.is(client.filesPath(url) ?? undefined, expected, url);
  t.is(client.packageHref('/p/a/1.0-1/a.peipkg'), './p/a/1.0-1/a.peipkg');
  t.is(client.packageHref('/p/t/2:1.0/t.peipkg'), './p/t/2%3A1.0/t.peipkg');
  t.is(client.packageHref('/p/a b/1#2?3%4/a.peipkg'), './p/a%20b/1%232%3F3%254/a.peipkg');
  t.is(client.packageHref('javascript:alert(1)'), './javascript%3Aalert(1)');
  t.is(client.packageHref('https://cdn.example.org/a.peipkg'), 'https://cdn.example.org/a.peipkg');
  t.is(client.packageHref('/../a.peipkg'), null);
});

// ---- in a real browser ----

const CHROMIUM = '/usr/bin/chromium';
const browserTest = existsSync(CHROMIUM) ? test.serial : test.skip;

async function writeSite(root: string): Promise<void> {
  const files = [...siteFiles(input), { path: SITE_PACKAGES, content: await packagesScript(rows) }];
  const lists: Array<[string, string]> = [
    ['/p/hello/0.2-1/hello_0.2-1_noarch.peipkg', helloFiles],
    ['/p/multi/multi_1.0-1_noarch.peipkg', helloFiles],
    ['/p/tool/2:1.0~rc.1-3/tool_2:1.0~rc.1-3_x86_64.peipkg', toolFiles],
  ];
  for (const [url, json] of lists) {
    const path = filesScriptPath(url);
    if (path === undefined) throw new Error(`no files.js path for ${url}`);
    files.push({ path, content: filesScript(url, json) });
  }
  for (const file of files) {
    await mkdir(dirname(join(root, file.path)), { recursive: true });
    await writeFile(join(root, file.path), file.content);
  }
}

async function dumpDom(profile: string, url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      `--user-data-dir=${profile}`,
      '--virtual-time-budget=3000',
      '--dump-dom',
      url,
    ],
    { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

browserTest('headless chromium: the site works from file:// and shows versions and files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'peipkg-site-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'state');
  await writeSite(root);
  const page = pathToFileURL(join(root, 'index.html')).href;

  const list = await dumpDom(join(dir, 'profile'), page);
  t.regex(list, /5 packages\./);
  t.regex(list, /href="#pkg=hello">hello<\/a>/);
  t.regex(list, /href="#pkg=tool">tool<\/a>/);
  t.true(list.includes('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;'));
  t.notRegex(list, /<img/);

  const hello = await dumpDom(join(dir, 'profile'), `${page}#pkg=hello`);
  t.regex(hello, /<h2[^>]*>hello<\/h2>/);
  t.true(hello.includes('0.2-1'));
  t.true(hello.includes('0.1-1'));
  t.true(hello.includes('href="./p/hello/0.2-1/hello_0.2-1_noarch.peipkg"'));
  t.true(hello.includes('usr/share/hello/MESSAGE'));
  t.regex(hello, /1 file, 14 B in total/);

  const tool = await dumpDom(join(dir, 'profile'), `${page}#pkg=tool`);
  t.true(tool.includes('2:1.0~rc.1-3'));
  t.true(tool.includes('usr/bin/tool'));
  t.true(tool.includes('usr/share/doc/&lt;/script&gt;&lt;b&gt;x'));
  t.notRegex(tool, /<b>x/);

  const evil = await dumpDom(join(dir, 'profile'), `${page}#pkg=evil`);
  t.true(evil.includes('href="https://cdn.example.org/evil_1.0-1_noarch.peipkg"'));
  t.regex(evil, /hosted outside the repository \(cdn\.example\.org\)/);
  t.notRegex(evil, /<img/);

  const nofiles = await dumpDom(join(dir, 'profile'), `${page}#pkg=nofiles`);
  t.regex(nofiles, /No file list was found for this version \(p\/nofiles\/1-1\/files\.js is missing\)/);

  const multi = await dumpDom(join(dir, 'profile'), `${page}#pkg=multi`);
  t.regex(multi, /belongs to \/p\/multi\/multi_1\.0-1_noarch\.peipkg/);
  t.false(multi.includes('usr/share/hello/MESSAGE'));

  const missing = await dumpDom(join(dir, 'profile'), `${page}#pkg=${encodeURIComponent('no such </b>')}`);
  t.true(missing.includes('This repository has no package named \u201cno such &lt;/b&gt;\u201d.'));
});

browserTest('headless chromium: the site works from a sub-path over HTTP and asks for nothing outside it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'peipkg-site-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'state');
  await writeSite(root);
  const prefix = '/mirror/peios/';
  const requested: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    requested.push(path);
    const rel = decodeURIComponent(path.slice(prefix.length));
    if (!path.startsWith(prefix) || normalize(rel).startsWith('..')) {
      res.writeHead(404).end();
      return;
    }
    const type = rel.endsWith('.js') ? 'text/javascript' : rel.endsWith('.css') ? 'text/css' : 'text/html';
    readFile(join(root, rel)).then(
      (body) => res.writeHead(200, { 'content-type': type }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;

  const dom = await dumpDom(join(dir, 'profile'), `http://127.0.0.1:${port}${prefix}index.html#pkg=tool`);
  t.true(dom.includes('2:1.0~rc.1-3'));
  t.true(dom.includes('usr/bin/tool'));
  t.true(requested.includes(`${prefix}p/tool/2:1.0~rc.1-3/files.js`) || requested.includes(`${prefix}p/tool/2%3A1.0~rc.1-3/files.js`));
  t.true(requested.length >= 4);
  for (const path of requested) t.true(path.startsWith(prefix), path);
});
