#!/usr/bin/env node
// Launcher: runs the compiled command from dist/ (npm run build:ts in a checkout).
import module from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

// Node 22+ caches compiled code between runs; start-up is most of a short command's time. The
// cache goes to the user's own cache directory, not to Node's default, $TMPDIR/node-compile-cache:
// that is shared and writable by other users (build.sh runs as one), who could plant code there for
// the next run, and a tool that cleans up after itself should not leave it in TMPDIR.
// NODE_COMPILE_CACHE (Node enables it itself) and NODE_DISABLE_COMPILE_CACHE still apply.
if (module.enableCompileCache && !process.env.NODE_COMPILE_CACHE) {
  try {
    module.enableCompileCache(join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'peipkg', 'node-compile-cache'));
  } catch {
    // No usable home directory: run without the cache.
  }
}

const { main } = await import('../dist/manager/cli.js');

process.exitCode = await main(process.argv.slice(2));
