/**
 * The message shape and service contract shared by the daemon, its connectors and its API.
 * Connectors turn their source's messages into IncomingMessage and call the ScoringService; they never
 * touch the model or the database directly.
 */

export type SourceKind = 'imap' | 'sms' | 'api';
export type Label = 'ham' | 'spam';
/** Who made a label correction. */
export type CorrectionOrigin = 'ui' | 'imap-move' | 'cli' | 'import';

export interface IncomingMessage {
  source: SourceKind;
  /** Account or file the message came from, e.g. "alice@example.org" or "sms-export.xml". */
  account: string;
  /** Stable id within (source, account): IMAP "<uidvalidity>:<uid>", SMS content hash, ... */
  externalId: string;
  sender?: string;
  subject?: string;
  /** Plain-text body (HTML already turned into text by the connector). */
  body: string;
  receivedAt?: Date;
  /** A label the source already knows (labelled imports); becomes training data. */
  knownLabel?: Label;
  /** Source-specific data the connector needs later (mailbox, Message-ID, size, ...). JSON-serialisable. */
  meta?: Record<string, unknown>;
}

export interface Verdict {
  messageId: number;
  modelVersion: string;
  spamProbability: number;
  label: Label;
  threshold: number;
  scoredAt: Date;
}

export interface ScoringService {
  /** Scores one message, stores message + verdict, broadcasts it. Known messages return their stored verdict. */
  score(message: IncomingMessage): Promise<Verdict & { duplicate: boolean }>;
  /** Stores a user's label correction for a stored message and broadcasts it. */
  correct(messageId: number, label: Label, origin: CorrectionOrigin): Promise<void>;
}

/** A label correction as the daemon broadcasts it to connectors (so e.g. IMAP can move the message to match). */
export interface CorrectionEvent {
  messageId: number;
  source: SourceKind;
  account: string;
  externalId: string;
  /** The connector's own data stored with the message (IncomingMessage.meta). */
  meta: Record<string, unknown> | null;
  /** The new effective label; null when a correction was withdrawn and the model's verdict applies again. */
  label: Label | null;
  /** The label the message had before (effective). */
  previous: Label | null;
  origin: CorrectionOrigin;
}

/** Small persistent key → JSON value storage for a connector's cursors and bookkeeping (backed by SQLite). */
export interface ConnectorState {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

/** A running source of messages the daemon starts and stops. */
export interface Connector {
  readonly source: SourceKind;
  /** The IncomingMessage.account this connector produces. */
  readonly account: string;
  start(): Promise<void>;
  /** Stops cleanly: finishes or abandons the current message so a restart resumes it. */
  stop(): Promise<void>;
  /** Applies a correction made elsewhere (UI, CLI) to the source, e.g. moves the IMAP message. */
  applyCorrection?(event: CorrectionEvent): Promise<void>;
}

/** An export file a connector finished with: imported (perhaps with per-record problems) or failed, and why. */
export interface ImportedFile {
  path: string;
  size: number;
  mtimeMs: number;
  sha256: string;
  outcome: 'imported' | 'failed';
  /** Why it failed, or what was odd about it (truncated, per-record problems); null when nothing was. */
  detail: string | null;
  scored: number;
  duplicates: number;
  errors: number;
  /** ISO time. */
  at: string;
}

/** The daemon's memory of imported export files (backed by SQLite), so a restart does not import them again. */
export interface ImportLedger {
  get(path: string): Promise<ImportedFile | undefined>;
  /** The latest file with this content, under any name (sync tools rename files). */
  byHash(sha256: string): Promise<ImportedFile | undefined>;
  record(file: ImportedFile): Promise<void>;
}
