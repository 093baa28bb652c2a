/** Known correspondents (daemon/correspondents.ts): addresses whose messages are ham, keyed by their normalised form. */
import type { Database, SqlValue } from '../db.ts';
import { likePattern, str, type Row } from './sql.ts';

export type CorrespondentOrigin = 'imap-sent' | 'sms-sent' | 'sms-contact' | 'user';

export interface Correspondent {
  /** The normalised address (daemon/correspondents.ts): what messages are matched on. */
  address: string;
  /** As first seen, e.g. "Alice <alice@example.org>" or a contact name. */
  display: string | null;
  origin: CorrespondentOrigin;
  account: string | null;
  addedAt: string;
}

export class Correspondents {
  constructor(private readonly db: Database) {}

  /** Adds correspondents not known yet (an address keeps its first origin); returns how many were new. */
  async add(list: Array<Omit<Correspondent, 'addedAt'>>): Promise<number> {
    if (list.length === 0) return 0;
    return this.db.write(async (tx) => {
      const now = new Date().toISOString();
      let added = 0;
      for (const c of list) {
        const { changes } = await tx.run('INSERT OR IGNORE INTO correspondents (address, display, origin, account, added_at) VALUES (?, ?, ?, ?, ?)', [
          c.address, c.display, c.origin, c.account, now,
        ]);
        added += changes;
      }
      return added;
    });
  }

  async has(address: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 AS yes FROM correspondents WHERE address = ?', [address])) !== undefined;
  }

  async list(opts: { q?: string; limit: number; offset: number }): Promise<{ total: number; correspondents: Correspondent[] }> {
    const params: SqlValue[] = [];
    let where = '';
    if (opts.q) {
      where = "WHERE address LIKE ? ESCAPE '\\' OR display LIKE ? ESCAPE '\\'";
      const pattern = likePattern(opts.q);
      params.push(pattern, pattern);
    }
    const total = Number((await this.db.get<Row>(`SELECT COUNT(*) AS n FROM correspondents ${where}`, params))?.n ?? 0);
    const rows = await this.db.all<Row>(`SELECT * FROM correspondents ${where} ORDER BY address LIMIT ? OFFSET ?`, [...params, opts.limit, opts.offset]);
    return {
      total,
      correspondents: rows.map((r) => ({
        address: String(r.address), display: str(r.display), origin: r.origin as CorrespondentOrigin, account: str(r.account), addedAt: String(r.added_at),
      })),
    };
  }

  /** Forgets a correspondent; false when the address was not known. */
  async remove(address: string): Promise<boolean> {
    const { changes } = await this.db.write((tx) => tx.run('DELETE FROM correspondents WHERE address = ?', [address]));
    return changes > 0;
  }
}
