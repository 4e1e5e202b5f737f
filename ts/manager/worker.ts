/**
 * `peipkg-manager worker`: a build machine of a farm of many. It takes jobs from the farm's Redis
 * for the architectures and keys it has, builds them unsigned, and sends the packages to the
 * coordinator, which alone signs and publishes. Start-up checks everything the config names
 * (token, keys, work directory, tools, the sandbox) and refuses a key that is the farm's own
 * package key; SIGTERM drains (running jobs finish, or are handed back after `drain_timeout`).
 */

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describeIsolation, detectIsolation } from '../build/sandbox.js';
import { lookupBuildUser, runningAsRoot } from '../build/user.js';
import { InputError } from '../errors.js';
import { signingKeyFlag } from '../flags.js';
import { createLogger, type LogFormat, type LogLevel } from '../log.js';
import { DirLock, signingKeyInfo } from '../native.js';
import { ConfigError } from './config.js';
import { redactUrl } from './daemon.js';
import { FarmWorker } from './farmWorker.js';
import { HttpSink } from './httpSink.js';
import { createRedis, JobSource, lockDurationFor, Registry } from './redisQueue.js';
import { findTools } from './tools.js';
import { loadWorkerConfig, type WorkerConfig } from './workerConfig.js';

export interface WorkerOptions {
  configPath: string;
  logLevel: LogLevel;
  logFormat: LogFormat | undefined;
}

/** Used until the coordinator has published the farm's own (`[queue].lock_window` on the coordinator). */
const DEFAULT_LOCK_WINDOW_MS = 60_000;
/** How often the farm's key fingerprint is compared with this worker's keys again. */
const KEY_CHECK_MS = 30_000;

async function readToken(config: WorkerConfig): Promise<string> {
  const file = config.worker.tokenFile;
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new InputError(`[worker].token_file ${file}: cannot read it: ${e.message}`);
  });
  const token = text.trim();
  if (token.length < 16) throw new InputError(`[worker].token_file ${file} holds ${token === '' ? 'nothing' : 'a token shorter than 16 characters'}; put the token the coordinator's [[worker]] stanza names in it`);
  return token;
}

/** A worker holding the farm's package key defeats the point of the coordinator: refused (exit 2). */
function checkNotFarmKey(config: WorkerConfig, fingerprints: Map<string, string>, farmFingerprint: string | undefined): void {
  if (!farmFingerprint) return;
  for (const [name, fingerprint] of fingerprints) {
    if (fingerprint === farmFingerprint) {
      throw new ConfigError(`${config.path}: [[signing_key]] ${name} is the farm's package-signing key (fingerprint ${fingerprint}); workers never hold it — remove it from this worker`);
    }
  }
}

export async function runWorker(options: WorkerOptions): Promise<number> {
  const config = await loadWorkerConfig(options.configPath);
  const log = createLogger({ level: options.logLevel, format: options.logFormat ?? config.worker.logFormat }).child({ worker: config.worker.id });
  await mkdir(config.worker.workDir, { recursive: true, mode: 0o755 }).catch((e: Error) => {
    throw new InputError(`[worker].work_dir ${config.worker.workDir}: cannot create it: ${e.message}`);
  });
  let lock: DirLock;
  try {
    lock = DirLock.acquire(config.worker.workDir);
  } catch {
    throw new InputError(`[worker].work_dir ${config.worker.workDir} is in use by another worker (one worker per work directory)`);
  }
  let redis: ReturnType<typeof createRedis> | undefined;
  try {
    const token = await readToken(config);
    const tools = await findTools();
    const root = runningAsRoot();
    const buildUser = root ? await lookupBuildUser(config.build.user) : undefined;
    const fingerprints = new Map<string, string>();
    for (const key of config.signingKeys) {
      const loaded = await signingKeyFlag(key.private, `[[signing_key]] ${key.name}: private`, buildUser !== undefined, buildUser?.uid);
      fingerprints.set(key.name, signingKeyInfo(loaded).fingerprint);
    }
    const tmp = join(config.worker.workDir, 'tmp');
    await mkdir(tmp, { recursive: true });
    const isolation = await detectIsolation(config.build.sandbox, buildUser, tmp, '[build].sandbox = "require"');
    log.info('build isolation', { isolation: describeIsolation(isolation, buildUser) });
    if (isolation.kind !== 'sandbox' && !root) log.warn('not running as root and without the sandbox: build scripts run as this user and could read its keys');
    const secrets = [config.path, config.worker.tokenFile, config.worker.workDir, ...config.signingKeys.map((k) => k.private)];
    const sandboxFlags = isolation.kind === 'sandbox' ? ['--sandbox', 'require', ...secrets.flatMap((p) => ['--hide', p])] : ['--sandbox', 'off'];

    redis = createRedis(config.worker.queueUrl, log, 'worker');
    const registry = new Registry(redis);
    const settings = await Promise.race([registry.settings(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000).unref())]);
    if (!settings) log.warn('redis unreachable at start-up; waiting for it', { url: redactUrl(config.worker.queueUrl) });
    checkNotFarmKey(config, fingerprints, settings?.farmFingerprint);
    const lockMs = lockDurationFor(settings?.lockWindowMs ?? DEFAULT_LOCK_WINDOW_MS);
    const capabilities = { architectures: config.worker.architectures, keys: config.signingKeys.map((k) => k.name) };
    const source = new JobSource(config.worker.queueUrl, registry, capabilities, lockMs, log);
    const worker = new FarmWorker({
      id: config.worker.id,
      capabilities,
      concurrency: config.worker.concurrency,
      source,
      registry,
      sink: new HttpSink(config.worker.coordinator, token),
      log,
      workDir: config.worker.workDir,
      peipkgBuild: tools.peipkgBuild,
      build: {
        timeoutMs: config.build.timeoutMs,
        cloneTimeoutMs: config.build.cloneTimeoutMs,
        zstdLevel: config.build.zstdLevel,
        buildUser,
        sandboxFlags,
        sandboxed: isolation.kind === 'sandbox',
      },
      signKeys: new Map(config.signingKeys.map((k) => [k.name, k.private])),
    });
    log.info('worker starting', { architectures: capabilities.architectures.join(','), keys: capabilities.keys.join(','), coordinator: config.worker.coordinator, concurrency: config.worker.concurrency });
    worker.start();
    return await new Promise<number>((resolve, reject) => {
      let stopping = false;
      const stop = (code: number): void => {
        clearInterval(keyCheck);
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        process.off('SIGHUP', onHup);
        void source.close().then(() => {
          log.info('worker stopped');
          resolve(code);
        });
      };
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) {
          log.warn('second signal: handing running jobs back now', { signal });
          void worker.drain(0);
          return;
        }
        stopping = true;
        log.info('draining: finishing running jobs before exit', { signal, drain_timeout_ms: config.worker.drainTimeoutMs });
        void worker.drain(config.worker.drainTimeoutMs).then(() => stop(0));
      };
      // The coordinator may start after this worker: its key is checked again until it is known.
      const keyCheck = setInterval(() => {
        void registry.settings().then((s) => {
          try {
            checkNotFarmKey(config, fingerprints, s.farmFingerprint);
          } catch (error) {
            const refusal = error instanceof Error ? error : new Error(String(error));
            log.error('refusing to build', { err: refusal.message });
            stopping = true;
            void worker.drain(0).then(() => {
              clearInterval(keyCheck);
              void source.close().finally(() => reject(refusal));
            });
          }
        }, () => undefined);
      }, KEY_CHECK_MS);
      keyCheck.unref();
      // A hang-up must not kill a worker in the middle of its builds; its config is read at start only.
      const onHup = (): void => log.info('SIGHUP ignored: restart the worker to apply a changed worker.toml');
      process.on('SIGHUP', onHup);
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
  } catch (error) {
    if (error instanceof InputError) log.error('worker exited with error', { err: error.message });
    throw error;
  } finally {
    redis?.disconnect();
    lock.release();
  }
}
