/**
 * The detached process `peipkg-build build` leaves behind to remove its scratch tree (scratch.ts):
 * `node removeGarbage.js DIR NAME` removes DIR/NAME, then any other garbage tree in DIR that no live
 * remover holds. It reports nothing: nobody is listening, and what it leaves the next one removes.
 */

import { removeGarbageIn } from './scratch.js';

const [dir, name] = process.argv.slice(2);
if (dir !== undefined) await removeGarbageIn(dir, name);
