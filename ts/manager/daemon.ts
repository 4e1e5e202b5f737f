/**
 * The manager's lifecycle (`recipes-and-farm.md` §8.1, §8.13, D-27, D-28): start-up checks, the
 * lock on `state_dir`, creating the repository on first run, then either one sweep (`--once`) or
 * the daemon — watching, HTTP, SIGHUP to reload recipes, SIGTERM/SIGINT to drain.
 */

import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { pathExists } from '../fs.js';
import { describeIsolation, detectIsolation, type Isolation } from '../build/sandbox.js';
import type { BuildUser } from '../build/script.js';
import { blockingParent, lookupBuildUser, runningAsRoot } from '../build/user.js';
import { InputError } from '../errors.js';
import { signingKeyFlag } from '../flags.js';
import { parentDeathSignalAvailable } from '../processGroup.js';
import { formatTimestamp } from '../format/timestamp.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../log.js';
import { DirLock, removeTree } from '../native.js';
import { loadConfig, type Config, type ListenAddress } from './config.js';
import { artifactRouter } from './artifactHttp.js';
import { Farm, readWorkerTokens, redisUrl } from './farm.js';
import { queueKey } from './payload.js';
import { createRedis } from './redisQueue.js';
import type { Redis } from 'ioredis';
import { loadGrants, type Grants } from './grants.js';
import { History, shownRecord } from './history.js';
import { ensureControlToken } from './control.js';
import { createHttpApp, listen } from './http.js';
import { stateDirs, type Tools } from './job.js';
import { loadRoster, type Roster } from './roster.js';
import { runStep } from './subprocess.js';
import { findTools } from './tools.js';

export interface ManagerOptions {
  configPath: string;
  logLevel: LogLevel;
  logFormat: LogFormat | undefined;
  once: boolean;
}

async function loadRosterLogged(config: Config, grants: Grants, log: Logger): Promise<Roster> {
  const roster = await loadRoster(config.manager.recipesDir, config.poll.defaultIntervalMs);
  log.info('recipe roster loaded', { count: roster.recipes.length, dir: config.manager.recipesDir, skipped: roster.skipped.length });
  for (const s of roster.skipped) log.error('recipe skipped', { recipe: s.id, err: s.problems.join('; ') });
  for (const r of roster.recipes) {
    for (const w of r.warnings) log.warn('recipe warning', { recipe: r.id, warning: w });
    const ungranted = grants.ungrantedKeys(r);
    if (ungranted.length > 0) {
      log.warn('recipe signs binaries with keys no [[grant]] gives it; its builds will fail', { recipe: r.id, keys: ungranted.join(',') });
    }
  }
  return roster;
}

/**
 * Creates the state directories and empties the work areas. We hold the state lock, so whatever
 * sources/, stage/ and publish/ hold was left by a manager that died mid-build: it is never
 * published (only a running job publishes its own batch) and a retry starts from a fresh clone.
 * Quarantined batches are the operator's and are kept.
 */
async function prepareStateDirs(stateDir: string, log: Logger): Promise<void> {
  const dirs = stateDirs(stateDir);
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const dir of [dirs.sources, dirs.stage, dirs.publish, dirs.tmp, dirs.upload, dirs.incoming, dirs.local]) {
    for (const name of await readdir(dir)) {
      log.info('removing work left by an earlier run', { path: join(dir, name) });
      // Scratch a build script filled, nested however deep: removeTree, which no PATH_MAX stops.
      await removeTree(join(dir, name));
    }
  }
}

/**
 * Which isolation builds get here, found once by running the sandbox (sandbox.ts). Without it, as
 * root, build scripts run as the build user straight in the state directory, so every directory
 * above it must let that user through: a start-up refusal with the fix, never a per-build `cd` failure.
 */
async function buildIsolation(config: Config, buildUser: BuildUser | undefined, log: Logger): Promise<Isolation> {
  const dirs = stateDirs(config.manager.stateDir);
  const isolation = await detectIsolation(config.build.sandbox, buildUser, dirs.tmp, '[build].sandbox = "require"');
  const description = describeIsolation(isolation, buildUser);
  if (isolation.kind === 'sandbox') log.info('build isolation', { isolation: description });
  else log.warn('build isolation', { isolation: description });
  if (isolation.kind === 'sandbox' || !buildUser) return isolation;
  for (const dir of [dirs.sources, dirs.tmp]) {
    const blocked = await blockingParent(join(dir, 'build'), buildUser);
    if (!blocked) continue;
    throw new InputError(
      `[manager].state_dir ${config.manager.stateDir}: build scripts run here without the sandbox, as ${buildUser.name}, who cannot enter ` +
        `${blocked.dir} (mode ${blocked.mode.toString(8)}); put state_dir where other users can traverse (such as /var/lib/peipkg), ` +
        `or let builds use the sandbox (${isolation.kind === 'unsandboxed' ? isolation.reason : '[build].sandbox is "off"'})`,
    );
  }
  return isolation;
}

/** `[http].webhook_secret_file`: required and non-empty once a recipe opts into webhooks (D-16). */
async function webhookSecret(config: Config, roster: Roster): Promise<Buffer | undefined> {
  if (!config.http.addr) return undefined;
  const wanted = roster.recipes.some((r) => r.githubWebhook);
  const file = config.http.webhookSecretFile;
  if (file === '') {
    if (wanted) throw new InputError('a recipe sets github_webhook = true, but [http].webhook_secret_file is not set; webhooks need a secret');
    return undefined;
  }
  const secret = (await readFile(file, 'utf8').catch((e: Error) => {
    throw new InputError(`read webhook secret ${file}: ${e.message}`);
  })).replace(/[ \t\r\n]+$/, '');
  if (secret === '') throw new InputError(`webhook secret ${file} is empty; put a long random secret in it (openssl rand -hex 32)`);
  return Buffer.from(secret);
}

/** Creates `<state_dir>/repo` with `peipkg-repo init` on the first run. */
async function ensureRepository(config: Config, tools: Tools, log: Logger): Promise<void> {
  const repo = stateDirs(config.manager.stateDir).repo;
  if (await pathExists(join(repo, 'repo.json'))) return;
  log.info('creating the repository', { dir: repo });
  await runStep('peipkg-repo init', tools.peipkgRepo, [
    'init', '--name', config.repo.name, ...(config.repo.description ? ['--description', config.repo.description] : []),
    '--sign-key', config.signing.keyFile, '--timestamp', formatTimestamp(new Date()), '--out', repo,
  ], { timeoutMs: 60_000 });
}

/** Creates `[manager].state_dir`; a path that cannot be one is the operator's to fix, not a bug. */
async function makeStateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'it, or a directory above it, is a file' : (error as Error).message;
    throw new InputError(`[manager].state_dir ${dir}: cannot create the state directory: ${why}; point state_dir at a directory`);
  }
  if (!(await stat(dir)).isDirectory()) throw new InputError(`[manager].state_dir ${dir} is not a directory; point state_dir at a directory`);
}

/** Runs the manager; resolves to the exit code. Start-up failures throw (the CLI reports them). */
export async function runManager(options: ManagerOptions): Promise<number> {
  const config = await loadConfig(options.configPath);
  const log = createLogger({ level: options.logLevel, format: options.logFormat ?? config.manager.logFormat });
  await makeStateDir(config.manager.stateDir);
  let lock: DirLock;
  let redisClient: Redis | undefined;
  try {
    lock = DirLock.acquire(config.manager.stateDir);
  } catch {
    throw new InputError(`state_dir ${config.manager.stateDir} is in use by another peipkg-manager (one manager per state directory)`);
  }
  try {
    const tools = await findTools();
    log.info('tools found', { 'peipkg-build': tools.peipkgBuild, 'peipkg-repo': tools.peipkgRepo, from: Object.values(tools.origin).join(',') });
    const root = runningAsRoot();
    const buildUser = root ? await lookupBuildUser(config.build.user) : undefined;
    const farmKey = await signingKeyFlag(config.signing.keyFile, '[signing].key_file', true, buildUser?.uid);
    const grants = await loadGrants(config, buildUser);
    if (!parentDeathSignalAvailable()) log.warn('setpriv (util-linux) is missing: builds may keep running if the manager is killed outright');
    const roster = await loadRosterLogged(config, grants, log);
    await prepareStateDirs(config.manager.stateDir, log);
    const isolation = await buildIsolation(config, buildUser, log);
    if (!root && isolation.kind !== 'sandbox') log.warn('not running as root and without the sandbox: build scripts run as this user and could read the signing key');
    const secret = await webhookSecret(config, roster);
    log.info('peipkg-manager starting', { config: config.path, farm_id: config.manager.id, mode: options.once ? 'once' : 'daemon' });
    await ensureRepository(config, tools, log);
    const history = await History.open(config.manager.stateDir, config.manager.historyKeep);
    await history.removeOrphanLogs();
    const tokens = await readWorkerTokens(config);
    const redis = config.queue.backend === 'redis' ? await connectRedis(config, log) : undefined;
    redisClient = redis?.client;
    const farm = new Farm({ config, tools, log, history, buildUser, isolation, grants, farmKey, ...(redis ? { redis } : {}) });
    farm.setRoster(roster);
    await farm.startQueue(tokens);
    // A damaged repository is reported (and re-checked) rather than fatal: builds go on and are held.
    await farm.checkRepository();
    // The remote may be behind: an upload that failed, or was cut short by a stop, before this start.
    farm.uploader?.request();
    return options.once ? await sweepOnce(farm, roster, log) : await daemon(farm, config, grants, log, secret, history);
  } catch (error) {
    if (error instanceof InputError) log.error('manager exited with error', { err: error.message });
    throw error;
  } finally {
    redisClient?.disconnect();
    lock.release();
  }
}

/** Connects to `[queue].url`. Unreachable is not fatal (the farm waits for it); refused credentials are. */
async function connectRedis(config: Config, log: Logger): Promise<{ url: string; client: Redis; queueKey: Buffer }> {
  const url = await redisUrl(config);
  const client = createRedis(url, log, 'coordinator');
  try {
    await Promise.race([client.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5s')), 5_000).unref())]);
    log.info('queue connected', { backend: 'redis', url: redactUrl(url) });
  } catch (error) {
    const message = (error as Error).message;
    if (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(message)) {
      client.disconnect();
      throw new InputError(`[queue].url ${redactUrl(url)}: Redis refused the credentials (${message}); set the password in the URL or in url_file`);
    }
    log.warn('redis unreachable at start-up; waiting for it (queued work resumes when it is back)', { url: redactUrl(url), err: message });
  }
  return { url, client, queueKey: await queueKey(config.manager.stateDir) };
}

/** The URL without its password, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

async function sweepOnce(farm: Farm, roster: Roster, log: Logger): Promise<number> {
  // SIGINT/SIGTERM cancel the sweep (§8.13): running builds are stopped and recorded `interrupted`
  // (not left running on their own), nothing new starts, and the exit status is 0.
  let stoppedBy: NodeJS.Signals | undefined;
  const onStop = (signal: NodeJS.Signals): void => {
    if (stoppedBy) return;
    stoppedBy = signal;
    log.warn('cancelling the sweep: stopping running builds', { signal });
    farm.abort.abort(`stopped by ${signal}`);
    void farm.poller.stop();
    void farm.queue.drain();
    farm.stopLocalNow();
    void farm.uploader?.stop();
    void farm.stopRepositoryWatch();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  let unwatched: string[];
  try {
    farm.poller.setRecipes(farm.recipes());
    unwatched = await farm.poller.pollAll();
    await farm.queue.idle();
    await farm.uploader?.idle();
    await farm.poller.stop();
    await farm.stopQueue(0);
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  }
  if (stoppedBy) {
    log.info('peipkg-manager stopped');
    return 0;
  }
  // An upload that gave up (retries spent, or refused by the rollback guard) fails the sweep too:
  // the public repository is behind, and a cron job must be able to see it.
  const uploadFailed = farm.uploader?.status().state === 'failed';
  await farm.stopRepositoryWatch();
  const damage = farm.repository.current();
  if (damage) log.error('sweep ended with the repository damaged; held builds are published by the next run that finds it repaired', { err: damage.error });
  const { built, failed, waiting } = farm.sweep;
  log.info('once complete', { built, failed, waiting });
  // A version left waiting (in its back-off, or held) is work not done: a cron job must see it.
  return farm.sweepFailed || waiting > 0 || uploadFailed || damage !== undefined || unwatched.length > 0 || roster.skipped.length > 0 ? 1 : 0;
}

/** Why the HTTP server could not start, as advice naming `[http].addr`; other errors pass through. */
const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another peipkg-manager, or another server, listens there); stop it or choose another port',
  EADDRNOTAVAIL: 'no network interface of this machine has that address; use one of its addresses, 127.0.0.1, or leave the host out to listen on all of them',
  EACCES: 'binding ports below 1024 needs root or CAP_NET_BIND_SERVICE; choose a port above 1023',
  ENOTFOUND: 'the host name does not resolve; use an IP address or a name this machine can resolve',
  EAI_AGAIN: 'the host name could not be resolved right now (DNS unavailable); use an IP address',
};

async function listenOn(app: Parameters<typeof listen>[0], addr: ListenAddress): Promise<Awaited<ReturnType<typeof listen>>> {
  try {
    return await listen(app, addr);
  } catch (e) {
    const problem = LISTEN_PROBLEMS[(e as NodeJS.ErrnoException).code ?? ''];
    if (!problem) throw e;
    throw new InputError(`[http].addr ${addr.host ?? ''}:${addr.port}: cannot listen there: ${problem}`);
  }
}

/** The URL this host's operators reach the server at: the address it listens on, or the host name when that is every interface. */
export function httpBase(addr: ListenAddress, port: number): string {
  const host = addr.host === undefined || addr.host === '' || addr.host === '0.0.0.0' || addr.host === '::' ? hostname() : addr.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

async function daemon(farm: Farm, config: Config, grants: Grants, log: Logger, secret: Buffer | undefined, history: History): Promise<number> {
  let server: Awaited<ReturnType<typeof listen>> | undefined;
  if (config.http.addr) {
    const controlToken = await ensureControlToken(config.manager.stateDir);
    const app = createHttpApp({
      status: () => farm.status(),
      builds: () => history.recent(Number.MAX_SAFE_INTEGER).map(shownRecord),
      buildState: (id) => history.get(id)?.state,
      control: { token: controlToken, retry: (request) => farm.retry(request) },
      repoDir: stateDirs(config.manager.stateDir).repo,
      unhealthy: () => farm.unhealthy(),
      buildLog: (id) => (history.get(id) ? history.logPath(id) : undefined),
      webhookSecret: secret,
      webhookMaxBody: config.http.webhookMaxBody,
      onRepositoryPush: (urls) => farm.onRepositoryPush(urls),
      log,
      ...(farm.receiver ? { artifacts: artifactRouter(farm.receiver, log) } : {}),
      metrics: async () => ({ contentType: farm.metrics.registry.contentType, body: await farm.metrics.registry.metrics() }),
      onWebhook: (outcome) => farm.metrics.webhook(outcome),
    });
    server = await listenOn(app, config.http.addr);
    farm.httpBase = httpBase(config.http.addr, server.port);
    log.info('webhook server listening', { addr: `${config.http.addr.host ?? ''}:${server.port}`, dashboard: `${farm.httpBase}/` });
  }
  farm.poller.watch(farm.recipes());
  // Every timer of the farm is unref'd; without an HTTP server nothing else would keep the daemon
  // alive between polls, and it would exit (13, "unsettled top-level await") as soon as it was idle.
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  return new Promise<number>((resolve) => {
    let stopping = false;
    let reloading = Promise.resolve();
    const onHup = (): void => {
      log.info('received SIGHUP; reloading recipes');
      reloading = reloading.then(async () => {
        try {
          const roster = await loadRosterLogged(config, grants, log);
          farm.setRoster(roster);
          // Workers removed from the config are revoked now; other changes to it need a restart.
          if (config.queue.backend === 'redis') farm.setWorkerTokens(await readWorkerTokens(await loadConfig(config.path)));
          farm.poller.watch(farm.recipes());
          log.info('recipes reloaded', { count: roster.recipes.length, dir: config.manager.recipesDir });
          // An operator who repaired the repository need not wait for the next check.
          if (farm.repository.current()) void farm.checkRepository();
        } catch (error) {
          log.error('reload failed; continuing with the recipes and workers loaded before', { err: (error as Error).message });
        }
      });
    };
    const onStop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: stopping running builds now', { signal });
        farm.abort.abort('stopped by a second signal');
        farm.stopLocalNow();
        return;
      }
      stopping = true;
      log.info('draining: finishing running builds before exit', { signal, drain_timeout_ms: config.manager.drainTimeoutMs });
      const timer = setTimeout(() => {
        log.warn('drain timeout reached: stopping running builds');
        farm.abort.abort(`stopped after the ${Math.round(config.manager.drainTimeoutMs / 1000)}s drain timeout`);
      }, config.manager.drainTimeoutMs);
      farm.draining = true;
      void (async () => {
        await farm.poller.stop();
        // /healthz and /status keep answering through the drain (and workers can still deliver).
        await farm.queue.drain();
        await farm.stopQueue(config.manager.drainTimeoutMs);
        await farm.stopRepositoryWatch();
        await farm.uploader?.stop();
        await new Promise<void>((r) => (server ? server.server.close(() => r()) : r()));
        server?.server.closeAllConnections();
        clearTimeout(timer);
        clearInterval(keepAlive);
        process.off('SIGHUP', onHup);
        process.off('SIGTERM', onStop);
        process.off('SIGINT', onStop);
        log.info('peipkg-manager stopped');
        resolve(0);
      })();
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}
