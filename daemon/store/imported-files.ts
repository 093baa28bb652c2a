/** Export files the SMS folder connector finished with (imported or failed): the import ledger. */
import type { Database } from '../db.ts';
import type { ImportedFile, ImportLedger } from '../contract.ts';
import { str, type Row } from './sql.ts';

function importedFileFromRow(r: Row): ImportedFile {
  return {
    path: String(r.path), size: Number(r.size), mtimeMs: Number(r.mtime_ms), sha256: String(r.sha256),
    outcome: r.outcome as ImportedFile['outcome'], detail: str(r.detail),
    scored: Number(r.scored), duplicates: Number(r.duplicates), errors: Number(r.errors), at: String(r.at),
  };
}

export class ImportedFiles implements ImportLedger {
  constructor(private readonly db: Database) {}

  async get(path: string): Promise<ImportedFile | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM imported_files WHERE path = ?', [path]);
    return r && importedFileFromRow(r);
  }

  async byHash(sha256: string): Promise<ImportedFile | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM imported_files WHERE sha256 = ? ORDER BY at DESC LIMIT 1', [sha256]);
    return r && importedFileFromRow(r);
  }

  async record(f: ImportedFile): Promise<void> {
    await this.db.write((tx) =>
      tx.run(
        `INSERT INTO imported_files (path, size, mtime_ms, sha256, outcome, detail, scored, duplicates, errors, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, sha256 = excluded.sha256, outcome = excluded.outcome,
           detail = excluded.detail, scored = excluded.scored, duplicates = excluded.duplicates, errors = excluded.errors, at = excluded.at`,
        [f.path, f.size, f.mtimeMs, f.sha256, f.outcome, f.detail, f.scored, f.duplicates, f.errors, f.at],
      ),
    );
  }

  /** How many export files were handled, and the latest that failed (newest first) with their reasons. */
  async summary(limit = 20): Promise<{ files: number; failed: ImportedFile[] }> {
    const n = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM imported_files');
    const failed = await this.db.all<Row>("SELECT * FROM imported_files WHERE outcome = 'failed' ORDER BY at DESC LIMIT ?", [limit]);
    return { files: n?.n ?? 0, failed: failed.map(importedFileFromRow) };
  }
}
