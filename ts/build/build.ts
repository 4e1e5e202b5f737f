/**
 * `peipkg-build build`: recipe → build.sh → partition → one signed package per stanza
 * (`recipes-and-farm.md` §4.1), checked before anything is written and emitted all or nothing.
 *
 * Order: every check that needs no build runs first (flags, recipe, version, key); then the script
 * runs in a private scratch area; then the staged tree is partitioned and validated as a whole;
 * only then are packages written, into a temporary directory inside `--out`, and renamed in.
 */

import { chmod, lchown, mkdir, mkdtemp, stat } from 'node:fs/promises';
import { closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

import { InputError } from '../errors.js';
import { executableOnPath } from '../fs.js';
import { manifestProblems, manifestWarnings } from '../format/manifest.js';
import { packageFileName } from '../format/names.js';
import { timestampSeconds } from '../format/timestamp.js';
import { versionProblem } from '../format/version.js';
import { pack, removeTreeSync, sha256Files, signElf, swappedOwnerView, type FileDigest, type SigningKey } from '../native.js';
import { packageEntries, payloadOf, stanzaManifest, type BuildInfo } from './assemble.js';
import { OutputBatch } from './output.js';
import { partition, payloadProblems, PartitionError } from './partition.js';
import { loadRecipe, type Recipe } from './recipe.js';
import { INSIDE, sandboxCommand, sandboxDirs, type SandboxGrants, type SandboxMode } from './sandbox.js';
import { runBuildScript, SandboxUnavailableError, type BuildUser, type ScriptRun } from './script.js';
import { discardScratch, type ScratchRemoval } from './scratch.js';
import { walkStaged, type StagedEntry } from './stage.js';
import { blockingParent, chownTree, firstForeignOwned, ownCopy, privateCopy } from './user.js';
import type { ZstdSettings } from './compression.js';

export interface BuildRequest {
  recipePath: string;
  sourceDir: string;
  version: string;
  sourceRef: string;
  farmId: string;
  timestamp: string;
  outDir: string;
  signingKey: SigningKey | undefined;
  /** Write unsigned packages in the signable form (`PackSpec.deferredSignature`). */
  deferredSignature?: boolean;
  /** Keys for `[[sign]]`, by the name recipes use. */
  binarySignKeys: ReadonlyMap<string, SigningKey>;
  buildEnv: ReadonlyMap<string, string>;
  zstd: ZstdSettings;
  timeoutMs: number | undefined;
  /** Set when running as root: build.sh runs as this user. */
  user: BuildUser | undefined;
  sandbox: SandboxRequest;
  /** Who removes the scratch tree, and when (scratch.ts); default `background`. */
  scratchRemoval?: ScratchRemoval;
  warn: (message: string) => void;
}

/** How build.sh is isolated (sandbox.ts), and what the caller grants it. */
export interface SandboxRequest {
  mode: SandboxMode;
  grants: SandboxGrants;
  /** Host paths the script must not see where they lie in the trees the sandbox shows (key files). */
  hide: readonly string[];
}

export interface BuiltPackage {
  path: string;
  name: string;
  version: string;
  architecture: string;
  size: number;
  signed: boolean;
}

/** Everything that must hold before build.sh runs (D-6): the version and the recipe's own rules. */
async function preflight(request: BuildRequest): Promise<Recipe> {
  const version = versionProblem(request.version);
  if (version) throw new InputError(`--version "${request.version}": ${version}`);
  const { recipe } = await loadRecipe(request.recipePath);
  recipe.signs.forEach((rule, i) => {
    if (!request.binarySignKeys.has(rule.key)) {
      throw new InputError(`sign[${i}] ${rule.path}: no signing key named "${rule.key}" supplied (need --binary-sign-key ${rule.key}=PATH)`);
    }
  });
  return recipe;
}

/** When build.sh runs as another user, it needs a source tree it owns: use `--source` if the user owns it, else a private copy. */
async function sourceFor(request: BuildRequest, scratch: string): Promise<string> {
  const source = resolve(request.sourceDir);
  const user = request.user;
  if (!user) return source;
  let owner: number | undefined;
  try {
    owner = (await stat(source)).uid;
  } catch {
    return source; // the contract does not require it to exist (§3.4)
  }
  if (owner === user.uid) return source;
  const copy = join(scratch, 'source');
  request.warn(`build.sh runs as ${user.name}, which does not own ${source}, so $SOURCE_DIR is a private copy of it`);
  await privateCopy(source, copy, user);
  return copy;
}

/** build.sh, running as `user` without the sandbox, must be able to reach its scratch area through every parent directory. */
async function checkReachable(scratch: string, user: BuildUser): Promise<void> {
  const blocked = await blockingParent(scratch, user);
  if (blocked) {
    throw new InputError(
      `build.sh runs as ${user.name}, who cannot enter ${blocked.dir} (mode ${blocked.mode.toString(8)}); ` +
        'point TMPDIR at a directory others can traverse, such as /tmp',
    );
  }
}

/**
 * When build.sh runs as another user, it runs from a private copy of the recipe directory owned by
 * that user: the original may sit where the user cannot read it (a clone under /root), and the
 * build cannot change the recipe it was given. `$0` still has the recipe's other files beside it.
 */
async function scriptFor(recipe: Recipe, user: BuildUser | undefined, scratch: string): Promise<string> {
  if (!user) return recipe.buildScript;
  const copy = join(scratch, 'recipe');
  await privateCopy(recipe.dir, copy, user);
  return join(copy, relative(recipe.dir, recipe.buildScript));
}

/** As root, every staged entry must belong to the build user: anything else is not the script's work. */
function foreignEntries(staged: readonly StagedEntry[], user: BuildUser | undefined): string[] {
  if (!user) return [];
  return staged.filter((e) => e.uid !== user.uid).map((e) => e.path);
}

/** A directory to lay over `/build/source`; anything else (the contract lets it be missing) gives an empty one. */
async function sourceDirectory(path: string): Promise<string | undefined> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ? path : undefined;
}

/**
 * As root, a source the build user does not own is shown to the sandbox through an idmapped view
 * in which root's files are the build user's, so it can build in the tree without any entry being
 * given to it (a copy-up of each entry's metadata: about a second per 6,000 files). Where the
 * kernel cannot make one (before Linux 5.12), the sandbox gives the entries over instead.
 */
async function viewFor(source: string, user: BuildUser): Promise<number | undefined> {
  if ((await stat(source)).uid === user.uid) return undefined;
  try {
    return swappedOwnerView(source, user.uid, user.gid);
  } catch {
    return undefined;
  }
}

/**
 * The lower layer of $SOURCE_DIR without root. The user namespace maps only our own uid and gid,
 * and overlayfs cannot copy up a file that belongs to anyone else (EOVERFLOW): a tree holding such
 * a file is built from a copy that is all ours. As root every owner maps, and nothing is copied.
 */
async function rootlessSource(request: BuildRequest, source: string, scratch: string): Promise<string> {
  const foreign = await firstForeignOwned(source, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  if (foreign === undefined) return source;
  request.warn(`${foreign} belongs to another user or group, which the sandbox cannot give build.sh without root, so $SOURCE_DIR is a copy of ${source}`);
  const copy = join(scratch, 'source-copy');
  await ownCopy(source, copy);
  return copy;
}

/**
 * Runs build.sh in the sandbox. Resolves false when the sandbox cannot stand up on this host (the
 * script never ran) and the mode allows the fallback, after saying so; `require` throws instead.
 */
async function runSandboxed(request: BuildRequest, recipe: Recipe, scratch: string, run: ScriptRun): Promise<boolean> {
  const bwrap = await executableOnPath('bwrap');
  let reason = 'bubblewrap is not installed (Debian: apt-get install bubblewrap)';
  if (bwrap) {
    const user = request.user;
    if (user) for (const dir of [run.destDir, run.workDir]) await lchown(dir, user.uid, user.gid);
    // As root the script reads a copy it owns: the recipe's own files may be private to root.
    const recipeDir = user ? join(scratch, 'recipe') : recipe.dir;
    if (user) await privateCopy(recipe.dir, recipeDir, user);
    const given = await sourceDirectory(run.sourceDir);
    const dirs = await sandboxDirs(scratch, user);
    const sourceView = given !== undefined && user !== undefined ? await viewFor(given, user) : undefined;
    const command = await sandboxCommand({
      bwrap,
      rootless: user === undefined,
      source: given !== undefined && user === undefined ? await rootlessSource(request, given, scratch) : given,
      ...(sourceView === undefined ? {} : { sourceView }),
      destDir: run.destDir,
      workDir: run.workDir,
      ...dirs,
      recipeDir,
      script: relative(recipe.dir, recipe.buildScript),
      user,
      grants: request.sandbox.grants,
      hide: request.sandbox.hide,
    });
    try {
      await runBuildScript({
        ...run,
        sourceDir: INSIDE.source,
        destDir: INSIDE.destDir,
        workDir: INSIDE.work,
        sandbox: { command, home: INSIDE.home, network: request.sandbox.grants.network, ...(sourceView === undefined ? {} : { sourceView }) },
      });
      return true;
    } catch (error) {
      if (!(error instanceof SandboxUnavailableError)) throw error;
      reason = `namespaces are not available here (${error.message})`;
    } finally {
      if (sourceView !== undefined) closeSync(sourceView);
    }
  }
  if (request.sandbox.mode === 'require') throw new InputError(`the build sandbox is required (--sandbox require), but ${reason}`);
  request.warn(`the build sandbox is not available: ${reason}; build.sh runs without it, ${request.user ? `as ${request.user.name}` : 'as you'}, seeing the whole host (--sandbox require refuses instead)`);
  return false;
}

/** Today's isolation where there is no sandbox: as root, the build user on trees it owns. */
async function runUnsandboxed(request: BuildRequest, recipe: Recipe, scratch: string, run: ScriptRun): Promise<void> {
  if (request.user) {
    await checkReachable(scratch, request.user);
    await chownTree(scratch, request.user);
  }
  await runBuildScript({ ...run, sourceDir: await sourceFor(request, scratch), script: await scriptFor(recipe, request.user, scratch) });
}

async function hashClaimed(destDir: string, claims: readonly StagedEntry[][]): Promise<Map<string, FileDigest>> {
  const files = claims.flat().filter((e) => e.kind === 'file').map((e) => e.path);
  const results = await sha256Files(files.map((p) => join(destDir, p)));
  const digests = new Map<string, FileDigest>();
  results.forEach((r, i) => {
    if ('error' in r) throw r.error;
    digests.set(files[i]!, r);
  });
  return digests;
}

export async function runBuild(request: BuildRequest): Promise<BuiltPackage[]> {
  const recipe = await preflight(request);
  const info: BuildInfo = {
    version: request.version,
    timestamp: request.timestamp,
    farmId: request.farmId,
    sourceRef: request.sourceRef,
    license: recipe.license,
    homepage: recipe.homepage,
  };
  const scratch = await mkdtemp(join(tmpdir(), 'peipkg-build-'));
  let batch: OutputBatch | undefined;
  const abort = new AbortController();
  let scriptRunning = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (scriptRunning) {
      abort.abort(`interrupted by ${signal}`);
      return;
    }
    batch?.discardNow();
    try {
      removeTreeSync(scratch);
    } catch {
      // exiting anyway; the next build cannot see it (mkdtemp), and a farm empties its TMPDIR at start-up
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await chmod(scratch, 0o700);
    const destDir = join(scratch, 'destdir');
    const workDir = join(scratch, 'work');
    await mkdir(destDir, { mode: 0o755 });
    await mkdir(workDir, { mode: 0o755 });
    const run: ScriptRun = {
      script: recipe.buildScript,
      sourceDir: resolve(request.sourceDir),
      destDir,
      workDir,
      epochSeconds: timestampSeconds(request.timestamp),
      buildEnv: request.buildEnv,
      user: request.user,
      timeoutMs: request.timeoutMs,
      signal: abort.signal,
    };
    scriptRunning = true;
    try {
      const sandboxed = request.sandbox.mode !== 'off' && (await runSandboxed(request, recipe, scratch, run));
      if (!sandboxed) await runUnsandboxed(request, recipe, scratch, run);
    } finally {
      scriptRunning = false;
    }

    // [[sign]]: after build.sh, before partitioning; signing is the last change to each binary (§2.7).
    for (const [i, rule] of recipe.signs.entries()) {
      try {
        await signElf(join(destDir, rule.path), request.binarySignKeys.get(rule.key)!);
        // The signed copy was written by us (root); it is still the script's file.
        if (request.user) await lchown(join(destDir, rule.path), request.user.uid, request.user.gid);
      } catch (error) {
        throw new InputError(`sign[${i}] ${rule.path}: ${(error as Error).message.replace(`${join(destDir, rule.path)}: `, '')}`);
      }
    }

    const staged = walkStaged(destDir, { subject: 'build.sh staged', root: '$DESTDIR' });
    const foreign = foreignEntries(staged, request.user);
    if (foreign.length > 0) {
      throw new InputError(`staged entries not owned by the build user ${request.user?.name} (refusing to pack them):\n${foreign.map((p) => `  ${p}`).join('\n')}`);
    }
    const { claims, unmatched } = partition(recipe.packages, staged);
    for (const line of unmatched) request.warn(line);
    const problems = payloadProblems(recipe.packages, claims);
    if (problems.length > 0) throw new PartitionError(`payload validation failed:\n${problems.map((p) => `  ${p}`).join('\n')}`);

    const digests = await hashClaimed(destDir, claims);
    const planned = recipe.packages.map((stanza, i) => {
      const payload = payloadOf(claims[i]!, digests);
      const manifest = stanzaManifest(stanza, info, payload.files);
      const manifestIssues = manifestProblems(manifest, 'producer');
      if (manifestIssues.length > 0) throw new InputError(`package ${stanza.name}:\n${manifestIssues.map((p) => `  ${p}`).join('\n')}`);
      for (const warning of manifestWarnings(manifest)) request.warn(warning);
      return { manifest, payload };
    });

    batch = await OutputBatch.open(resolve(request.outDir));
    const built: BuiltPackage[] = [];
    for (const { manifest, payload } of planned) {
      const file = packageFileName(manifest.name, manifest.version, manifest.architecture);
      const outcome = await batch.write(file, (output) =>
        pack({
          output,
          mtime: timestampSeconds(request.timestamp),
          root: destDir,
          entries: packageEntries(manifest, payload),
          ...(request.signingKey ? { signingKey: request.signingKey } : {}),
          ...(request.deferredSignature ? { deferredSignature: true } : {}),
          compression: { level: request.zstd.level, overlapLog: request.zstd.overlapLog, jobSize: request.zstd.jobSize },
          fsync: true,
        }),
      );
      built.push({
        path: join(batch.dir, file),
        name: manifest.name,
        version: manifest.version,
        architecture: manifest.architecture,
        size: outcome.outputSize,
        signed: outcome.signature !== undefined,
      });
    }
    await batch.commit();
    batch = undefined;
    return built;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await batch?.discard();
    // The packages, if any, are durable by now (fsync'd, renamed in, directory fsync'd): the caller
    // need not wait for the scratch to go. A failure to remove it must not hide why the build
    // failed: it is said, not thrown.
    await discardScratch(scratch, request.scratchRemoval ?? 'background', request.warn);
  }
}
