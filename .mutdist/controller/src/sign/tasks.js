import { randomUUID } from 'node:crypto';
import { notFound } from '../platform/errors.js';
/**
 * Long node actions run as tasks with an id and progress. Tasks are rows first, work second: a
 * controller that stops mid-task finds them PENDING/RUNNING at the next start and runs them again
 * (both actions are idempotent), so a task is never lost.
 */
export class TaskRunner {
    store;
    clock;
    work;
    running = new Set();
    constructor(store, clock, work) {
        this.store = store;
        this.clock = clock;
        this.work = work;
    }
    async submit(action, nodeId) {
        const task = {
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
    async get(id) {
        const task = await this.store.getTask(id);
        if (!task)
            throw notFound(`no task with id ${id}`);
        return task;
    }
    /** Re-runs what an earlier controller left unfinished. */
    async resume() {
        const unfinished = await this.store.unfinishedTasks();
        for (const task of unfinished)
            this.start(task);
        return unfinished.length;
    }
    /** Waits for running tasks (used at shutdown and by tests). */
    async idle() {
        while (this.running.size)
            await Promise.allSettled([...this.running]);
    }
    start(task) {
        const run = this.execute(task).finally(() => this.running.delete(run));
        this.running.add(run);
    }
    async execute(task) {
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
        }
        catch (err) {
            task.state = 'FAILURE';
            task.error = err.message;
        }
        task.finishedAt = now();
        await this.store.updateTask(task).catch(() => undefined);
    }
}
//# sourceMappingURL=tasks.js.map