/**
 * The manager's view of what is published (D-20) is read through the native index store, which
 * maps `archive.json`. The daemon runs for months: the mapping must go when the view is built, not
 * whenever the garbage collector gets to the store, or the daemon keeps every replaced archive in
 * its memory and dies of SIGBUS if anything truncates one in place.
 */

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { PublishedView } from '../../ts/manager/published.js';
import { IndexStore } from '../../ts/native.js';
import { makePackage } from '../helpers/packages.js';
import { tempDir } from '../helpers/fs.js';
import { initState, publishInPlace, vectorSeedFile } from '../helpers/repo.js';

/** Lines of this process's memory map that map `path`. */
async function mappings(path: string): Promise<string[]> {
  return (await readFile('/proc/self/maps', 'utf8')).split('\n').filter((line) => line.endsWith(` ${path}`));
}

test('the published view unmaps archive.json once it is built, and answers from what it read', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const incoming = join(await tempDir(t), 'new');
  await mkdir(incoming);
  await makePackage(incoming, { name: 'hello', version: '1.0-1', architecture: 'x86_64' });
  await makePackage(incoming, { name: 'hello', version: '1.1-1', architecture: 'x86_64' });
  const published = await publishInPlace(state, incoming, key, '2026-05-08T00:00:00Z');
  t.is(published.exitCode, 0, published.stderr);
  const archive = join(state, 'index', 'archive.json');

  // The store maps the document while it holds it: what the view must not leave behind.
  const store = IndexStore.create();
  await store.load(archive);
  t.is((await mappings(archive)).length, 1, 'a loaded index document is mapped');
  store.release();
  t.deepEqual(await mappings(archive), [], 'release unmaps it at once');

  const view = await PublishedView.load(state);
  t.deepEqual(await mappings(archive), [], 'no mapping of archive.json outlives PublishedView.load');
  t.true(view.has('hello', '1.0-1', 'x86_64'));
  t.false(view.has('hello', '1.0-1', 'aarch64'));
  t.is(view.newest('hello'), '1.1-1');
  t.is(view.indexVersion, 2, 'init made version 1, the publish 2');
});

test('a released store holds nothing: its old document ids are refused, not read from freed memory', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const store = IndexStore.create();
  const loaded = await store.load(join(state, 'index', 'archive.json'));
  store.release();
  await t.throwsAsync(store.documentKeys(loaded), { message: /no index document/ });
});
