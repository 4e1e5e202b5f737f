/** File-system questions asked in several places. */

import { access, constants, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/** Whether `path` exists (following symlinks); any error counts as no. */
export function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The first executable `name` in `$PATH`, as the shell would find it. */
export async function executableOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await executable(candidate)) return candidate;
  }
  return undefined;
}
