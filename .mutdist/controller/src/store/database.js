import { Connection } from './sqlite.js';
/**
 * SQLite in WAL mode with one writer and one reader connection.
 *
 * Writes are group-committed: jobs that arrive while a transaction is open wait, then the next
 * batch runs as ONE transaction, each job inside its own SAVEPOINT so a failing job rolls back alone.
 * A job's promise settles only after COMMIT, so "the record is committed before we answer" holds
 * while hundreds of concurrent requests share one commit.
 */
export class Database {
    writer;
    reader;
    maxBatch;
    queue = [];
    draining = false;
    closed = false;
    constructor(writer, reader, maxBatch) {
        this.writer = writer;
        this.reader = reader;
        this.maxBatch = maxBatch;
    }
    static async open(path, opts = {}) {
        const writer = await Connection.open(path);
        await writer.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
        const reader = await Connection.open(path);
        await reader.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;');
        return new Database(writer, reader, opts.maxBatch ?? 256);
    }
    run(sql, params) {
        return this.write((tx) => tx.run(sql, params));
    }
    get(sql, params) {
        return this.reader.get(sql, params);
    }
    all(sql, params) {
        return this.reader.all(sql, params);
    }
    /** Runs fn in a transaction; resolves after its data is committed. */
    write(fn) {
        if (this.closed)
            return Promise.reject(new Error('database is closed'));
        return new Promise((resolve, reject) => {
            this.queue.push({ fn, resolve: resolve, reject });
            if (!this.draining)
                void this.drain();
        });
    }
    /** Schema changes run outside the batching queue, before the service starts. */
    exec(sql) {
        return this.writer.exec(sql);
    }
    async close() {
        this.closed = true;
        while (this.draining || this.queue.length)
            await new Promise((r) => setTimeout(r, 5));
        await this.reader.close();
        await this.writer.close();
    }
    async drain() {
        this.draining = true;
        try {
            while (this.queue.length) {
                const batch = this.queue.splice(0, this.maxBatch);
                await this.runBatch(batch);
            }
        }
        finally {
            this.draining = false;
        }
    }
    async runBatch(batch) {
        const w = this.writer;
        const results = [];
        try {
            await w.run('BEGIN IMMEDIATE');
        }
        catch (err) {
            batch.forEach((job) => job.reject(err));
            return;
        }
        for (const job of batch) {
            await w.run('SAVEPOINT job');
            try {
                const value = await job.fn(w);
                await w.run('RELEASE job');
                results.push({ ok: true, value });
            }
            catch (err) {
                await w.run('ROLLBACK TO job').catch(() => undefined);
                await w.run('RELEASE job').catch(() => undefined);
                results.push({ ok: false, value: err });
            }
        }
        try {
            await w.run('COMMIT');
        }
        catch (err) {
            await w.run('ROLLBACK').catch(() => undefined);
            batch.forEach((job) => job.reject(err));
            return;
        }
        batch.forEach((job, i) => {
            const r = results[i];
            if (r.ok)
                job.resolve(r.value);
            else
                job.reject(r.value);
        });
    }
}
//# sourceMappingURL=database.js.map