/** Cron jobs once per tick across the cluster: two databases on one file stand in for two controllers. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { claimTick, minuteTick, runOncePerTick } from '../../../controller/src/ops/cluster-jobs.js';
import { openShared, type SharedDb } from '../../helpers/shared-db.js';

let shared: SharedDb;
test.before(async () => {
  shared = await openShared(2);
});
test.after(async () => {
  await shared.close();
});

test('the tick is the scheduled minute', () => {
  assert.is(minuteTick(new Date('2026-11-30T18:07:59.999Z')), '2026-11-30T18:07:00.000Z');
  assert.is(minuteTick(new Date('2026-11-30T18:08:00.000Z')), '2026-11-30T18:08:00.000Z');
});

test('two controllers claiming the same tick: exactly one wins; the next tick is claimable again', async () => {
  const [a, b] = shared.dbs as [(typeof shared.dbs)[0], (typeof shared.dbs)[0]];
  const t1 = '2026-11-30T18:07:00.000Z';
  const t2 = '2026-11-30T18:08:00.000Z';
  const first = await Promise.all([
    claimTick(a, 'job', t1),
    claimTick(b, 'job', t1),
    claimTick(a, 'job', t1),
  ]);
  assert.equal(first.filter(Boolean).length, 1, JSON.stringify(first));
  assert.not.ok(await claimTick(b, 'job', t1), 'a tick is claimed once, also later');
  const second = await Promise.all([claimTick(b, 'job', t2), claimTick(a, 'job', t2)]);
  assert.equal(second.filter(Boolean).length, 1, JSON.stringify(second));
  assert.not.ok(await claimTick(a, 'job', t1), 'an older tick (a late controller) never runs again');
  assert.ok(await claimTick(a, 'other job', t1), 'jobs are claimed each on its own');
});

test('runOncePerTick runs the job on the controller that claimed the tick only', async () => {
  let runs = 0;
  const at = new Date('2026-11-30T18:09:00.004Z');
  const job = async () => void runs++;
  const ran = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      runOncePerTick(shared.dbs[i % 2]!, 'count', new Date(at.getTime() + i), job),
    ),
  );
  assert.is(runs, 1);
  assert.is(ran.filter(Boolean).length, 1);
});

test.run();
