#!/usr/bin/env node
// Launcher: runs the compiled command from dist/ (npm run build:ts in a checkout).
import module from 'node:module';

// Node 22+ caches compiled code between runs; start-up is most of a short command's time.
module.enableCompileCache?.();

const { main } = await import('../dist/manager/cli.js');

process.exitCode = await main(process.argv.slice(2));
