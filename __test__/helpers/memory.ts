/** How much memory another process uses, read from /proc while it runs. */

import { readFile } from 'node:fs/promises';

/** Peak resident memory (VmHWM) of a running process, in bytes; undefined once it has gone. */
export async function peakRss(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status && /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : undefined;
}
