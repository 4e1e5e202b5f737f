/**
 * `GET /metrics`: the farm in Prometheus' text format, checked by Prometheus' own `promtool check
 * metrics` on the real output of a daemon that built, published, failed a poll and refused a webhook.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { repoRoot } from '../helpers/fixtures.js';
import { freePort, makeFarm, makeUpstream, startDaemon, waitFor, writeRecipe } from '../helpers/farm.js';

test('/metrics passes promtool and counts builds, publishes, polls that failed, webhooks and the queue', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"` });
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await writeRecipe(farm.recipesDir, { id: 'gone', git: join(farm.root, 'no-such-upstream.git') });
  const daemon = startDaemon(t, farm.configPath);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    const status = (await (await fetch(`${base}/status`).catch(() => undefined))?.json().catch(() => undefined)) as { builds_succeeded?: number } | undefined;
    return status?.builds_succeeded === 1;
  }, 90_000, 'the build');
  t.is((await fetch(`${base}/webhooks/github`, { method: 'POST', body: '{}' })).status, 404, 'webhooks are not enabled on this farm');

  const response = await fetch(`${base}/metrics`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const body = await response.text();
  const promtool = await execa('promtool', ['check', 'metrics'], { input: body, reject: false });
  t.is(promtool.exitCode, 0, `${promtool.stdout}${promtool.stderr}`);

  const lines = body.split('\n');
  const value = (series: string): number | undefined => {
    const line = lines.find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  t.is(value('peipkg_builds_total{recipe="hello-peios",result="succeeded"}'), 1);
  t.is(value('peipkg_build_duration_seconds_count{result="succeeded"}'), 1);
  t.is(value('peipkg_publish_duration_seconds_count'), 1);
  t.true((value('peipkg_publish_duration_seconds_sum') ?? 0) > 0);
  t.is(value('peipkg_queue_jobs{state="waiting"}'), 0);
  t.is(value('peipkg_queue_jobs{state="running"}'), 0);
  t.true((value('peipkg_poll_errors_total') ?? 0) >= 1, 'the recipe whose upstream does not exist failed its poll');
  t.is(value('peipkg_webhook_deliveries_total{outcome="webhooks_disabled"}'), 1);
  t.is(value('peipkg_upload_last_success_timestamp_seconds'), 0, 'no upload is configured');
  t.true((value('process_cpu_seconds_total') ?? -1) >= 0, 'process metrics are there');
  t.true(lines.some((l) => l.startsWith('nodejs_eventloop_lag_seconds ')));

  // The example alerts in contrib/ are valid rules, and every series they use is one the farm exports.
  const rulesFile = join(repoRoot, 'contrib/prometheus/peipkg-alerts.yml');
  const rules = await execa('promtool', ['check', 'rules', rulesFile], { reject: false });
  t.is(rules.exitCode, 0, `${rules.stdout}${rules.stderr}`);
  const used = new Set((await readFile(rulesFile, 'utf8')).match(/\bpeipkg_[a-z_]+/g) ?? []);
  t.true(used.size >= 4);
  for (const name of used) t.true(lines.some((l) => l.startsWith(`# TYPE ${name} `)), `${name} is exported`);
  daemon.child.kill('SIGTERM');
});
