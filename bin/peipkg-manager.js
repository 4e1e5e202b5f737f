#!/usr/bin/env node
// Launcher: runs the compiled command from dist/ (npm run build:ts in a checkout).
import { main } from '../dist/manager/cli.js';

process.exitCode = await main(process.argv.slice(2));
