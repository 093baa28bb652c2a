/**
 * Everything the daemon remembers, in one SQLite file: messages, verdicts, corrections, model versions,
 * training runs and connector state. The latest verdict and correction are also kept on the message row so
 * the review lists filter and page on indexed columns; both are written in the same transaction as the
 * history rows, so they can never disagree.
 */
import { Database, type Queryable, type SqlValue } from './db.ts';
import type { CorrectionOrigin, Label, SourceKind } from './types.ts';

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
  label: Label;
  threshold: number;
  scoredAt: Date;
}

export interface MessageRecord {
  id: number;
  source: SourceKind;
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
  label: Label | null;
}

export interface MessageFilter {
  label?: Label;
  source?: SourceKind;
  corrected?: boolean;
  /** Spam probability within this distance of the message's threshold. */
  uncertainWithin?: number;
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
  /** Where it came from: 'correction' (a user's label) or 'known' (a labelled import). */
  origin: 'correction' | 'known';
  /** When the label was given: the latest correction, or when a labelled import stored the message. */
  labelledAt: string;
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

export function snippetOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS - 1)}…` : flat;
}

type Row = Record<string, SqlValue>;

function messageFromRow(r: Row): MessageRecord {
  const verdict =
    r.verdict_label === null
      ? null
      : {
          modelVersion: Number(r.model_version),
          spamProbability: Number(r.spam_probability),
          label: r.verdict_label as Label,
          threshold: Number(r.threshold),
          scoredAt: String(r.scored_at),
        };
  const correction =
    r.correction_label === null
      ? null
      : { label: r.correction_label as Label, origin: r.correction_origin as CorrectionOrigin, at: String(r.corrected_at) };
  return {
    id: Number(r.id),
    source: r.source as SourceKind,
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
        `INSERT INTO messages (source, account, external_id, sender, subject, snippet, text, received_at, created_at, known_label, meta,
                               verdict_label, spam_probability, threshold, model_version, scored_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          m.source, m.account, m.externalId, m.sender, m.subject, snippetOf(m.text), m.text,
          m.receivedAt?.toISOString() ?? null, now, m.knownLabel, json(m.meta),
          v.label, v.spamProbability, v.threshold, v.modelVersion, v.scoredAt.toISOString(),
        ],
      );
      await tx.run('INSERT INTO verdicts (message_id, model_version, spam_probability, label, threshold, scored_at) VALUES (?, ?, ?, ?, ?, ?)', [
        lastID, v.modelVersion, v.spamProbability, v.label, v.threshold, v.scoredAt.toISOString(),
      ]);
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
    return this.db.write(async (tx) => {
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
    if (f.corrected !== undefined) where.push(f.corrected ? 'correction_label IS NOT NULL' : 'correction_label IS NULL');
    if (f.uncertainWithin !== undefined) {
      where.push('verdict_label IS NOT NULL AND ABS(spam_probability - threshold) <= ?');
      params.push(f.uncertainWithin);
    }
    if (f.q) {
      // LIKE with escaped wildcards: the search text is data, never SQL or a pattern.
      const pattern = `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
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

  async verdictsOf(id: number): Promise<Array<VerdictRecord & { scoredAt: Date }>> {
    const rows = await this.db.all<Row>('SELECT * FROM verdicts WHERE message_id = ? ORDER BY id DESC', [id]);
    return rows.map((r) => ({
      modelVersion: Number(r.model_version),
      spamProbability: Number(r.spam_probability),
      label: r.label as Label,
      threshold: Number(r.threshold),
      scoredAt: new Date(String(r.scored_at)),
    }));
  }

  async correctionsOf(id: number): Promise<Array<{ label: Label | null; previous: Label | null; origin: string; at: string }>> {
    const rows = await this.db.all<Row>('SELECT * FROM corrections WHERE message_id = ? ORDER BY id DESC', [id]);
    return rows.map((r) => ({ label: (r.label as Label | null) ?? null, previous: (r.previous as Label | null) ?? null, origin: String(r.origin), at: String(r.created_at) }));
  }

  async counts(): Promise<{ messages: number; spam: number; ham: number; corrected: number }> {
    const r = await this.db.get<Row>(
      `SELECT COUNT(*) AS messages,
              SUM(COALESCE(correction_label, verdict_label) = 'spam') AS spam,
              SUM(COALESCE(correction_label, verdict_label) = 'ham') AS ham,
              SUM(correction_label IS NOT NULL) AS corrected
       FROM messages`,
    );
    return { messages: Number(r?.messages ?? 0), spam: Number(r?.spam ?? 0), ham: Number(r?.ham ?? 0), corrected: Number(r?.corrected ?? 0) };
  }

  /** Every message whose label a person gave: current corrections and labelled imports. */
  async labelledExamples(): Promise<TrainingExample[]> {
    const rows = await this.db.all<Row>(
      `SELECT text, COALESCE(correction_label, known_label) AS label, correction_label IS NOT NULL AS corrected,
              COALESCE((SELECT MAX(c.created_at) FROM corrections c WHERE c.message_id = m.id), m.created_at) AS labelled_at
       FROM messages m WHERE correction_label IS NOT NULL OR known_label IS NOT NULL ORDER BY id`,
    );
    return rows.map((r) => ({
      text: String(r.text),
      label: r.label as Label,
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
        `INSERT INTO model_versions (version, created_at, dir, base, base_hash, training_size, corrections, metrics, compared, status, run_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [m.version, m.createdAt, m.dir, m.base, m.baseHash, m.trainingSize, m.corrections, json(m.metrics), json(m.compared), m.status, m.runId],
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

  // ---------------------------------------------------------------- settings and connector state

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }

  async setSetting(key: string, value: string, tx?: Queryable): Promise<void> {
    const sql = 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
    if (tx) await tx.run(sql, [key, value]);
    else await this.db.write((t) => t.run(sql, [key, value]));
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
