/**
 * `.peipkg/manifest.json` (`package-format.md` §3.2, §6, §8.3): the domain type, the canonical
 * encoder (fixed key order, empty optional strings left out of relation objects), the strict wire
 * decoder the verifier uses, and the semantic rules shared by `build`, `pack` and the verifier.
 */

import { z } from 'zod';

import { constraintProblem } from './constraint.js';
import { formatZodIssues } from './issues.js';
import { canonicalJson } from './json.js';
import { architectureProblem, packageNameProblem, SIDE_EFFECTS } from './names.js';
import { compareUtf8 } from './order.js';
import { payloadPathProblem } from './paths.js';
import { isRfc3339Utc, timestampProblem } from './timestamp.js';
import { versionProblem } from './version.js';

/** A dependency, optional dependency or conflict. Empty strings mean "absent". */
export interface Relation {
  name: string;
  constraint: string;
  arch: string;
}

export interface Provide {
  name: string;
  version: string;
}

export interface Replacement {
  name: string;
  constraint: string;
}

export interface SdOverride {
  path: string;
  sd: string;
}

export interface BuildInfo {
  timestamp: string;
  farmId: string;
  sourceRef: string;
}

export interface Manifest {
  name: string;
  version: string;
  architecture: string;
  description: string;
  license: string;
  homepage: string;
  dependencies: Relation[];
  optionalDependencies: Relation[];
  conflicts: Relation[];
  provides: Provide[];
  replaces: Replacement[];
  sideEffects: string[];
  sizeInstalled: number;
  sdOverrides: SdOverride[];
  build: BuildInfo;
}

export const RELATION_FIELDS = [
  ['dependencies', 'dependencies'],
  ['optionalDependencies', 'optional_dependencies'],
  ['conflicts', 'conflicts'],
] as const;

const LIMITS = { relations: 10_000, replaces: 1_000, sdOverrides: 100_000, sdBytes: 64 * 1024 };

function relationWire(r: Relation): Record<string, string> {
  return { name: r.name, ...(r.constraint ? { constraint: r.constraint } : {}), ...(r.arch ? { arch: r.arch } : {}) };
}

/**
 * The members from `name` to `side_effects` in wire form and contract order, which a manifest and
 * a repository index entry (`repository.md` §5.3) share; empty optional strings are left out.
 */
export function describingMembers(m: Manifest): Record<string, unknown> {
  return {
    name: m.name,
    version: m.version,
    architecture: m.architecture,
    description: m.description,
    license: m.license,
    homepage: m.homepage,
    dependencies: m.dependencies.map(relationWire),
    optional_dependencies: m.optionalDependencies.map(relationWire),
    conflicts: m.conflicts.map(relationWire),
    provides: m.provides.map((p) => ({ name: p.name, ...(p.version ? { version: p.version } : {}) })),
    replaces: m.replaces.map((r) => ({ name: r.name, ...(r.constraint ? { constraint: r.constraint } : {}) })),
    side_effects: m.sideEffects,
  };
}

/** The canonical bytes (§3.1, §3.2), trailing newline included. */
export function encodeManifest(m: Manifest): string {
  return canonicalJson({
    schema_version: 1,
    ...describingMembers(m),
    size_installed: m.sizeInstalled,
    sd_overrides: m.sdOverrides.map((o) => ({ path: o.path, sd: o.sd })),
    build: { timestamp: m.build.timestamp, farm_id: m.build.farmId, source_ref: m.build.sourceRef },
  });
}

const relationSchema = z.object({ name: z.string(), constraint: z.string().optional(), arch: z.string().optional() });
const relations = z.array(relationSchema).transform((list) =>
  list.map((r): Relation => ({ name: r.name, constraint: r.constraint ?? '', arch: r.arch ?? '' })),
);

/** The manifest as written on the wire; unknown top-level keys are ignored (§8.3). */
export const ManifestWire = z
  .object({
    schema_version: z.literal(1),
    name: z.string(),
    version: z.string(),
    architecture: z.string(),
    description: z.string().default(''),
    license: z.string().default(''),
    homepage: z.string().default(''),
    dependencies: relations,
    optional_dependencies: relations.default([]),
    conflicts: relations,
    provides: z.array(z.object({ name: z.string(), version: z.string().optional() })).default([]),
    replaces: z.array(z.object({ name: z.string(), constraint: z.string().optional() })).default([]),
    side_effects: z.array(z.string()).default([]),
    size_installed: z.number().int().nonnegative(),
    sd_overrides: z.array(z.object({ path: z.string(), sd: z.string() })).default([]),
    build: z.object({ timestamp: z.string(), farm_id: z.string(), source_ref: z.string() }),
  })
  .transform(
    (w): Manifest => ({
      name: w.name,
      version: w.version,
      architecture: w.architecture,
      description: w.description,
      license: w.license,
      homepage: w.homepage,
      dependencies: w.dependencies,
      optionalDependencies: w.optional_dependencies,
      conflicts: w.conflicts,
      provides: w.provides.map((p) => ({ name: p.name, version: p.version ?? '' })),
      replaces: w.replaces.map((r) => ({ name: r.name, constraint: r.constraint ?? '' })),
      sideEffects: w.side_effects,
      sizeInstalled: w.size_installed,
      sdOverrides: w.sd_overrides,
      build: { timestamp: w.build.timestamp, farmId: w.build.farm_id, sourceRef: w.build.source_ref },
    }),
  );

/** Decodes a parsed manifest document; returns the manifest or every schema problem. */
export function decodeManifest(json: unknown, source = 'manifest.json'): { manifest: Manifest } | { problems: string[] } {
  const parsed = ManifestWire.safeParse(json);
  return parsed.success ? { manifest: parsed.data } : { problems: formatZodIssues(source, parsed.error) };
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const UNPADDED_BASE64 = /^[A-Za-z0-9+/]*$/;

function homepageProblem(homepage: string): string | undefined {
  if (homepage === '') return undefined;
  try {
    const url = new URL(homepage);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '') return undefined;
  } catch {
    // fall through
  }
  return `homepage "${homepage}" must be an http or https URL`;
}

function sortedUniqueProblem(field: string, names: string[]): string | undefined {
  for (let i = 1; i < names.length; i++) {
    const order = compareUtf8(names[i - 1]!, names[i]!);
    if (order === 0) return `${field}: duplicate name "${names[i]}"`;
    if (order > 0) return `${field}: names must be sorted bytewise ("${names[i - 1]}" comes before "${names[i]}")`;
  }
  return undefined;
}

function base64Problem(sd: string): string | undefined {
  if (!UNPADDED_BASE64.test(sd) || sd.length % 4 === 1) return 'is not unpadded standard base64';
  if (Buffer.from(sd, 'base64').length > LIMITS.sdBytes) return `decodes to more than ${LIMITS.sdBytes} bytes`;
  return undefined;
}

export type TimestampRule = 'producer' | 'reader';

/**
 * Every semantic problem of `m` (§1, §6, §8.3), each prefixed with its field. `producer` requires
 * whole-second `…Z` timestamps (DECISIONS.md 3); `reader` accepts any RFC 3339 UTC form.
 */
export function manifestProblems(m: Manifest, timestamps: TimestampRule): string[] {
  const problems: string[] = [];
  const add = (field: string, problem: string | undefined): void => {
    if (problem) problems.push(`${field}: ${problem}`);
  };
  add('name', packageNameProblem(m.name));
  add('version', versionProblem(m.version));
  add('architecture', architectureProblem(m.architecture));
  if (!PRINTABLE.test(m.description)) add('description', 'must be printable text (no control or format characters)');
  add('homepage', homepageProblem(m.homepage));
  for (const [key, wire] of RELATION_FIELDS) {
    const list = m[key];
    if (list.length > LIMITS.relations) add(wire, `more than ${LIMITS.relations} entries`);
    list.forEach((r, i) => {
      add(`${wire}[${i}].name`, packageNameProblem(r.name));
      if (r.arch !== '' && r.arch !== 'any') add(`${wire}[${i}].arch`, `must be absent or "any", got "${r.arch}"`);
      if (r.constraint !== '') add(`${wire}[${i}].constraint`, constraintProblem(r.constraint));
    });
    const order = sortedUniqueProblem(wire, list.map((r) => r.name));
    if (order) problems.push(order);
  }
  if (m.provides.length > LIMITS.relations) add('provides', `more than ${LIMITS.relations} entries`);
  m.provides.forEach((p, i) => {
    add(`provides[${i}].name`, packageNameProblem(p.name));
    if (p.version !== '') add(`provides[${i}].version`, versionProblem(p.version));
  });
  const providesOrder = sortedUniqueProblem('provides', m.provides.map((p) => p.name));
  if (providesOrder) problems.push(providesOrder);
  if (m.replaces.length > LIMITS.replaces) add('replaces', `more than ${LIMITS.replaces} entries`);
  m.replaces.forEach((r, i) => {
    add(`replaces[${i}].name`, packageNameProblem(r.name));
    if (r.constraint !== '') add(`replaces[${i}].constraint`, constraintProblem(r.constraint));
  });
  const replacesOrder = sortedUniqueProblem('replaces', m.replaces.map((r) => r.name));
  if (replacesOrder) problems.push(replacesOrder);
  const seen = new Set<string>();
  m.sideEffects.forEach((effect, i) => {
    if (!(SIDE_EFFECTS as readonly string[]).includes(effect)) {
      add(`side_effects[${i}]`, `unknown side effect "${effect}" (known: ${SIDE_EFFECTS.join(', ')})`);
    } else if (seen.has(effect)) {
      add(`side_effects[${i}]`, `duplicate side effect "${effect}"`);
    }
    seen.add(effect);
  });
  if (!Number.isSafeInteger(m.sizeInstalled) || m.sizeInstalled < 0) add('size_installed', 'must be a non-negative integer');
  if (m.sdOverrides.length > LIMITS.sdOverrides) add('sd_overrides', `more than ${LIMITS.sdOverrides} entries`);
  m.sdOverrides.forEach((o, i) => {
    add(`sd_overrides[${i}].path`, payloadPathProblem(o.path));
    add(`sd_overrides[${i}].sd`, base64Problem(o.sd));
  });
  for (let i = 1; i < m.sdOverrides.length; i++) {
    if (compareUtf8(m.sdOverrides[i - 1]!.path, m.sdOverrides[i]!.path) >= 0) {
      add('sd_overrides', 'paths must be strictly ascending bytewise');
      break;
    }
  }
  if (timestamps === 'producer') add('build.timestamp', timestampProblem(m.build.timestamp));
  else if (!isRfc3339Utc(m.build.timestamp)) add('build.timestamp', `"${m.build.timestamp}" must be RFC 3339 ending in Z`);
  const strings: Array<[string, string]> = [
    ['license', m.license],
    ['build.farm_id', m.build.farmId],
    ['build.source_ref', m.build.sourceRef],
  ];
  for (const [field, value] of strings) if (!value.isWellFormed()) add(field, 'is not valid UTF-8');
  return problems;
}

/** Advice that does not stop a build (D-7): the spec wants one line of printable ASCII under 80. */
export function manifestWarnings(m: Manifest): string[] {
  const warnings: string[] = [];
  if (!PRINTABLE_ASCII.test(m.description)) {
    warnings.push(`description of ${m.name} is not printable ASCII (PSD-009 §3.3.6); installers accept it, but consider ASCII`);
  }
  if ([...m.description].length >= 80) warnings.push(`description of ${m.name} is 80 characters or longer (PSD-009 §3.3.6 asks for less)`);
  return warnings;
}
