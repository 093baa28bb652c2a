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
