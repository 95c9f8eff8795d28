/**
 * Node validation tasks are leased rows: two TaskRunners with their own database connections on one
 * file stand in for two controllers. A task whose controller dies is taken over and finishes once;
 * a stopping controller hands its tasks over at once; a live one keeps its tasks by its heartbeat.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { systemClock } from '../../../lib/platform/clock.js';
import { SignStore } from '../../../controller/src/sign/store.js';
import { TaskRunner, type TaskWork } from '../../../controller/src/sign/tasks.js';
import type { Task } from '../../../controller/src/sign/model.js';
import { openShared, type SharedDb } from '../../helpers/shared-db.js';
import { sleep, waitFor, watchdog } from '../../helpers/wait.js';

watchdog(120);

let shared: SharedDb;
let nodeId: number;
const runners: TaskRunner[] = [];

test.before(async () => {
  shared = await openShared(2);
  await shared.dbs[0]!.run('INSERT INTO nodes (name, created_at) VALUES (?, ?)', [
    'n1',
    new Date().toISOString(),
  ]);
  nodeId = (await shared.dbs[0]!.get<{ id: number }>('SELECT id FROM nodes'))!.id;
});

test.after(async () => {
  for (const r of runners) await r.stop();
  await shared.close();
});

/** A step of work the test ends when it wants (resolve or reject), counting the runs. */
class Gate {
  runs = 0;
  private waiting: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  work = (): TaskWork => async (_task, progress) => {
    this.runs++;
    await progress(30);
    await new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    await progress(80);
  };
  open() {
    for (const w of this.waiting.splice(0)) w.resolve();
  }
  fail(message: string) {
    for (const w of this.waiting.splice(0)) w.reject(new Error(message));
  }
}

function runner(db: number, controllerId: string, gate: Gate, leaseMs: number, pollMs = 100) {
  const r = new TaskRunner(new SignStore(shared.dbs[db]!), systemClock, gate.work, {
    controllerId,
    leaseMs,
    pollMs,
  });
  runners.push(r);
  return r;
}

const row = (id: string) =>
  shared.dbs[0]!.get<Record<string, unknown>>('SELECT * FROM tasks WHERE id = ?', [id]);

async function finished(r: TaskRunner, id: string): Promise<Task> {
  return waitFor(
    `task ${id} finished`,
    async () => {
      const t = await r.get(id);
      return t.state === 'SUCCESS' || t.state === 'FAILURE' ? t : undefined;
    },
    { intervalMs: 20 },
  );
}

test('a task whose controller died is taken over by another and finishes SUCCESS exactly once', async () => {
  const deadGate = new Gate();
  const liveGate = new Gate();
  // A never starts its loop: no heartbeat renews the lease its submit took, as after a kill -9
  const dead = runner(0, 'controller-a', deadGate, 1_000);
  const live = runner(1, 'controller-b', liveGate, 1_000);
  live.start();
  const task = await dead.submit('activate', nodeId);
  await waitFor('A working', () => deadGate.runs === 1);
  assert.is((await row(task.id))!.lease_owner, 'controller-a');
  const started = Date.now();
  await waitFor('B took the task over', () => liveGate.runs === 1, { intervalMs: 20 });
  const after = Date.now() - started;
  assert.ok(after <= 1_000 + 100 + 500, `taken over after ${after} ms (lease 1 s, poll 100 ms)`);
  assert.ok((await row(task.id))!.lease_owner === 'controller-b');
  liveGate.open();
  const done = await finished(live, task.id);
  assert.is(done.state, 'SUCCESS');
  assert.is(done.progress, 100);
  // A wakes up (its work fails now): it holds no lease, so it writes nothing over B's result
  deadGate.fail('agent gone');
  await dead.idle();
  await sleep(300);
  const final = (await live.get(task.id))!;
  assert.equal(
    { state: final.state, progress: final.progress, error: final.error, finishedAt: final.finishedAt },
    { state: 'SUCCESS', progress: 100, error: null, finishedAt: done.finishedAt },
  );
  assert.is(liveGate.runs, 1, 'B ran it once');
  assert.is(deadGate.runs, 1);
  await live.stop();
});

test('a live controller keeps its task by its heartbeat, however long it runs', async () => {
  const gateA = new Gate();
  const gateB = new Gate();
  const a = runner(0, 'controller-c', gateA, 600);
  const b = runner(1, 'controller-d', gateB, 600);
  a.start();
  b.start();
  const task = await a.submit('deactivate', nodeId);
  await sleep(2_000); // more than three leases
  assert.is(gateB.runs, 0, 'B never claimed a task A holds');
  assert.is((await row(task.id))!.lease_owner, 'controller-c');
  gateA.open();
  assert.is((await finished(a, task.id)).state, 'SUCCESS');
  assert.is(gateA.runs, 1);
  await a.stop();
  await b.stop();
});

test('a stopping controller gives its running tasks back: another takes them at its next poll', async () => {
  const gateA = new Gate();
  const gateB = new Gate();
  const a = runner(0, 'controller-e', gateA, 10_000);
  const b = runner(1, 'controller-f', gateB, 10_000, 200);
  a.start();
  b.start();
  const task = await a.submit('activate', nodeId);
  await waitFor('A working', () => gateA.runs === 1);
  await a.stop();
  const r = await row(task.id);
  assert.is(r!.lease_owner, null);
  const started = Date.now();
  await waitFor('B took the task', () => gateB.runs === 1, { intervalMs: 20, state: () => row(task.id) });
  assert.ok(Date.now() - started < 2_000, 'well before the 10 s lease');
  gateA.open(); // A's own run ends after it stopped: it writes nothing
  gateB.open();
  assert.is((await finished(b, task.id)).state, 'SUCCESS');
  await a.idle();
  assert.is((await row(task.id))!.lease_owner, 'controller-f');
  await b.stop();
});

test('an unleased unfinished task (left by an older controller) is claimed by exactly one of two', async () => {
  const gates = [new Gate(), new Gate()];
  const store = new SignStore(shared.dbs[0]!);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const id = `left-${i}`;
    ids.push(id);
    await store.insertTask({
      id,
      action: 'activate',
      nodeId,
      state: i % 2 ? 'RUNNING' : 'PENDING',
      progress: 0,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      error: null,
    });
  }
  const rs = [runner(0, 'controller-g', gates[0]!, 5_000), runner(1, 'controller-h', gates[1]!, 5_000)];
  rs.forEach((r) => r.start());
  await waitFor('all claimed', () => gates[0]!.runs + gates[1]!.runs === 5, { intervalMs: 20 });
  await sleep(300);
  assert.is(gates[0]!.runs + gates[1]!.runs, 5, 'each task ran once');
  gates.forEach((g) => g.open());
  for (const id of ids) assert.is((await finished(rs[0]!, id)).state, 'SUCCESS');
  for (const r of rs) await r.stop();
});

test.run();
