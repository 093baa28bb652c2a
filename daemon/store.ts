/**
 * Everything the daemon remembers, in one SQLite file: messages, verdicts, corrections, model versions,
 * training runs and connector state. The latest verdict and correction are also kept on the message row so
 * the review lists filter and page on indexed columns; both are written in the same transaction as the
 * history rows, so they can never disagree.
 */
import { Database, type Queryable, type SqlValue } from './db.ts';
import type { CorrectionOrigin, ImportedFile, Label, MessageKind, SourceKind, VerdictLabel } from './types.ts';
import type { AppliedThresholds, ModelCalibration, VerdictReason } from './verdicts.ts';

/** Versioned schema steps; a database records how many it has applied (PRAGMA user_version). */
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

export interface NewMessage {
  source: SourceKind;
  kind: MessageKind;
  account: string;
  externalId: string;
  sender: string | null;
  subject: string | null;
  text: string;
  receivedAt: Date | null;
  knownLabel: Label | null;
  meta: Record<string, unknown> | null;
}

export interface VerdictRecord {
  modelVersion: number;
  spamProbability: number;
  /** The model's log-odds of spam (what thresholds are compared with; a probability saturates). */
  logOdds: number | null;
  label: VerdictLabel;
  reason: VerdictReason;
  thresholds: AppliedThresholds;
  scoredAt: Date;
}

export interface MessageRecord {
  id: number;
  source: SourceKind;
  kind: MessageKind;
  account: string;
  externalId: string;
  sender: string | null;
  subject: string | null;
  snippet: string;
  receivedAt: string | null;
  createdAt: string;
  knownLabel: Label | null;
  meta: Record<string, unknown> | null;
  verdict: (Omit<VerdictRecord, 'scoredAt'> & { scoredAt: string }) | null;
  correction: { label: Label; origin: CorrectionOrigin; at: string } | null;
  /** The effective label: the correction's, else the verdict's. */
  label: VerdictLabel | null;
}

export interface MessageFilter {
  /** The effective label. */
  label?: VerdictLabel;
  source?: SourceKind;
  kind?: MessageKind;
  corrected?: boolean;
  q?: string;
  before?: number;
  limit: number;
}

export type ModelStatus = 'candidate' | 'promoted' | 'rejected';

export interface ModelRecord {
  version: number;
  createdAt: string;
  dir: string;
  base: string;
  baseHash: string;
  trainingSize: number;
  corrections: number;
  metrics: { accuracy: number; precision: number; recall: number; f1: number } | null;
  /** Thresholds and error rates per kind of message on the held-out set (null for models from before them). */
  calibration: ModelCalibration | null;
  compared: { version: number | null; candidateAccuracy: number; currentAccuracy: number | null } | null;
  status: ModelStatus;
  promotedAt: string | null;
  runId: number | null;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface RunProgress {
  phase: string;
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number | null;
  etaSeconds: number | null;
}

export interface EpochRecord {
  epoch: number;
  examplesSeen?: number;
  trainLoss: number;
  valLoss: number;
  trainAcc: number;
  valAcc: number;
}

export interface RunRecord {
  id: number;
  reason: string;
  status: RunStatus;
  startedAt: string;
  finishedAt: string | null;
  progress: RunProgress | null;
  history: EpochRecord[];
  log: string[];
  modelVersion: number | null;
  promoted: boolean | null;
  error: string | null;
}

export interface TrainingExample {
  text: string;
  label: Label;
  kind: MessageKind;
  /** Where it came from: 'correction' (a user's label) or 'known' (a labelled import). */
  origin: 'correction' | 'known';
  /** When the label was given: the latest correction, or when a labelled import stored the message. */
  labelledAt: string;
}

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

const SNIPPET_CHARS = 200;

function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}
function parseJson<T>(value: SqlValue | undefined): T | null {
  return typeof value === 'string' ? (JSON.parse(value) as T) : null;
}
function str(value: SqlValue | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** A LIKE pattern matching `q` anywhere, with its wildcards escaped (ESCAPE '\\'): the search text is data, never a pattern. */
function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function snippetOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS - 1)}…` : flat;
}

type Row = Record<string, SqlValue>;

function num(value: SqlValue | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** A verdict from the columns of a messages row (verdict_label, ...) or a verdicts row (label, ...). */
function verdictFromRow(r: Row, label: SqlValue | undefined, reason: SqlValue | undefined) {
  return {
    modelVersion: Number(r.model_version),
    spamProbability: Number(r.spam_probability),
    logOdds: num(r.log_odds),
    label: label as VerdictLabel,
    reason: reason as VerdictReason,
    thresholds: { spam: num(r.threshold), ham: num(r.ham_threshold), origin: (r.threshold_origin ?? 'none') as AppliedThresholds['origin'] },
    scoredAt: String(r.scored_at),
  };
}

function messageFromRow(r: Row): MessageRecord {
  const verdict = r.verdict_label === null ? null : verdictFromRow(r, r.verdict_label, r.verdict_reason);
  const correction =
    r.correction_label === null
      ? null
      : { label: r.correction_label as Label, origin: r.correction_origin as CorrectionOrigin, at: String(r.corrected_at) };
  return {
    id: Number(r.id),
    source: r.source as SourceKind,
    kind: r.kind as MessageKind,
    account: String(r.account),
    externalId: String(r.external_id),
    sender: str(r.sender),
    subject: str(r.subject),
    snippet: String(r.snippet),
    receivedAt: str(r.received_at),
    createdAt: String(r.created_at),
    knownLabel: (r.known_label as Label | null) ?? null,
    meta: parseJson<Record<string, unknown>>(r.meta),
    verdict,
    correction,
    label: correction?.label ?? verdict?.label ?? null,
  };
}

function modelFromRow(r: Row): ModelRecord {
  return {
    version: Number(r.version),
    createdAt: String(r.created_at),
    dir: String(r.dir),
    base: String(r.base),
    baseHash: String(r.base_hash),
    trainingSize: Number(r.training_size),
    corrections: Number(r.corrections),
    metrics: parseJson(r.metrics),
    calibration: parseJson(r.calibration),
    compared: parseJson(r.compared),
    status: r.status as ModelStatus,
    promotedAt: str(r.promoted_at),
    runId: r.run_id === null ? null : Number(r.run_id),
  };
}

function runFromRow(r: Row): RunRecord {
  return {
    id: Number(r.id),
    reason: String(r.reason),
    status: r.status as RunStatus,
    startedAt: String(r.started_at),
    finishedAt: str(r.finished_at),
    progress: parseJson(r.progress),
    history: parseJson<EpochRecord[]>(r.history) ?? [],
    log: parseJson<string[]>(r.log) ?? [],
    modelVersion: r.model_version === null ? null : Number(r.model_version),
    promoted: r.promoted === null ? null : Boolean(r.promoted),
    error: str(r.error),
  };
}

function importedFileFromRow(r: Row): ImportedFile {
  return {
    path: String(r.path), size: Number(r.size), mtimeMs: Number(r.mtime_ms), sha256: String(r.sha256),
    outcome: r.outcome as ImportedFile['outcome'], detail: str(r.detail),
    scored: Number(r.scored), duplicates: Number(r.duplicates), errors: Number(r.errors), at: String(r.at),
  };
}

class UnknownIdsError extends Error {
  constructor(readonly ids: number[]) {
    super(`unknown message ids: ${ids.join(', ')}`);
  }
}

/** Records a correction inside the transaction `tx`; undefined when there is no such message. */
async function correctIn(tx: Queryable, id: number, label: Label | null, origin: CorrectionOrigin): Promise<{ before: MessageRecord; after: MessageRecord } | undefined> {
  const row = await tx.get<Row>('SELECT * FROM messages WHERE id = ?', [id]);
  if (!row) return undefined;
  const before = messageFromRow(row);
  const now = new Date().toISOString();
  await tx.run('INSERT INTO corrections (message_id, label, previous, origin, created_at) VALUES (?, ?, ?, ?, ?)', [id, label, before.label, origin, now]);
  await tx.run('UPDATE messages SET correction_label = ?, correction_origin = ?, corrected_at = ? WHERE id = ?', [
    label, label === null ? null : origin, label === null ? null : now, id,
  ]);
  const after = messageFromRow((await tx.get<Row>('SELECT * FROM messages WHERE id = ?', [id]))!);
  return { before, after };
}

export class Store {
  private constructor(readonly db: Database) {}

  static async open(path: string): Promise<Store> {
    const db = await Database.open(path);
    try {
      await db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
      const store = new Store(db);
      await store.migrate();
      return store;
    } catch (err) {
      await db.close().catch(() => undefined);
      throw new Error(`${path}: ${(err as Error).message}`);
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private async migrate(): Promise<void> {
    const row = await this.db.get<{ user_version: number }>('PRAGMA user_version');
    const have = row?.user_version ?? 0;
    if (have > MIGRATIONS.length) {
      throw new Error(`the database has schema version ${have}, newer than this gptspam (${MIGRATIONS.length}): upgrade gptspam`);
    }
    for (let v = have; v < MIGRATIONS.length; v++) {
      await this.db.write(async (tx) => {
        await tx.exec(MIGRATIONS[v]!);
        await tx.run(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  // ---------------------------------------------------------------- messages and verdicts

  async findMessage(source: SourceKind, account: string, externalId: string): Promise<MessageRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM messages WHERE source = ? AND account = ? AND external_id = ?', [source, account, externalId]);
    return r && messageFromRow(r);
  }

  async getMessage(id: number): Promise<MessageRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM messages WHERE id = ?', [id]);
    return r && messageFromRow(r);
  }

  async getMessages(ids: number[]): Promise<MessageRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.all<Row>(`SELECT * FROM messages WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
    return rows.map(messageFromRow);
  }

  async messageText(id: number): Promise<string | undefined> {
    const r = await this.db.get<{ text: string }>('SELECT text FROM messages WHERE id = ?', [id]);
    return r?.text;
  }

  /**
   * Stores a new message with its verdict, in one transaction. If the message is already stored (same source,
   * account and external id, e.g. a connector re-processing after a crash) nothing is written and the stored
   * record comes back with `duplicate: true`.
   */
  async insertScored(m: NewMessage, v: VerdictRecord): Promise<{ record: MessageRecord; duplicate: boolean }> {
    return this.db.write(async (tx) => {
      const existing = await tx.get<Row>('SELECT * FROM messages WHERE source = ? AND account = ? AND external_id = ?', [m.source, m.account, m.externalId]);
      if (existing) return { record: messageFromRow(existing), duplicate: true };
      const now = new Date().toISOString();
      const { lastID } = await tx.run(
        `INSERT INTO messages (source, kind, account, external_id, sender, subject, snippet, text, received_at, created_at, known_label, meta,
                               verdict_label, verdict_reason, spam_probability, log_odds, threshold, ham_threshold, threshold_origin, model_version, scored_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          m.source, m.kind, m.account, m.externalId, m.sender, m.subject, snippetOf(m.text), m.text,
          m.receivedAt?.toISOString() ?? null, now, m.knownLabel, json(m.meta),
          v.label, v.reason, v.spamProbability, v.logOdds, v.thresholds.spam, v.thresholds.ham, v.thresholds.origin, v.modelVersion, v.scoredAt.toISOString(),
        ],
      );
      await tx.run(
        `INSERT INTO verdicts (message_id, model_version, spam_probability, log_odds, label, reason, threshold, ham_threshold, threshold_origin, scored_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [lastID, v.modelVersion, v.spamProbability, v.logOdds, v.label, v.reason, v.thresholds.spam, v.thresholds.ham, v.thresholds.origin, v.scoredAt.toISOString()],
      );
      const row = await tx.get<Row>('SELECT * FROM messages WHERE id = ?', [lastID]);
      return { record: messageFromRow(row!), duplicate: false };
    });
  }

  /** A connector's updated source data for a stored message (e.g. the IMAP message moved: new mailbox/UID). */
  async updateMeta(id: number, meta: Record<string, unknown>): Promise<void> {
    await this.db.write((tx) => tx.run('UPDATE messages SET meta = ? WHERE id = ?', [json(meta), id]));
  }

  /**
   * Records a correction (label null withdraws the current one). Returns the message before and after, or
   * undefined when there is no such message.
   */
  async correct(id: number, label: Label | null, origin: CorrectionOrigin): Promise<{ before: MessageRecord; after: MessageRecord } | undefined> {
    return this.db.write((tx) => correctIn(tx, id, label, origin));
  }

  /**
   * The same correction for several messages, all or nothing: when any id is unknown nothing is written and
   * `unknown` lists those ids.
   */
  async correctMany(ids: number[], label: Label | null, origin: CorrectionOrigin): Promise<{ changes: Array<{ before: MessageRecord; after: MessageRecord }>; unknown: number[] }> {
    return this.db.write(async (tx) => {
      const changes: Array<{ before: MessageRecord; after: MessageRecord }> = [];
      const unknown: number[] = [];
      for (const id of ids) {
        const change = await correctIn(tx, id, label, origin);
        if (change) changes.push(change);
        else unknown.push(id);
      }
      // Throwing rolls the transaction back: the corrections made before an unknown id are undone.
      if (unknown.length > 0) throw new UnknownIdsError(unknown);
      return { changes, unknown };
    }).catch((err: unknown) => {
      if (err instanceof UnknownIdsError) return { changes: [], unknown: err.ids };
      throw err;
    });
  }

  async listMessages(f: MessageFilter): Promise<MessageRecord[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.label) {
      where.push('COALESCE(correction_label, verdict_label) = ?');
      params.push(f.label);
    }
    if (f.source) {
      where.push('source = ?');
      params.push(f.source);
    }
    if (f.kind) {
      where.push('kind = ?');
      params.push(f.kind);
    }
    if (f.corrected !== undefined) where.push(f.corrected ? 'correction_label IS NOT NULL' : 'correction_label IS NULL');
    if (f.q) {
      const pattern = likePattern(f.q);
      where.push("(sender LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\' OR text LIKE ? ESCAPE '\\')");
      params.push(pattern, pattern, pattern);
    }
    if (f.before !== undefined) {
      where.push('id < ?');
      params.push(f.before);
    }
    const sql = `SELECT * FROM messages ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = await this.db.all<Row>(sql, [...params, f.limit]);
    return rows.map(messageFromRow);
  }

  /** Every verdict of a message, newest first. */
  async verdictsOf(id: number): Promise<Array<NonNullable<MessageRecord['verdict']>>> {
    const rows = await this.db.all<Row>('SELECT * FROM verdicts WHERE message_id = ? ORDER BY id DESC', [id]);
    return rows.map((r) => verdictFromRow(r, r.label, r.reason));
  }

  async correctionsOf(id: number): Promise<Array<{ label: Label | null; previous: Label | null; origin: string; at: string }>> {
    const rows = await this.db.all<Row>('SELECT * FROM corrections WHERE message_id = ? ORDER BY id DESC', [id]);
    return rows.map((r) => ({ label: (r.label as Label | null) ?? null, previous: (r.previous as Label | null) ?? null, origin: String(r.origin), at: String(r.created_at) }));
  }

  async counts(): Promise<{ messages: number; spam: number; ham: number; uncertain: number; corrected: number }> {
    const r = await this.db.get<Row>(
      `SELECT COUNT(*) AS messages,
              SUM(COALESCE(correction_label, verdict_label) = 'spam') AS spam,
              SUM(COALESCE(correction_label, verdict_label) = 'ham') AS ham,
              SUM(COALESCE(correction_label, verdict_label) = 'uncertain') AS uncertain,
              SUM(correction_label IS NOT NULL) AS corrected
       FROM messages`,
    );
    const n = (k: string) => Number(r?.[k] ?? 0);
    return { messages: n('messages'), spam: n('spam'), ham: n('ham'), uncertain: n('uncertain'), corrected: n('corrected') };
  }

  /** Every message whose label a person gave: current corrections and labelled imports. */
  async labelledExamples(): Promise<TrainingExample[]> {
    const rows = await this.db.all<Row>(
      `SELECT text, kind, COALESCE(correction_label, known_label) AS label, correction_label IS NOT NULL AS corrected,
              COALESCE((SELECT MAX(c.created_at) FROM corrections c WHERE c.message_id = m.id), m.created_at) AS labelled_at
       FROM messages m WHERE correction_label IS NOT NULL OR known_label IS NOT NULL ORDER BY id`,
    );
    return rows.map((r) => ({
      text: String(r.text),
      label: r.label as Label,
      kind: r.kind as MessageKind,
      origin: Number(r.corrected) ? 'correction' : 'known',
      labelledAt: String(r.labelled_at),
    }));
  }

  /** Corrections recorded after `since` (ISO time), withdrawals included. */
  async correctionsSince(since: string | null): Promise<number> {
    const r = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM corrections WHERE created_at > ?', [since ?? '']);
    return r?.n ?? 0;
  }

  // ---------------------------------------------------------------- model versions

  async nextModelVersion(): Promise<number> {
    const r = await this.db.get<{ v: number | null }>('SELECT MAX(version) AS v FROM model_versions');
    return (r?.v ?? 0) + 1;
  }

  async insertModel(m: Omit<ModelRecord, 'promotedAt'>): Promise<void> {
    await this.db.write((tx) =>
      tx.run(
        `INSERT INTO model_versions (version, created_at, dir, base, base_hash, training_size, corrections, metrics, calibration, compared, status, run_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [m.version, m.createdAt, m.dir, m.base, m.baseHash, m.trainingSize, m.corrections, json(m.metrics), json(m.calibration), json(m.compared), m.status, m.runId],
      ),
    );
  }

  async listModels(): Promise<ModelRecord[]> {
    return (await this.db.all<Row>('SELECT * FROM model_versions ORDER BY version DESC')).map(modelFromRow);
  }

  async getModel(version: number): Promise<ModelRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM model_versions WHERE version = ?', [version]);
    return r && modelFromRow(r);
  }

  /** Makes `version` the current model (recorded in settings) and marks it promoted, in one transaction. */
  async promote(version: number): Promise<void> {
    await this.db.write(async (tx) => {
      await tx.run("UPDATE model_versions SET status = 'promoted', promoted_at = COALESCE(promoted_at, ?) WHERE version = ?", [new Date().toISOString(), version]);
      await tx.run("INSERT INTO settings (key, value) VALUES ('current_model', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(version)]);
    });
  }

  async currentModelVersion(): Promise<number | null> {
    const v = await this.getSetting('current_model');
    return v === undefined ? null : Number(v);
  }

  // ---------------------------------------------------------------- training runs

  async createRun(reason: string): Promise<RunRecord> {
    return this.db.write(async (tx) => {
      const { lastID } = await tx.run("INSERT INTO training_runs (reason, status, started_at) VALUES (?, 'running', ?)", [reason, new Date().toISOString()]);
      return runFromRow((await tx.get<Row>('SELECT * FROM training_runs WHERE id = ?', [lastID]))!);
    });
  }

  async updateRun(id: number, change: { progress?: RunProgress; history?: EpochRecord[]; appendLog?: string[] }): Promise<void> {
    await this.db.write(async (tx) => {
      if (change.progress) await tx.run('UPDATE training_runs SET progress = ? WHERE id = ?', [json(change.progress), id]);
      if (change.history) await tx.run('UPDATE training_runs SET history = ? WHERE id = ?', [json(change.history), id]);
      if (change.appendLog?.length) {
        const r = await tx.get<Row>('SELECT log FROM training_runs WHERE id = ?', [id]);
        const log = [...(parseJson<string[]>(r?.log) ?? []), ...change.appendLog].slice(-500);
        await tx.run('UPDATE training_runs SET log = ? WHERE id = ?', [json(log), id]);
      }
    });
  }

  async finishRun(id: number, end: { status: RunStatus; modelVersion?: number | null; promoted?: boolean | null; error?: string | null }): Promise<void> {
    await this.db.write((tx) =>
      tx.run('UPDATE training_runs SET status = ?, finished_at = ?, model_version = ?, promoted = ?, error = ? WHERE id = ?', [
        end.status, new Date().toISOString(), end.modelVersion ?? null,
        end.promoted === undefined || end.promoted === null ? null : Number(end.promoted), end.error ?? null, id,
      ]),
    );
  }

  /** Runs left 'running' by a daemon that died: they are over. */
  async interruptUnfinishedRuns(): Promise<number> {
    const { changes } = await this.db.write((tx) =>
      tx.run("UPDATE training_runs SET status = 'interrupted', finished_at = ?, error = 'the daemon stopped during this run' WHERE status IN ('running', 'queued')", [
        new Date().toISOString(),
      ]),
    );
    return changes;
  }

  async listRuns(limit = 50): Promise<RunRecord[]> {
    return (await this.db.all<Row>('SELECT * FROM training_runs ORDER BY id DESC LIMIT ?', [limit])).map(runFromRow);
  }

  async getRun(id: number): Promise<RunRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM training_runs WHERE id = ?', [id]);
    return r && runFromRow(r);
  }

  async lastRunStart(): Promise<string | null> {
    const r = await this.db.get<{ t: string | null }>("SELECT MAX(started_at) AS t FROM training_runs WHERE status IN ('running', 'succeeded')");
    return r?.t ?? null;
  }

  // ---------------------------------------------------------------- known correspondents

  /** Adds correspondents not known yet (an address keeps its first origin); returns how many were new. */
  async addCorrespondents(list: Array<Omit<Correspondent, 'addedAt'>>): Promise<number> {
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

  async isCorrespondent(address: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 AS yes FROM correspondents WHERE address = ?', [address])) !== undefined;
  }

  async listCorrespondents(opts: { q?: string; limit: number; offset: number }): Promise<{ total: number; correspondents: Correspondent[] }> {
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
  async removeCorrespondent(address: string): Promise<boolean> {
    const { changes } = await this.db.write((tx) => tx.run('DELETE FROM correspondents WHERE address = ?', [address]));
    return changes > 0;
  }

  // ---------------------------------------------------------------- settings and connector state

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }

  async setSetting(key: string, value: string, tx?: Queryable): Promise<void> {
    const sql = 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
    if (tx) await tx.run(sql, [key, value]);
    else await this.db.write((t) => t.run(sql, [key, value]));
  }

  // ---------------------------------------------------------------- imported export files

  async importedFile(path: string): Promise<ImportedFile | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM imported_files WHERE path = ?', [path]);
    return r && importedFileFromRow(r);
  }

  async importedFileByHash(sha256: string): Promise<ImportedFile | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM imported_files WHERE sha256 = ? ORDER BY at DESC LIMIT 1', [sha256]);
    return r && importedFileFromRow(r);
  }

  async recordImportedFile(f: ImportedFile): Promise<void> {
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
  async importedFilesSummary(limit = 20): Promise<{ files: number; failed: ImportedFile[] }> {
    const n = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM imported_files');
    const failed = await this.db.all<Row>("SELECT * FROM imported_files WHERE outcome = 'failed' ORDER BY at DESC LIMIT ?", [limit]);
    return { files: n?.n ?? 0, failed: failed.map(importedFileFromRow) };
  }

  /** Key → JSON value storage for one connector, namespaced by `prefix`. */
  connectorState(prefix: string): { get(key: string): Promise<unknown>; set(key: string, value: unknown): Promise<void> } {
    return {
      get: async (key) => {
        const v = await this.getSetting(`${prefix}:${key}`);
        return v === undefined ? undefined : JSON.parse(v);
      },
      set: (key, value) => this.setSetting(`${prefix}:${key}`, JSON.stringify(value)),
    };
  }
}
