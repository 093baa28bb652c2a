/** Settings (key → text), and each connector's own key → JSON state within them, namespaced by a prefix. */
import type { Database, Queryable } from '../db.ts';
import type { ConnectorState } from '../contract.ts';

export class Settings {
  constructor(private readonly db: Database) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }

  async set(key: string, value: string, tx?: Queryable): Promise<void> {
    const sql = 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
    if (tx) await tx.run(sql, [key, value]);
    else await this.db.write((t) => t.run(sql, [key, value]));
  }

  /** Key → JSON value storage for one connector, namespaced by `prefix`. */
  connectorState(prefix: string): ConnectorState {
    return {
      get: async (key) => {
        const v = await this.get(`${prefix}:${key}`);
        return v === undefined ? undefined : JSON.parse(v);
      },
      set: (key, value) => this.set(`${prefix}:${key}`, JSON.stringify(value)),
    };
  }
}
