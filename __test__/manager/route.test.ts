/** Routing a job to the workers that can build it (route.ts): architectures, binary-signing keys, and why a job waits. */

import test from 'ava';

import { canTake, queueName, whyWaiting, type Route } from '../../ts/manager/route.js';

const route = (architectures: string[], keys: string[] = []): Route => ({ architectures, keys });
const amd = { architectures: ['x86_64', 'noarch'], keys: [] };
const arm = { architectures: ['aarch64', 'noarch'], keys: ['kernel'] };

test('a noarch-only job goes to any worker; an aarch64 one only to a worker with aarch64', (t) => {
  t.true(canTake(amd, route([])));
  t.true(canTake(arm, route([])));
  t.false(canTake(amd, route(['aarch64'])));
  t.true(canTake(arm, route(['aarch64'])));
});

test('a recipe with stanzas of two architectures needs a worker with both', (t) => {
  const both = route(['aarch64', 'x86_64']);
  t.false(canTake(amd, both));
  t.false(canTake(arm, both));
  t.true(canTake({ architectures: ['aarch64', 'x86_64'], keys: [] }, both));
  t.is(whyWaiting(both, [amd, arm]), 'no worker for aarch64 and x86_64 at once');
});

test('a job granted a signing key goes only to a worker holding it', (t) => {
  t.false(canTake(amd, route([], ['kernel'])));
  t.true(canTake(arm, route([], ['kernel'])));
  t.is(whyWaiting(route(['x86_64'], ['kernel']), [amd, arm]), 'no worker for x86_64 holding kernel at once');
  t.is(whyWaiting(route([], ['tcb']), [amd, arm]), 'no worker holding key tcb');
});

test('why a job waits names what no live worker has', (t) => {
  t.is(whyWaiting(route(['aarch64']), [amd]), 'no worker for aarch64');
  t.is(whyWaiting(route(['aarch64']), []), 'no worker for aarch64');
  t.is(whyWaiting(route([]), []), 'no worker connected');
  t.is(whyWaiting(route(['aarch64']), [arm]), undefined);
});

test('queue names hold no ":" and differ per route', (t) => {
  const names = [route([]), route(['aarch64']), route(['aarch64', 'x86_64']), route(['aarch64'], ['kernel']), route([], ['a:b'])].map(queueName);
  t.deepEqual(names.slice(0, 4), ['build.any', 'build.aarch64', 'build.aarch64+x86_64', 'build.aarch64.keys.kernel']);
  t.true(names.every((n) => !n.includes(':')));
  t.is(new Set(names).size, names.length);
});
