/** File-system questions asked in several places. */

import { stat } from 'node:fs/promises';

/** Whether `path` exists (following symlinks); any error counts as no. */
export function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
