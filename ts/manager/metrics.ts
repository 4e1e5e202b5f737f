/**
 * `GET /metrics`: the farm in Prometheus' text format (prom-client). Counters and histograms are
 * fed where things happen (a build finishing, a publish, a webhook answered, a poll failing);
 * gauges that describe a state (the queue, the last good upload) are read when scraped. The
 * process metrics (CPU, memory, event loop, file descriptors) come with prom-client's defaults.
 */

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { BuildRecord } from './history.js';

export interface MetricsSources {
  /** Jobs waiting and running now, over every architecture. */
  queue(): Promise<{ waiting: number; running: number }>;
  /** The last successful upload (ISO time), when there was one since the start. */
  lastUpload(): string | undefined;
}

/** Builds take from seconds to hours (a kernel: 10–30 minutes). */
const BUILD_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
const PUBLISH_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class FarmMetrics {
  readonly registry = new Registry();
  private readonly builds: Counter<'recipe' | 'result'>;
  private readonly buildDuration: Histogram<'result'>;
  private readonly publishDuration: Histogram;
  private readonly webhooks: Counter<'outcome'>;
  private readonly pollErrors: Counter;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges prom-client names like counters: promtool (rightly) refuses a `_total` that is no counter.
    // The same counts remain, by type, in nodejs_active_handles and nodejs_active_resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    this.builds = new Counter({ name: 'peipkg_builds_total', help: 'Builds finished, by recipe and result (succeeded, failed, held, interrupted).', labelNames: ['recipe', 'result'], registers });
    this.buildDuration = new Histogram({ name: 'peipkg_build_duration_seconds', help: 'Time from a build starting to its result, by result.', labelNames: ['result'], buckets: BUILD_BUCKETS, registers });
    this.publishDuration = new Histogram({ name: 'peipkg_publish_duration_seconds', help: 'Time one publish of a batch into the repository takes.', buckets: PUBLISH_BUCKETS, registers });
    this.webhooks = new Counter({ name: 'peipkg_webhook_deliveries_total', help: 'Webhook deliveries answered, by outcome.', labelNames: ['outcome'], registers });
    this.pollErrors = new Counter({ name: 'peipkg_poll_errors_total', help: 'Polls of an upstream that failed (ls-remote, or the repository index unreadable).', registers });
    new Gauge({
      name: 'peipkg_queue_jobs',
      help: 'Build jobs now, by state (waiting, running).',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await sources.queue().catch(() => undefined);
        if (!counts) return;
        this.set({ state: 'waiting' }, counts.waiting);
        this.set({ state: 'running' }, counts.running);
      },
    });
    let lastUploadSeconds = 0;
    new Gauge({
      name: 'peipkg_upload_last_success_timestamp_seconds',
      help: 'When the repository was last uploaded to the remote successfully (Unix time; 0: not since the start).',
      registers,
      collect() {
        const last = sources.lastUpload();
        // The uploader forgets its last success when an attempt fails; the metric keeps it.
        if (last) lastUploadSeconds = Math.max(lastUploadSeconds, Date.parse(last) / 1000);
        this.set(lastUploadSeconds);
      },
    });
  }

  buildFinished(record: BuildRecord): void {
    this.builds.inc({ recipe: record.recipe, result: record.state });
    const started = Date.parse(record.startedAt ?? record.queuedAt);
    const finished = Date.parse(record.finishedAt ?? new Date().toISOString());
    if (!Number.isNaN(started) && !Number.isNaN(finished)) this.buildDuration.observe({ result: record.state }, Math.max(0, (finished - started) / 1000));
  }

  published(seconds: number): void {
    this.publishDuration.observe(seconds);
  }

  webhook(outcome: string): void {
    this.webhooks.inc({ outcome });
  }

  pollFailed(): void {
    this.pollErrors.inc();
  }
}
