/** The database schema, as versioned steps; a database records how many it has applied (PRAGMA user_version). */
import type { Database } from '../db.ts';

const MIGRATIONS: string[] = [
  `CREATE TABLE messages (
     id INTEGER PRIMARY KEY,
     source TEXT NOT NULL,
     account TEXT NOT NULL,
     external_id TEXT NOT NULL,
     sender TEXT,
     subject TEXT,
     snippet TEXT NOT NULL,
     text TEXT NOT NULL,
     received_at TEXT,
     created_at TEXT NOT NULL,
     known_label TEXT,
     meta TEXT,
     verdict_label TEXT,
     spam_probability REAL,
     threshold REAL,
     model_version INTEGER,
     scored_at TEXT,
     correction_label TEXT,
     correction_origin TEXT,
     corrected_at TEXT,
     UNIQUE (source, account, external_id)
   );
   CREATE INDEX messages_label ON messages (COALESCE(correction_label, verdict_label), id);
   CREATE INDEX messages_corrected ON messages (corrected_at) WHERE correction_label IS NOT NULL;
   CREATE TABLE verdicts (
     id INTEGER PRIMARY KEY,
     message_id INTEGER NOT NULL REFERENCES messages (id),
     model_version INTEGER NOT NULL,
     spam_probability REAL NOT NULL,
     label TEXT NOT NULL,
     threshold REAL NOT NULL,
     scored_at TEXT NOT NULL
   );
   CREATE INDEX verdicts_message ON verdicts (message_id, id);
   CREATE TABLE corrections (
     id INTEGER PRIMARY KEY,
     message_id INTEGER NOT NULL REFERENCES messages (id),
     label TEXT,
     previous TEXT,
     origin TEXT NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE INDEX corrections_message ON corrections (message_id, id);
   CREATE TABLE model_versions (
     version INTEGER PRIMARY KEY,
     created_at TEXT NOT NULL,
     dir TEXT NOT NULL,
     base TEXT NOT NULL,
     base_hash TEXT NOT NULL,
     training_size INTEGER NOT NULL,
     corrections INTEGER NOT NULL,
     metrics TEXT,
     compared TEXT,
     status TEXT NOT NULL,
     promoted_at TEXT,
     run_id INTEGER
   );
   CREATE TABLE training_runs (
     id INTEGER PRIMARY KEY,
     reason TEXT NOT NULL,
     status TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     progress TEXT,
     history TEXT NOT NULL DEFAULT '[]',
     log TEXT NOT NULL DEFAULT '[]',
     model_version INTEGER,
     promoted INTEGER,
     error TEXT
   );
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // Export files the SMS folder connector finished with (imported or failed), so a restart does not parse them
  // again and a bad one is reported once, with its reason, rather than on every start.
  `CREATE TABLE imported_files (
     path TEXT PRIMARY KEY,
     size INTEGER NOT NULL,
     mtime_ms REAL NOT NULL,
     sha256 TEXT NOT NULL,
     outcome TEXT NOT NULL,
     detail TEXT,
     scored INTEGER NOT NULL DEFAULT 0,
     duplicates INTEGER NOT NULL DEFAULT 0,
     errors INTEGER NOT NULL DEFAULT 0,
     at TEXT NOT NULL
   );
   CREATE INDEX imported_files_sha256 ON imported_files (sha256);`,
  // Three-way verdicts with their reason and thresholds, messages by kind, calibrated models, known correspondents.
  // The verdicts table is rebuilt because its spam threshold may now be absent.
  `ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'other';
   UPDATE messages SET kind = CASE source WHEN 'imap' THEN 'email' WHEN 'sms' THEN 'sms' ELSE 'other' END;
   ALTER TABLE messages ADD COLUMN log_odds REAL;
   ALTER TABLE messages ADD COLUMN verdict_reason TEXT;
   ALTER TABLE messages ADD COLUMN ham_threshold REAL;
   ALTER TABLE messages ADD COLUMN threshold_origin TEXT;
   UPDATE messages SET verdict_reason = CASE verdict_label WHEN 'spam' THEN 'above-spam-threshold' ELSE 'below-ham-threshold' END,
                       ham_threshold = threshold, threshold_origin = 'configured'
     WHERE verdict_label IS NOT NULL;
   CREATE TABLE verdicts_v2 (
     id INTEGER PRIMARY KEY,
     message_id INTEGER NOT NULL REFERENCES messages (id),
     model_version INTEGER NOT NULL,
     spam_probability REAL NOT NULL,
     log_odds REAL,
     label TEXT NOT NULL,
     reason TEXT NOT NULL,
     threshold REAL,
     ham_threshold REAL,
     threshold_origin TEXT NOT NULL,
     scored_at TEXT NOT NULL
   );
   INSERT INTO verdicts_v2 (id, message_id, model_version, spam_probability, label, reason, threshold, ham_threshold, threshold_origin, scored_at)
     SELECT id, message_id, model_version, spam_probability, label,
            CASE label WHEN 'spam' THEN 'above-spam-threshold' ELSE 'below-ham-threshold' END, threshold, threshold, 'configured', scored_at
     FROM verdicts;
   DROP TABLE verdicts;
   ALTER TABLE verdicts_v2 RENAME TO verdicts;
   CREATE INDEX verdicts_message ON verdicts (message_id, id);
   ALTER TABLE model_versions ADD COLUMN calibration TEXT;
   CREATE TABLE correspondents (
     address TEXT PRIMARY KEY,
     display TEXT,
     origin TEXT NOT NULL,
     account TEXT,
     added_at TEXT NOT NULL
   );`,
  // Explanations (daemon/explain): one per message and model version, the JSON the API answers.
  `CREATE TABLE explanations (
     message_id INTEGER NOT NULL REFERENCES messages (id),
     model_version INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     explanation TEXT NOT NULL,
     PRIMARY KEY (message_id, model_version)
   );`,
];

/** Applies the steps a database has not had yet, each in its own transaction. */
export async function migrate(db: Database): Promise<void> {
  const row = await db.get<{ user_version: number }>('PRAGMA user_version');
  const have = row?.user_version ?? 0;
  if (have > MIGRATIONS.length) {
    throw new Error(`the database has schema version ${have}, newer than this gptspam (${MIGRATIONS.length}): upgrade gptspam`);
  }
  for (let v = have; v < MIGRATIONS.length; v++) {
    await db.write(async (tx) => {
      await tx.exec(MIGRATIONS[v]!);
      await tx.run(`PRAGMA user_version = ${v + 1}`);
    });
  }
}
