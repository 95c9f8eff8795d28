import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../lib/platform/clock.js';
import { notFound } from '../platform/errors.js';
import type { NodeAction, Task } from './model.js';
import type { Lease, SignStore } from './store.js';

export type TaskWork = (task: Task, progress: (percent: number) => Promise<void>) => Promise<void>;

export interface TaskLeaseOptions {
  /** This controller, as lease owner: unique per running controller. */
  controllerId: string;
  /** How long a lease lasts without a heartbeat; a dead controller's task is taken over after it. */
  leaseMs?: number;
  /** How often unleased and expired tasks are claimed. */
  pollMs?: number;
}

/** The task was taken over by another controller: this one stops writing it. */
class LeaseLost extends Error {}

/**
 * Long node actions run as tasks with an id and progress. Tasks are rows first, work second, and a
 * row is leased to the controller running it: submit() leases the new task to this controller, a
 * heartbeat extends the leases of the tasks it runs, and every pollMs each controller claims the
 * unfinished tasks whose lease is missing or ran out (their controller stopped or died). A task is
 * thus never lost; both actions are idempotent, so running one again after a takeover is harmless.
 * Every write of a task is conditional on holding its lease: a controller that lost one (stalled
 * past its lease) leaves the task to its new owner.
 */
export class TaskRunner {
  private readonly running = new Map<string, Promise<void>>();
  /** Tasks still running here whose lease another controller took. */
  private readonly lost = new Set<string>();
  private readonly owner: string;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private claiming?: Promise<number>;

  constructor(
    private readonly store: SignStore,
    private readonly clock: Clock,
    private readonly work: (action: NodeAction) => TaskWork,
    opts: TaskLeaseOptions,
  ) {
    this.owner = opts.controllerId;
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.pollMs = opts.pollMs ?? 5_000;
  }

  async submit(action: NodeAction, nodeId: number): Promise<Task> {
    const task: Task = {
      id: randomUUID(),
      action,
      nodeId,
      state: 'PENDING',
      progress: 0,
      createdAt: this.clock.now().toISOString(),
      startedAt: null,
      finishedAt: null,
      error: null,
    };
    // Submitted while stopping: left unleased, for another controller to take at once.
    await this.store.insertTask(task, this.stopped ? undefined : this.lease());
    if (!this.stopped) this.run(task);
    return task;
  }

  async get(id: string): Promise<Task> {
    const task = await this.store.getTask(id);
    if (!task) throw notFound(`no task with id ${id}`);
    return task;
  }

  /** Claims what no controller holds now and every pollMs, and keeps the leases of running tasks. */
  start(): void {
    if (this.timers.length) return;
    this.stopped = false;
    void this.claim();
    this.timers = [
      setInterval(() => void this.claim(), this.pollMs),
      setInterval(() => void this.heartbeat(), Math.max(1, Math.floor(this.leaseMs / 3))),
    ];
    for (const t of this.timers) t.unref();
  }

  /**
   * Stops claiming and gives the leases of the tasks still running back, so that another controller
   * takes them at its next poll instead of after the lease; this one writes them no more.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.claiming;
    await this.store.releaseLeases(this.owner).catch(() => undefined);
  }

  /** Takes the unfinished tasks nobody holds and runs them; answers how many. */
  claim(): Promise<number> {
    if (this.stopped) return Promise.resolve(0);
    this.claiming ??= this.store
      .claimTasks(this.lease(), this.clock.now().getTime(), new Set(this.running.keys()))
      .then((tasks) => {
        for (const task of tasks) this.run(task);
        return tasks.length;
      })
      .catch(() => 0) // the database is away: the next poll tries again
      .finally(() => (this.claiming = undefined));
    return this.claiming;
  }

  /** Waits for running tasks (used at shutdown and by tests). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running.values()]);
  }

  private lease(): Lease {
    return { owner: this.owner, until: this.clock.now().getTime() + this.leaseMs };
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.running.keys()].filter((id) => !this.lost.has(id));
    if (!ids.length || this.stopped) return;
    try {
      for (const id of await this.store.renewLeases(this.lease(), ids)) this.lost.add(id);
    } catch {
      // the database is away: the lease may run out and another controller take the task over
    }
  }

  private run(task: Task): void {
    if (this.running.has(task.id)) return;
    const run = this.execute(task).finally(() => {
      this.running.delete(task.id);
      this.lost.delete(task.id);
    });
    this.running.set(task.id, run);
  }

  /** Writes the task while this controller holds it; throws LeaseLost once it does not. */
  private async write(task: Task): Promise<void> {
    if (this.stopped || this.lost.has(task.id)) throw new LeaseLost();
    if (!(await this.store.updateTask(task, this.owner))) {
      this.lost.add(task.id);
      throw new LeaseLost();
    }
  }

  private async execute(task: Task): Promise<void> {
    const now = () => this.clock.now().toISOString();
    task.state = 'RUNNING';
    task.startedAt = now();
    task.progress = 0;
    try {
      await this.write(task);
    } catch {
      return; // taken over before it started here, or the database is away: a later claim runs it
    }
    try {
      // Progress is best effort and never rejects (work may report it without awaiting); a lost
      // lease shows in the final write, which is skipped.
      await this.work(task.action)(task, async (percent) => {
        task.progress = Math.max(task.progress, Math.min(99, Math.floor(percent)));
        await this.write(task).catch(() => undefined);
      });
      task.state = 'SUCCESS';
      task.progress = 100;
      task.error = null;
    } catch (err) {
      task.state = 'FAILURE';
      task.error = (err as Error).message;
    }
    task.finishedAt = now();
    await this.write(task).catch(() => undefined);
  }
}
