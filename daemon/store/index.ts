/**
 * Everything the daemon remembers, in one SQLite file (WAL): messages with their verdicts and corrections, model
 * versions, training runs, known correspondents, imported export files, explanations, settings and connector state.
 * One repository per table group; all share the connection, whose writes are serialised transactions (db.ts).
 */
import { Database } from '../db.ts';
import { Correspondents } from './correspondents.ts';
import { Explanations } from './explanations.ts';
import { ImportedFiles } from './imported-files.ts';
import { Messages } from './messages.ts';
import { migrate } from './migrations.ts';
import { Models } from './models.ts';
import { Runs } from './runs.ts';
import { Settings } from './settings.ts';

export type { Correspondent, CorrespondentOrigin } from './correspondents.ts';
export type { MessageFilter, MessageRecord, NewMessage, TrainingExample, VerdictRecord } from './messages.ts';
export { snippetOf } from './messages.ts';
export type { ModelRecord, ModelStatus } from './models.ts';
export type { EpochRecord, RunProgress, RunRecord, RunStatus } from './runs.ts';

export class Store {
  readonly settings: Settings;
  readonly messages: Messages;
  readonly models: Models;
  readonly runs: Runs;
  readonly correspondents: Correspondents;
  readonly importedFiles: ImportedFiles;
  readonly explanations: Explanations;

  private constructor(readonly db: Database) {
    this.settings = new Settings(db);
    this.messages = new Messages(db);
    this.models = new Models(db, this.settings);
    this.runs = new Runs(db);
    this.correspondents = new Correspondents(db);
    this.importedFiles = new ImportedFiles(db);
    this.explanations = new Explanations(db);
  }

  static async open(path: string): Promise<Store> {
    const db = await Database.open(path);
    try {
      await db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
      await migrate(db);
      return new Store(db);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw new Error(`${path}: ${(err as Error).message}`);
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
