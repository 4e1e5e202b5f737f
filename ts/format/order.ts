/**
 * Byte order of UTF-8 strings without encoding them: the order every sorted list in the format
 * uses (payload entries, files.json, dependency names). JavaScript's `<` compares UTF-16 code
 * units, which disagrees with UTF-8 byte order for characters above U+FFFF (vectors/fpu-collision
 * is the ASCII cousin of this trap: compare wire names, directories with their `/`).
 */

/** Maps a UTF-16 code unit so that unit order equals code point (and so UTF-8 byte) order. */
function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000; // surrogates encode code points ≥ U+10000
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

export function compareUtf8(a: string, b: string): -1 | 0 | 1 {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) < rank(y) ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Index of the first element that is not strictly greater than its predecessor, or -1. */
export function firstOutOfOrder(items: readonly string[]): number {
  for (let i = 1; i < items.length; i++) {
    if (compareUtf8(items[i - 1]!, items[i]!) >= 0) return i;
  }
  return -1;
}
