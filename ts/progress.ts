/**
 * Progress for long work: a bar on stderr when stderr is a terminal, nothing otherwise (scripts and
 * logs get no escape codes). Native work advances a counter; this polls it.
 */

import { createProgress, readProgress, type Progress } from './native.js';

export interface ProgressBar {
  /** The counter to hand to native work. */
  counter: Progress;
  stop(): void;
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(0);
}

/**
 * Shows `label` with a bar over `totalBytes` while native work advances the returned counter.
 * Without `totalBytes`, the bar takes the total from the counter once the native work has learned
 * it (so that the caller need not stat every file first). The bar library is loaded only when
 * there is a terminal to draw on.
 */
export async function startProgress(label: string, totalBytes?: number): Promise<ProgressBar> {
  const counter = createProgress();
  if (!process.stderr.isTTY || totalBytes === 0) return { counter, stop: () => undefined };
  let total = totalBytes ?? 0;
  const { default: cliProgress } = await import('cli-progress');
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% {done}/{total} MB {rate} MB/s`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { done: '0', total: megabytes(total), rate: '0' });
  const update = (): void => {
    const { bytes, total: learned } = readProgress(counter);
    if (totalBytes === undefined && learned !== total) {
      total = learned;
      bar.setTotal(total);
    }
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    bar.update(bytes, { done: megabytes(bytes), total: megabytes(total), rate: (bytes / 1e6 / seconds).toFixed(0) });
  };
  const timer = setInterval(update, 100);
  return {
    counter,
    stop: () => {
      clearInterval(timer);
      update();
      bar.stop();
    },
  };
}
