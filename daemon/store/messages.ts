/**
 * Messages with their verdicts and corrections. The latest verdict and correction are also kept on the message row
 * so the review lists filter and page on indexed columns; both are written in the same transaction as the history
 * rows, so they can never disagree.
 */
import type { LabelledText } from '../../model/examples.ts';
import type { Database, Queryable, SqlValue } from '../db.ts';
import type { CorrectionOrigin, Label, MessageKind, SourceKind, VerdictLabel } from '../contract.ts';
import type { AppliedThresholds, VerdictReason } from '../verdicts.ts';
import { json, likePattern, num, parseJson, str, type Row } from './sql.ts';

/** A message to store: the record's own fields, with its full text and the time as a Date. */
export type NewMessage = Pick<MessageRecord, 'source' | 'kind' | 'account' | 'externalId' | 'sender' | 'subject' | 'knownLabel' | 'meta'> & {
  text: string;
  receivedAt: Date | null;
};

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

export interface TrainingExample extends LabelledText<Label> {
  kind: MessageKind;
  /** Where it came from: 'correction' (a user's label) or 'known' (a labelled import). */
  origin: 'correction' | 'known';
  /** When the label was given: the latest correction, or when a labelled import stored the message. */
  labelledAt: string;
}

const SNIPPET_CHARS = 200;

export function snippetOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS - 1)}…` : flat;
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

export class Messages {
  constructor(private readonly db: Database) {}

  async find(source: SourceKind, account: string, externalId: string): Promise<MessageRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM messages WHERE source = ? AND account = ? AND external_id = ?', [source, account, externalId]);
    return r && messageFromRow(r);
  }

  async get(id: number): Promise<MessageRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM messages WHERE id = ?', [id]);
    return r && messageFromRow(r);
  }

  async text(id: number): Promise<string | undefined> {
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

  async list(f: MessageFilter): Promise<MessageRecord[]> {
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
}
