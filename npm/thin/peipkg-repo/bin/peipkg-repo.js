#!/usr/bin/env node
// Runs peipkg's own `peipkg-repo`, of the version this package depends on exactly, in this process:
// importing it rather than spawning it costs no second Node start-up, and leaves the arguments,
// exit code and signals as they are.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const manifest = createRequire(import.meta.url).resolve('peipkg/package.json');
const { bin } = JSON.parse(readFileSync(manifest, 'utf8'));
await import(pathToFileURL(join(dirname(manifest), bin['peipkg-repo'])).href);
