/**
 * The contract between the daemon and its connectors: the message shape connectors hand in, the services they call
 * (scoring, corrections, known correspondents, their own persistent state), the Connector interface the daemon
 * starts and stops, and the corrections it sends back. Connectors import this module and nothing else of the
 * daemon; they never touch the model or the database.
 */
import type { Logger } from 'pino';
import type { LabelName } from '../model/examples.ts';
import type { ImapAccountConfig } from './config.ts';

/**
 * How the daemon reads a raw e-mail (its SpamAssassin training corpus goes through the same function), so what an
 * e-mail connector scores is read exactly as what the model learned from.
 */
export { parseEmail, type ParsedEmail } from './email.ts';
/** A file's SHA-256, streamed (e.g. to recognise an export file seen before under another name). */
export { sha256File } from '../model/files.ts';
/** Where a command-line client (`gptspam import`) finds the running daemon: its address and access token. */
export { localDaemon, type LocalDaemon } from './local-daemon.ts';
/** An IMAP account as the configuration gives it (validated there: exactly one secret, known options). */
export type { ImapAccountConfig } from './config.ts';

export type SourceKind = 'imap' | 'sms' | 'api';
/**
 * What kind of message it is: decides how it is turned into model text and which thresholds judge it. A kind the
 * model has no training examples of is never called spam.
 */
export const MESSAGE_KINDS = ['email', 'sms', 'other'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
/** A label a person gives (and a model trains on): the classifier's class names. */
export type Label = LabelName;
/** A verdict: spam only above a threshold calibrated for a target ham loss; uncertain between ham and spam. */
export type VerdictLabel = Label | 'uncertain';
/** Who made a label correction: a person in the web UI (or through the API), or by moving the message in IMAP. */
export type CorrectionOrigin = 'ui' | 'imap-move';

export interface IncomingMessage {
  source: SourceKind;
  /** Account or file the message came from, e.g. "alice@example.org" or "sms-export.xml". */
  account: string;
  /** Stable id within (source, account): IMAP "<uidvalidity>:<uid>", SMS content hash, ... */
  externalId: string;
  /** Default: from the source (IMAP: email, SMS: sms, API: other). */
  kind?: MessageKind;
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
  kind: MessageKind;
  modelVersion: number;
  spamProbability: number;
  /** ham, uncertain or spam: connectors act on spam only. */
  label: VerdictLabel;
  /** Why (daemon/verdicts.ts), e.g. 'above-spam-threshold', 'known-correspondent', 'kind-not-trained'. */
  reason: string;
  /** The thresholds applied, as probabilities (null: none). */
  thresholds: { spam: number | null; ham: number | null };
  scoredAt: Date;
}

/** An address the user corresponds with, as a connector finds it (normalised by the daemon). */
export interface CorrespondentInput {
  address: string;
  /** How it was shown, e.g. "Alice <alice@example.org>" or a contact name. */
  display?: string;
  origin: 'imap-sent' | 'sms-sent' | 'sms-contact';
  account?: string;
}

export interface ScoringService {
  /** Scores one message, stores message + verdict, broadcasts it. Known messages return their stored verdict. */
  score(message: IncomingMessage): Promise<Verdict & { duplicate: boolean }>;
  /** Stores a user's label correction for a stored message and broadcasts it. */
  correct(messageId: number, label: Label, origin: CorrectionOrigin): Promise<void>;
  /** Remembers addresses the user corresponds with: their messages are ham. Returns how many were new. */
  addCorrespondents(list: CorrespondentInput[]): Promise<number>;
}

/** A label correction as the daemon broadcasts it to connectors (so e.g. IMAP can move the message to match). */
/** The kind of a message from a source that does not say (IMAP is e-mail, SMS exports are text messages). */
export function kindOfSource(source: SourceKind): MessageKind {
  return source === 'imap' ? 'email' : source === 'sms' ? 'sms' : 'other';
}

export interface CorrectionEvent {
  messageId: number;
  source: SourceKind;
  account: string;
  externalId: string;
  /** The connector's own data stored with the message (IncomingMessage.meta). */
  meta: Record<string, unknown> | null;
  /** The new effective label: the correction's, or the model's verdict again when a correction was withdrawn. */
  label: VerdictLabel | null;
  /** The label the message had before (effective). */
  previous: VerdictLabel | null;
  origin: CorrectionOrigin;
}

/** Small persistent key → JSON value storage for a connector's cursors and bookkeeping (backed by SQLite). */
export interface ConnectorState {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

/** What a connector may tell the daemon about its connection (logged: "is it connected to my mailbox?"). */
export interface ConnectorEvents {
  /** Logged in and watching: what is delivered from now on is new mail. */
  connected: [];
  disconnected: [];
  error: [Error];
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
  /** Connection events, for a connector that has a connection (a folder watcher has none). */
  on?<E extends keyof ConnectorEvents>(event: E, listener: (...args: ConnectorEvents[E]) => void): unknown;
}

/** What the configuration asks of the connectors. */
export interface ConnectorSettings {
  /** The folder watched for SMS exports; '' when none is. */
  smsWatchFolder: string;
  sms: { includeSent: boolean; settleSeconds: number };
  imap: { accounts: ImapAccountConfig[]; pollSeconds: number; backlog: number };
  /** Learn known correspondents (an IMAP account's Sent mailbox). */
  knownCorrespondents: boolean;
}

/** Builds the connectors the settings ask for (connectors/index.ts); the daemon starts them once a model is ready. */
export type ConnectorFactory = (settings: ConnectorSettings, services: ConnectorServices) => Connector[];

/** What the daemon gives the connectors it starts. */
export interface ConnectorServices {
  scoring: ScoringService;
  /** Persistent key → JSON state; each connector takes its own prefix. */
  state(prefix: string): ConnectorState;
  /** Export files already imported or failed (the SMS folder connector). */
  importLedger: ImportLedger;
  logger: Logger;
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
