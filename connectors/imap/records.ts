/**
 * What the IMAP connector remembers between runs, kept in its ConnectorState as JSON: per-mailbox cursors,
 * per-message records and corrections not yet carried out. Everything read back is parsed by a schema (as*), since
 * the state outlives versions of this code; the record key identifies a message across moves and renumbering.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { FetchedMessage } from './fetch.ts';

/** Reads what was stored back through a schema: undefined (so the caller starts afresh) when it does not fit. */
function read<S extends z.ZodType>(schema: S, v: unknown): z.output<S> | undefined {
  const r = schema.safeParse(v);
  return r.success ? r.data : undefined;
}

/** An optional field that is dropped, not fatal, when an older version stored something else there. */
const optional = <S extends z.ZodType>(schema: S) => schema.optional().catch(undefined);
const label = z.enum(['ham', 'spam', 'uncertain']);

/**
 * What the connector stores in IncomingMessage.meta (the daemon hands it back in CorrectionEvent.meta).
 * mailbox/uidValidity/uid are where it was scored; it may have moved since, so messageId + date + size (and
 * key, the connector's own record) find it again.
 */
const metaSchema = z.object({
  mailbox: z.string(),
  uidValidity: z.number().finite().catch(0),
  uid: z.number().finite().catch(0),
  /** Message-ID header, angle brackets included. */
  messageId: z.string().min(1).nullable().catch(null),
  /** Date header, ISO 8601. */
  date: z.string().min(1).nullable().catch(null),
  /** RFC822.SIZE. */
  size: z.number(),
  /** The connector's record key (see messageKey). */
  key: z.string(),
  /** Only a prefix of the message (or of its text) was scored. */
  truncated: z.boolean().catch(false),
  attachments: z.number().finite().catch(0),
  problems: optional(z.array(z.string())),
});
export type ImapMessageMeta = z.infer<typeof metaSchema>;

const cursorSchema = z.object({
  uidValidity: z.number(),
  lastUid: z.number(),
  /**
   * Newest INTERNALDATE (ms) handled, or where a first run started: after a UIDVALIDITY change, an unknown
   * message received before this is old mail, not new.
   */
  seenMs: optional(z.number()),
  /** A UIDVALIDITY change is being worked through (UIDs up to lastUid done). */
  rescan: optional(z.literal(true)),
  /** Newest INTERNALDATE met during the rescan; becomes seenMs when it ends. */
  rescanSeenMs: optional(z.number()),
});
export type Cursor = z.infer<typeof cursorSchema>;

/** What the connector knows about one message. */
const recordSchema = z.object({
  /** The daemon's stored message id; absent for a message found in the spam mailbox that was never scored. */
  id: optional(z.number()),
  label: optional(label),
  /** Where it was last seen. uid is unknown after a move on a server without UIDPLUS. */
  mailbox: z.string(),
  uidValidity: optional(z.number()),
  uid: optional(z.number()),
  messageIdHeader: optional(z.string()),
  /** Who put it there: our verdict, the user (a move, or a correction in the UI), or the server/someone before us. */
  by: z.enum(['verdict', 'user', 'server']),
  /** We decided to move it to the spam mailbox; the move may or may not have happened. */
  pendingMove: optional(z.literal(true)),
  /** We decided to move it back to the watched mailbox (a correction in the UI); may or may not have happened. */
  pendingRestore: optional(z.literal(true)),
});
export type MessageRecord = z.infer<typeof recordSchema>;

/** A correction from the daemon waiting to be carried out on the server; persisted until it is. */
const pendingSchema = z.object({
  messageId: z.number(),
  /** The effective label after the correction (uncertain: a correction withdrawn from an uncertain verdict). */
  label,
  meta: metaSchema,
});
export type PendingCorrection = z.infer<typeof pendingSchema>;

const sentCursorSchema = z.object({ uidValidity: z.number().int(), lastUid: z.number().int() });
export type SentCursor = z.infer<typeof sentCursorSchema>;

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

export const asCursor = (v: unknown) => read(cursorSchema, v);
export const asRecord = (v: unknown) => read(recordSchema, v);
/** The meta this connector stored, checked: it comes back from the daemon's database. */
export const asMeta = (v: unknown) => read(metaSchema, v);
export const asPending = (v: unknown) => read(pendingSchema, v);
export const asSentCursor = (v: unknown) => read(sentCursorSchema, v);
