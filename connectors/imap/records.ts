/**
 * What the IMAP connector remembers between runs, kept in its ConnectorState as JSON: per-mailbox cursors,
 * per-message records and corrections not yet carried out. Everything read back is checked (as*), since the
 * state outlives versions of this code; the record key identifies a message across moves and renumbering.
 */
import { createHash } from 'node:crypto';
import type { VerdictLabel } from '../../daemon/contract.ts';
import type { FetchedMessage } from './fetch.ts';
import type { SentCursor } from './sent.ts';

/**
 * What the connector stores in IncomingMessage.meta (the daemon hands it back in CorrectionEvent.meta).
 * mailbox/uidValidity/uid are where it was scored; it may have moved since, so messageId + date + size (and
 * key, the connector's own record) find it again.
 */
export interface ImapMessageMeta {
  mailbox: string;
  uidValidity: number;
  uid: number;
  /** Message-ID header, angle brackets included. */
  messageId: string | null;
  /** Date header, ISO 8601. */
  date: string | null;
  /** RFC822.SIZE. */
  size: number;
  /** The connector's record key (see messageKey). */
  key: string;
  /** Only a prefix of the message (or of its text) was scored. */
  truncated: boolean;
  attachments: number;
  problems?: string[];
}

export interface Cursor {
  uidValidity: number;
  lastUid: number;
  /**
   * Newest INTERNALDATE (ms) handled, or where a first run started: after a UIDVALIDITY change, an unknown
   * message received before this is old mail, not new.
   */
  seenMs?: number;
  /** A UIDVALIDITY change is being worked through (UIDs up to lastUid done). */
  rescan?: boolean;
  /** Newest INTERNALDATE met during the rescan; becomes seenMs when it ends. */
  rescanSeenMs?: number;
}

/** What the connector knows about one message. */
export interface MessageRecord {
  /** The daemon's stored message id; absent for a message found in the spam mailbox that was never scored. */
  id?: number;
  label?: VerdictLabel;
  /** Where it was last seen. uid is unknown after a move on a server without UIDPLUS. */
  mailbox: string;
  uidValidity?: number;
  uid?: number;
  messageIdHeader?: string;
  /** Who put it there: our verdict, the user (a move, or a correction in the UI), or the server/someone before us. */
  by: 'verdict' | 'user' | 'server';
  /** We decided to move it to the spam mailbox; the move may or may not have happened. */
  pendingMove?: boolean;
  /** We decided to move it back to the watched mailbox (a correction in the UI); may or may not have happened. */
  pendingRestore?: boolean;
}

/** A correction from the daemon waiting to be carried out on the server; persisted until it is. */
export interface PendingCorrection {
  messageId: number;
  /** The effective label after the correction (uncertain: a correction withdrawn from an uncertain verdict). */
  label: VerdictLabel;
  meta: ImapMessageMeta;
}

export interface Place {
  mailbox: string;
  uidValidity: number;
  uid: number;
}

/** Bytes of a message without Message-ID that its key hashes: fetch at least this much. */
export const KEY_BYTES = 16 * 1024;

/**
 * Message-ID + Date header + size, or the first 16 KiB + size when there is no Message-ID; hashed to a
 * short key. The date tells apart a resent message that reuses its Message-ID.
 */
export function messageKey(messageId: string | undefined, date: Date | undefined, size: number, source: Buffer): string {
  const h = createHash('sha256');
  if (messageId) h.update(`mid\0${messageId}\0${date ? date.toISOString() : ''}\0${size}`);
  else h.update(`src\0${size}\0`).update(source.subarray(0, KEY_BYTES));
  return h.digest('base64url').slice(0, 32);
}

export function keyOf(msg: FetchedMessage): string {
  return messageKey(msg.messageId, msg.date, msg.size, msg.source);
}

export function sameplace(rec: MessageRecord, here: Place): boolean {
  return rec.mailbox === here.mailbox && rec.uidValidity === here.uidValidity && rec.uid === here.uid;
}

export function asCursor(v: unknown): Cursor | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const c = v as Record<string, unknown>;
  if (typeof c.uidValidity !== 'number' || typeof c.lastUid !== 'number') return undefined;
  const cursor: Cursor = { uidValidity: c.uidValidity, lastUid: c.lastUid };
  if (typeof c.seenMs === 'number') cursor.seenMs = c.seenMs;
  if (c.rescan === true) cursor.rescan = true;
  if (typeof c.rescanSeenMs === 'number') cursor.rescanSeenMs = c.rescanSeenMs;
  return cursor;
}

export function asRecord(v: unknown): MessageRecord | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.mailbox !== 'string' || (r.by !== 'verdict' && r.by !== 'user' && r.by !== 'server')) return undefined;
  const rec: MessageRecord = { mailbox: r.mailbox, by: r.by };
  if (typeof r.id === 'number') rec.id = r.id;
  if (r.label === 'ham' || r.label === 'spam' || r.label === 'uncertain') rec.label = r.label;
  if (typeof r.uidValidity === 'number') rec.uidValidity = r.uidValidity;
  if (typeof r.uid === 'number') rec.uid = r.uid;
  if (typeof r.messageIdHeader === 'string') rec.messageIdHeader = r.messageIdHeader;
  if (r.pendingMove === true) rec.pendingMove = true;
  if (r.pendingRestore === true) rec.pendingRestore = true;
  return rec;
}

/** The meta this connector stored, checked: it comes back from the daemon's database. */
export function asMeta(v: unknown): ImapMessageMeta | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const m = v as Record<string, unknown>;
  if (typeof m.mailbox !== 'string' || typeof m.key !== 'string' || typeof m.size !== 'number') return undefined;
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const str = (x: unknown) => (typeof x === 'string' && x ? x : null);
  return {
    mailbox: m.mailbox,
    uidValidity: num(m.uidValidity),
    uid: num(m.uid),
    messageId: str(m.messageId),
    date: str(m.date),
    size: m.size,
    key: m.key,
    truncated: m.truncated === true,
    attachments: num(m.attachments),
  };
}

export function asPending(v: unknown): PendingCorrection | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const p = v as Record<string, unknown>;
  const meta = asMeta(p.meta);
  if (typeof p.messageId !== 'number' || (p.label !== 'ham' && p.label !== 'spam' && p.label !== 'uncertain') || !meta) return undefined;
  return { messageId: p.messageId, label: p.label, meta };
}

export function asSentCursor(v: unknown): SentCursor | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const c = v as Record<string, unknown>;
  if (!Number.isSafeInteger(c.uidValidity) || !Number.isSafeInteger(c.lastUid)) return undefined;
  return { uidValidity: c.uidValidity as number, lastUid: c.lastUid as number };
}
