/** What one IMAP login works with, handed to the connector's collaborators for each step. */
import type { ImapFlow } from 'imapflow';
import type { FetchedMessage } from './fetch.ts';

export interface Session {
  readonly client: ImapFlow;
  /** The watched mailbox. */
  readonly inbox: string;
  /** The spam mailbox, resolved at login; undefined when neither moving nor learning needs one. */
  readonly spam: string | undefined;
}

/** The watched mailbox's messages are scored; the spam mailbox's are checked for the user's moves. */
export type MailboxKind = 'watched' | 'spam';

/** Handles one message found above a mailbox's cursor. */
export type HandleMessage = (s: Session, mailbox: string, kind: MailboxKind, msg: FetchedMessage, uidValidity: number) => Promise<void>;
