#!/usr/bin/env node
// Bundles each command's help path over tsc's output (`npm run build:ts` runs it after tsc):
// dist/{build,repo,manager}/cli.js and dist/cli.js become esbuild bundles of those modules plus
// yargs and its dependencies, sharing one chunk in dist/chunks/. Loading yargs as ~50 files costs
// ~0.1 s per run; as one file, a fraction of that (bench/startup.ts). Every other module of ours
// stays tsc's file in dist/, imported from the bundle: the command modules are loaded only when a
// command runs, and a module imported both from a bundle and from dist/ (errors.js, whose classes
// reportError tells apart with instanceof) must exist once.
//
// zod, which every command that reads input loads, becomes one file too (dist/vendor/zod.js): as
// its ~100 files it costs ~0.1 s of every such run on Node 20. The file holds only the members our
// modules use (they reach zod only as `z.<member>`; the list is read from tsc's output, and a
// member zod lacks fails the build), so its locales and the rest are left out: ~0.02 s to load
// instead of ~0.06 s for all of zod in one file. tsc's `from 'zod'` imports in dist/ are pointed
// at it, so all of our modules share that one copy.
//
//   node scripts/bundle-cli.js        (after tsc -p tsconfig.build.json)
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'ts');
const out = join(root, 'dist');
const entries = ['cli.ts', 'build/cli.ts', 'repo/cli.ts', 'manager/cli.ts'].map((f) => join(src, f));

// An import of another of our modules is left to Node, under this prefix and the module's path in
// dist/; once esbuild has decided which output file holds the import (a shared chunk sits in
// another directory than the source did), the prefix becomes a path relative to that file.
const DIST = '__peipkg_dist__/';

/** @type {import('esbuild').Plugin} */
const ownModulesFromDist = {
  name: 'own-modules-from-dist',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!args.importer.startsWith(src + '/')) return undefined;
      const target = resolve(dirname(args.importer), args.path.replace(/\.js$/, '.ts'));
      if (entries.includes(target)) return undefined;
      return { path: DIST + relative(src, target).replace(/\.ts$/, '.js'), external: true };
    });
  },
};

// yargs finds its locale files (and package.json's `yargs` settings) from its own module's URL; in
// the bundle that would be the chunk's, so the shim gets the URL the file has in node_modules.
const SHIM = /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/;

/** @type {import('esbuild').Plugin} */
const yargsShimUrl = {
  name: 'yargs-shim-url',
  setup(b) {
    b.onLoad({ filter: SHIM }, async (args) => {
      const code = await readFile(args.path, 'utf8');
      const uses = code.split('import.meta.url').length - 1;
      if (uses === 0) throw new Error(`${args.path}: no import.meta.url to replace (has yargs changed?)`);
      const url = "new URL('lib/platform-shims/esm.mjs', import.meta.resolve('yargs')).href";
      return { contents: code.replaceAll('import.meta.url', url), loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

// string-width (cliui and yargs each bring a version) measures every cell of the help text, one
// grapheme at a time through Intl.Segmenter and Unicode-property regular expressions: creating those
// and measuring costs ~0.05 s of a help run. In text whose every character is a printable one of
// the ranges below, each character is a grapheme of its own (grapheme cluster break "Other") and
// one column wide, so the width is the length; anything else goes to string-width, loaded on first
// use. The claim is checked here against the installed versions, for every character of the ranges.
const SIMPLE_RANGES = [[0x20, 0x7e], [0x2010, 0x2027]];
const hex = (c) => `\\u${c.toString(16).padStart(4, '0')}`;
const SIMPLE_SOURCE = `^[${SIMPLE_RANGES.map(([a, z]) => `${hex(a)}-${hex(z)}`).join('')}]*$`;
const simpleText = SIMPLE_RANGES.flatMap(([a, z]) => Array.from({ length: z - a + 1 }, (_, i) => String.fromCodePoint(a + i))).join('');

async function checkSimple(realPath) {
  const { default: real } = await import(pathToFileURL(realPath).href);
  if ([...new Intl.Segmenter().segment(simpleText)].length !== simpleText.length) throw new Error('a simple character joins a grapheme');
  for (const c of simpleText) if (real(c) !== 1) throw new Error(`${realPath}: U+${c.codePointAt(0).toString(16)} is ${real(c)} columns`);
  if (real(simpleText) !== simpleText.length) throw new Error(`${realPath}: the simple characters together are not one column each`);
}

/** @type {import('esbuild').Plugin} */
const fastStringWidth = {
  name: 'fast-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.namespace === 'fast-string-width') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, namespace: 'fast-string-width' });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: relative(root, real.path), namespace: 'fast-string-width', pluginData: real.path };
    });
    b.onLoad({ filter: /.*/, namespace: 'fast-string-width' }, async (args) => {
      const realPath = /** @type {string} */ (args.pluginData);
      await checkSimple(realPath);
      return {
        resolveDir: dirname(realPath),
        loader: 'js',
        contents: `
const SIMPLE = new RegExp(${JSON.stringify(SIMPLE_SOURCE)});
let real;
export default function stringWidth(string, options) {
  if (options === undefined && typeof string === 'string' && SIMPLE.test(string)) return string.length;
  real ??= require(${JSON.stringify(realPath)}).default;
  return real(string, options);
}
`,
      };
    });
  },
};

await rm(join(out, 'chunks'), { recursive: true, force: true });
await rm(join(out, 'vendor'), { recursive: true, force: true });
const result = await build({
  entryPoints: entries,
  outbase: src,
  outdir: out,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  legalComments: 'eof',
  plugins: [ownModulesFromDist, yargsShimUrl, fastStringWidth],
  write: false,
  logLevel: 'warning',
});

for (const file of result.outputFiles) {
  let text = file.text;
  if (file.path.endsWith('.js')) {
    text = text.replace(new RegExp(`${DIST}([^"']+)`, 'g'), (_, path) => {
      const rel = relative(dirname(file.path), join(out, path));
      return rel.startsWith('../') ? rel : `./${rel}`;
    });
    if (text.includes('__peipkg_dist__')) throw new Error(`${file.path}: an import was not rewritten`);
    if (/\b__require\(['"]/.test(text)) throw new Error(`${file.path}: a CommonJS require that ESM output cannot serve`);
  }
  await mkdir(dirname(file.path), { recursive: true });
  await writeFile(file.path, text);
}

const ZOD = join(out, 'vendor', 'zod.js');
// tsc's import of zod, or (when this script runs again over the same dist/) the rewritten one.
const ZOD_IMPORT = /(\bfrom\s*)(['"])(?:zod|(?:\.\.?\/)+vendor\/zod\.js)\2/g;

/** Every .js file tsc wrote under `dir`, but not the bundles' chunks or vendor files. */
async function compiled(dir) {
  const files = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory() && path !== join(out, 'chunks') && path !== join(out, 'vendor')) files.push(...(await compiled(path)));
    else if (e.isFile() && e.name.endsWith('.js')) files.push(path);
  }
  return files;
}

const importers = [];
const members = new Set();
for (const path of await compiled(out)) {
  const text = await readFile(path, 'utf8');
  if (!text.match(ZOD_IMPORT)) continue;
  importers.push({ path, text });
  for (const [, member] of text.matchAll(/\bz\s*\.\s*([A-Za-z_$][\w$]*)/g)) members.add(member);
  // `z` used other than as `z.<member>` (passed on, spread) would meet the vendored subset at run
  // time; refuse it here. (The look-arounds skip `z` in strings and character classes: 'z', a-z.)
  const bare = text.replace(/^import \{ z \} from .*$/gm, '').match(/(?<![\w$.\-'"\\])\bz\b(?!\s*\.)(?![\w$'"\]])/);
  if (bare) throw new Error(`${path}: uses zod's \`z\` other than as z.<member>; the vendored zod holds only the members used`);
}
const used = [...members].sort();
await build({
  stdin: {
    contents:
      `import { ${used.map((m, i) => `${m} as m${i}`).join(', ')} } from 'zod';\n` +
      `export const z = { ${used.map((m, i) => `${JSON.stringify(m)}: m${i}`).join(', ')} };\n`,
    resolveDir: root,
    sourcefile: 'vendor-zod.js',
    loader: 'js',
  },
  outfile: ZOD,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  legalComments: 'eof',
  logLevel: 'warning',
});
for (const { path, text } of importers) {
  const rel = relative(dirname(path), ZOD);
  await writeFile(path, text.replace(ZOD_IMPORT, (_, from, quote) => `${from}${quote}${rel.startsWith('../') ? rel : `./${rel}`}${quote}`));
}
