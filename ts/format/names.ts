/**
 * Package names, architectures and package file names (`package-format.md` §1.1, §1.5, §1.6).
 * Names follow the reference reader's rule, in which `+` is an ordinary character (`libstdc++`).
 */

const NAME = /^[a-z0-9](?:[.-]?[a-z0-9+])*$/;
const ARCHITECTURE = /^[a-z][a-z0-9_]{0,15}$/;

/** The architectures `build` accepts (DECISIONS.md, Recipes and build); `pack` checks the format only. */
export const BUILD_ARCHITECTURES = ['x86_64', 'aarch64', 'noarch'] as const;

export const SIDE_EFFECTS = ['ldconfig', 'depmod', 'man-db'] as const;

export function packageNameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes < 2 || bytes > 64) return `package name "${name}" must be 2–64 bytes long`;
  if (!NAME.test(name)) {
    return `package name "${name}" must use only a-z 0-9 - . +, start with a letter or digit, end with a letter, digit or +, and have no two adjacent - or .`;
  }
  return undefined;
}

export function architectureProblem(architecture: string): string | undefined {
  return ARCHITECTURE.test(architecture)
    ? undefined
    : `architecture "${architecture}" must match [a-z][a-z0-9_]{0,15}`;
}

/** `<name>_<version>_<architecture>.peipkg`, the version verbatim (an epoch keeps its `:`). */
export function packageFileName(name: string, version: string, architecture: string): string {
  return `${name}_${version}_${architecture}.peipkg`;
}

/** Splits at the first `_` and the next one; the rest (which may hold `_`) is the architecture. */
export function parsePackageFileName(file: string): { name: string; version: string; architecture: string } | undefined {
  if (!file.endsWith('.peipkg')) return undefined;
  const stem = file.slice(0, -'.peipkg'.length);
  const first = stem.indexOf('_');
  const second = first < 0 ? -1 : stem.indexOf('_', first + 1);
  if (first <= 0 || second <= first + 1 || second === stem.length - 1) return undefined;
  return { name: stem.slice(0, first), version: stem.slice(first + 1, second), architecture: stem.slice(second + 1) };
}
