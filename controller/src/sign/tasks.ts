import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../lib/platform/clock.js';
import { notFound } from '../platform/errors.js';
import type { NodeAction, Task } from './model.js';
import type { SignStore } from './store.js';

export type TaskWork = (task: Task, progress: (percent: number) => Promise<void>) => Promise<void>;

/**
 * Long node actions run as tasks with an id and progress. Tasks are rows first, work second: a
 * controller that stops mid-task finds them PENDING/RUNNING at the next start and runs them again
 * (both actions are idempotent), so a task is never lost.
 */
export class TaskRunner {
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly store: SignStore,
    private readonly clock: Clock,
    private readonly work: (action: NodeAction) => TaskWork,
  ) {}

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
    await this.store.insertTask(task);
    this.start(task);
    return task;
  }

  async get(id: string): Promise<Task> {
    const task = await this.store.getTask(id);
    if (!task) throw notFound(`no task with id ${id}`);
    return task;
  }

  /** Re-runs what an earlier controller left unfinished. */
  async resume(): Promise<number> {
    const unfinished = await this.store.unfinishedTasks();
    for (const task of unfinished) this.start(task);
    return unfinished.length;
  }

  /** Waits for running tasks (used at shutdown and by tests). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private start(task: Task): void {
    const run = this.execute(task).finally(() => this.running.delete(run));
    this.running.add(run);
  }

  private async execute(task: Task): Promise<void> {
    const now = () => this.clock.now().toISOString();
    task.state = 'RUNNING';
    task.startedAt = now();
    task.progress = 0;
    await this.store.updateTask(task);
    try {
      await this.work(task.action)(task, async (percent) => {
        task.progress = Math.max(task.progress, Math.min(99, Math.floor(percent)));
        await this.store.updateTask(task);
      });
      task.state = 'SUCCESS';
      task.progress = 100;
      task.error = null;
    } catch (err) {
      task.state = 'FAILURE';
      task.error = (err as Error).message;
    }
    task.finishedAt = now();
    await this.store.updateTask(task).catch(() => undefined);
  }
}
