/** Explanations (daemon/explain): one per message and model version, kept as the JSON the API answers. */
import type { Database } from '../db.ts';

export class Explanations {
  constructor(private readonly db: Database) {}

  async get(messageId: number, version: number): Promise<{ json: string; createdAt: string } | undefined> {
    const row = await this.db.get<{ explanation: string; created_at: string }>(
      'SELECT explanation, created_at FROM explanations WHERE message_id = ? AND model_version = ?',
      [messageId, version],
    );
    return row && { json: row.explanation, createdAt: row.created_at };
  }

  async put(messageId: number, version: number, json: string): Promise<void> {
    await this.db.write((tx) =>
      tx.run('INSERT OR REPLACE INTO explanations (message_id, model_version, created_at, explanation) VALUES (?, ?, ?, ?)', [
        messageId, version, new Date().toISOString(), json,
      ]),
    );
  }
}
