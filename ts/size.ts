/**
 * Byte sizes in configuration: a whole number of bytes (`1048576`), or a number with a binary
 * unit (`512KiB`, `1MiB`, `1.5MiB`, `25MiB`, `1GiB`; `B` for bytes). Decimal units (`MB`) are
 * refused rather than guessed at. Results are whole bytes.
 */

const UNIT_BYTES: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/;

export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * (UNIT_BYTES[m[2] ?? ''] ?? NaN));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** `1MiB`, `512KiB`, `1000B`: the largest unit that divides the size exactly. */
export function formatSize(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    const size = UNIT_BYTES[unit]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
