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

/**
 * The rule for `description` (§3.3.6, D-7): printable text on one line. Shared with the recipe
 * loader, like every rule below that takes a value a recipe supplies.
 */
export function descriptionProblem(description: string): string | undefined {
  if (!description.isWellFormed()) return 'is not valid UTF-8';
  return PRINTABLE.test(description) ? undefined : 'must be printable text on one line (no control, format or line-break characters)';
}

/** The rule for `homepage` (§3.3.6): absent, or an http or https URL with a host. */
export function homepageProblem(homepage: string): string | undefined {
  if (homepage === '') return undefined;
  try {
    const url = new URL(homepage);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '') return undefined;
  } catch {
    // fall through
  }
  return `"${homepage}" must be an http or https URL with a host (write a space in it as %20)`;
}

/** The rule for `license` (free-form, §3.3.6): any well-formed text. */
export function licenseProblem(license: string): string | undefined {
  return license.isWellFormed() ? undefined : 'is not valid UTF-8';
}

/** The rule for a dependency's `arch` (§4.1): absent or `any`. */
export function relationArchProblem(arch: string): string | undefined {
  return arch === '' || arch === 'any' ? undefined : `must be absent or "any", got "${arch}"`;
}

/** The rule for one side effect (§4.3.4); `earlier` holds the ones listed before it. */
export function sideEffectProblem(effect: string, earlier: ReadonlySet<string>): string | undefined {
  if (!(SIDE_EFFECTS as readonly string[]).includes(effect)) return `unknown side effect "${effect}" (known: ${SIDE_EFFECTS.join(', ')})`;
  if (earlier.has(effect)) return `duplicate side effect "${effect}"`;
  return undefined;
}

function base64Problem(sd: string): string | undefined {
  if (!UNPADDED_BASE64.test(sd) || sd.length % 4 === 1) return 'is not unpadded standard base64';
  if (Buffer.from(sd, 'base64').length > LIMITS.sdBytes) return `decodes to more than ${LIMITS.sdBytes} bytes`;
  return undefined;
}

/** The fields of a manifest that a recipe's `[meta]` and `[[package]]` supply (all but version and architecture). */
export type DescribingFields = Pick<
  Manifest,
  'name' | 'description' | 'license' | 'homepage' | 'dependencies' | 'optionalDependencies' | 'conflicts' | 'provides' | 'replaces' | 'sideEffects'
>;

/** One problem and the wire path of the field it is about (`dependencies[2].constraint`). */
export interface FieldProblem {
  field: string;
  problem: string;
}

/**
 * Every problem of the fields a recipe supplies, by the manifest's rules — the one rule set that
 * `peipkg-build check`, `build` (before build.sh runs), `pack` and the verifier apply. A manifest's
 * name lists must also be in bytewise order (`order: 'sorted'`); a recipe's need not be (`'any'`),
 * since the build sorts them. A duplicate name is a problem either way.
 */
export function describingProblems(m: DescribingFields, order: 'sorted' | 'any'): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: string, problem: string | undefined): void => {
    if (problem) problems.push({ field, problem });
  };
  const names = (wire: string, list: ReadonlyArray<{ name: string }>, limit: number): void => {
    if (list.length > limit) add(wire, `more than ${limit} entries`);
    const seen = new Set<string>();
    list.forEach((entry, i) => {
      add(`${wire}[${i}].name`, packageNameProblem(entry.name));
      if (seen.has(entry.name)) add(`${wire}[${i}].name`, `duplicate name "${entry.name}" (PSD-009 §4.1 forbids identical names within a field)`);
      seen.add(entry.name);
    });
    if (order === 'sorted') {
      for (let i = 1; i < list.length; i++) {
        if (compareUtf8(list[i - 1]!.name, list[i]!.name) > 0) {
          add(wire, `names must be sorted bytewise ("${list[i]!.name}" comes before "${list[i - 1]!.name}")`);
          break;
        }
      }
    }
  };
  add('name', packageNameProblem(m.name));
  add('description', descriptionProblem(m.description));
  add('license', licenseProblem(m.license));
  add('homepage', homepageProblem(m.homepage));
  for (const [key, wire] of RELATION_FIELDS) {
    const list = m[key];
    names(wire, list, LIMITS.relations);
    list.forEach((r, i) => {
      add(`${wire}[${i}].arch`, relationArchProblem(r.arch));
      if (r.constraint !== '') add(`${wire}[${i}].constraint`, constraintProblem(r.constraint));
    });
  }
  names('provides', m.provides, LIMITS.relations);
  m.provides.forEach((p, i) => {
    if (p.version !== '') add(`provides[${i}].version`, versionProblem(p.version));
  });
  names('replaces', m.replaces, LIMITS.replaces);
  m.replaces.forEach((r, i) => {
    if (r.constraint !== '') add(`replaces[${i}].constraint`, constraintProblem(r.constraint));
  });
  const seen = new Set<string>();
  m.sideEffects.forEach((effect, i) => {
    add(`side_effects[${i}]`, sideEffectProblem(effect, seen));
    seen.add(effect);
  });
  return problems;
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
  problems.push(...describingProblems(m, 'sorted').map((p) => `${p.field}: ${p.problem}`));
  add('version', versionProblem(m.version));
  add('architecture', architectureProblem(m.architecture));
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
    ['build.farm_id', m.build.farmId],
    ['build.source_ref', m.build.sourceRef],
  ];
  for (const [field, value] of strings) if (!value.isWellFormed()) add(field, 'is not valid UTF-8');
  return problems;
}

/** Advice that does not stop a build (D-7): the spec wants one line of printable ASCII under 80. */
export function descriptionWarnings(name: string, description: string): string[] {
  const warnings: string[] = [];
  if (!PRINTABLE_ASCII.test(description)) {
    warnings.push(`description of ${name} is not printable ASCII (PSD-009 §3.3.6); installers accept it, but consider ASCII`);
  }
  if ([...description].length >= 80) warnings.push(`description of ${name} is 80 characters or longer (PSD-009 §3.3.6 asks for less)`);
  return warnings;
}

export function manifestWarnings(m: Manifest): string[] {
  return descriptionWarnings(m.name, m.description);
}
