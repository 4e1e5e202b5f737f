/**
 * The output directory's filesystem fills up while a package is written. That is the machine's
 * problem, not a bug in peipkg: the user is told which package could not be written, why, and what
 * to do, without a stack and without the temporary name nobody will see; no file is left in the
 * output directory.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { runTool } from '../helpers/cli.js';
import { smallFilesystem, tempDir } from '../helpers/fs.js';
import { makeRecipe, simpleRecipe } from '../helpers/recipes.js';

const ADVICE = 'no space left on device \\(ENOSPC\\); no package was written; free space on the filesystem holding';

test('pack into a full filesystem: the package named, ENOSPC and advice; nothing left in the output directory', async (t) => {
  const fs = await smallFilesystem(t, '512k');
  const work = await tempDir(t);
  const staged = join(work, 'staged');
  await mkdir(join(staged, 'usr/share/big'), { recursive: true });
  // Random bytes do not compress: the package is larger than the filesystem.
  await writeFile(join(staged, 'usr/share/big/blob'), randomBytes(1 << 20));
  const manifest = join(work, 'manifest.json');
  await writeFile(manifest, JSON.stringify({ name: 'big', version: '1.0-1', architecture: 'noarch', description: 'd', license: 'MIT', homepage: 'https://peios.org', build: { timestamp: '2026-05-06T12:00:00Z', farm_id: 'f' } }));
  const out = join(fs, 'out');

  const result = await runTool('peipkg-build', ['pack', '--manifest', manifest, '--staged', staged, '--out', join(out, 'big_1.0-1_noarch.peipkg')]);
  t.is(result.exitCode, 1, result.stderr);
  t.is(result.stderr, `peipkg-build: write ${out}/big_1.0-1_noarch.peipkg: ${ADVICE.replace(/\\/g, '')} ${out} and run the command again\n`);
  t.deepEqual(await readdir(out), [], 'no package and no temporary directory left');
});

test('build into a full filesystem: the same, for the package the recipe makes', async (t) => {
  const fs = await smallFilesystem(t, '512k');
  const source = await tempDir(t);
  const recipe = await makeRecipe(t, simpleRecipe({ script: 'd="$DESTDIR/usr/share/demo"; mkdir -p "$d"; head -c 1048576 /dev/urandom > "$d/blob"' }));
  const out = join(fs, 'out');
  const result = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'test://disk-full', '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', out]);
  t.is(result.exitCode, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`peipkg-build: write ${out}/demo_1\\.0-1_noarch\\.peipkg: ${ADVICE} ${out} and run the command again\n$`));
  t.notRegex(result.stderr, /internal error|\n\s+at /);
  t.deepEqual(await readdir(out), [], 'no package and no temporary directory left');
});
