import sqlite3 from 'sqlite3';
/** Promise face of one sqlite3 connection. */
export class Connection {
    db;
    constructor(db) {
        this.db = db;
    }
    static open(path, mode = sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE) {
        return new Promise((resolve, reject) => {
            const db = new sqlite3.Database(path, mode, (err) => (err ? reject(err) : resolve(new Connection(db))));
        });
    }
    run(sql, params = []) {
        return new Promise((resolve, reject) => {
            this.db.run(sql, params, function (err) {
                if (err)
                    reject(err);
                else
                    resolve({ changes: this.changes, lastID: this.lastID });
            });
        });
    }
    get(sql, params = []) {
        return new Promise((resolve, reject) => {
            this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row)));
        });
    }
    all(sql, params = []) {
        return new Promise((resolve, reject) => {
            this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows)));
        });
    }
    exec(sql) {
        return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
    }
    close() {
        return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
    }
}
//# sourceMappingURL=sqlite.js.map