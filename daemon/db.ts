/**
 * A small promise layer over one sqlite3 connection. Writes are serialised through `write()`, each in its own
 * `BEGIN IMMEDIATE` transaction, so concurrent async callers can never interleave statements inside another
 * caller's transaction; reads go straight to the connection (WAL lets them run beside a writer).
 */
import { chmod, open } from 'node:fs/promises';
import sqlite3 from 'sqlite3';

export type SqlValue = string | number | bigint | null | Buffer;
export type Row = Record<string, SqlValue>;

export interface Queryable {
  run(sql: string, params?: SqlValue[]): Promise<{ lastID: number; changes: number }>;
  get<T = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  all<T = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  /** Several statements, no parameters (schema changes). */
  exec(sql: string): Promise<void>;
}

export class Database implements Queryable {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly db: sqlite3.Database,
    readonly path: string,
  ) {}

  /**
   * Opens (creating) the database file, readable and writable by the owner only: it holds message text. SQLite
   * creates its -wal and -shm files with the database file's permissions; ones left by an older, laxer
   * version are tightened too.
   */
  static async open(path: string): Promise<Database> {
    for (const file of [path, `${path}-wal`, `${path}-shm`]) await makePrivate(file, file === path);
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(path, (err) => {
        if (err) reject(new Error(`cannot open the database ${path}: ${err.message}`));
        else resolve(new Database(db, path));
      });
    });
  }

  run(sql: string, params: SqlValue[] = []): Promise<{ lastID: number; changes: number }> {
    return new Promise((resolve, reject) => {
      this.db.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve({ lastID: this.lastID, changes: this.changes });
      });
    });
  }

  get<T = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row as T | undefined)));
    });
  }

  all<T = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[])));
    });
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  /** Runs `fn` in a transaction, after every earlier write has finished; rolls back if it throws. */
  write<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      if (this.closed) throw new Error('the database is closed');
      await this.exec('BEGIN IMMEDIATE');
      try {
        const value = await fn(this);
        await this.exec('COMMIT');
        return value;
      } catch (err) {
        await this.exec('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Waits for queued writes, then closes (checkpointing the WAL). */
  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}

/** Creates `file` (when `create`) or tightens an existing one to mode 0600. */
async function makePrivate(file: string, create: boolean): Promise<void> {
  let handle;
  try {
    handle = await open(file, create ? 'a' : 'r', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !create) return;
    throw new Error(`cannot open the database ${file}: ${(err as Error).message}`);
  }
  try {
    if (((await handle.stat()).mode & 0o077) !== 0) await chmod(file, 0o600);
  } finally {
    await handle.close();
  }
}
