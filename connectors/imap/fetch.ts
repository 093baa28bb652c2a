/**
 * Reading new messages from a mailbox: envelope, size and at most `maxBytes` of the raw source per
 * message (BODY.PEEK[]<0.maxBytes>: the server sends only that prefix, a 30 MB message never loads whole,
 * and PEEK leaves \Seen alone).
 */
import type { FetchQueryObject, ImapFlow, MessageEnvelopeObject } from 'imapflow';

export interface FetchedMessage {
  uid: number;
  /** RFC822.SIZE: the whole message's size on the server. */
  size: number;
  messageId?: string;
  /** The Date header. */
  date?: Date;
  /** INTERNALDATE: when the server received it (kept by MOVE/COPY and by migration tools). */
  internalDate?: Date;
  flags: string[];
  /** The first maxBytes of the raw message (empty when maxBytes is 0). */
  source: Buffer;
  /** source is only a prefix of the message. */
  truncated: boolean;
}

export interface FetchResult {
  uidValidity: number;
  /**
   * The mailbox's UIDNEXT. With `more` false every UID below it has been seen, so a caller may skip to it;
   * with `more` true it must not (the UIDs after the batch are still to come).
   */
  uidNext: number;
  /** In ascending UID order, all > sinceUid. */
  messages: FetchedMessage[];
  /** More new messages remain after these (limit reached). */
  more: boolean;
}

export interface FetchOptions {
  /** Bytes of source to fetch per message; 0 for none. */
  maxBytes: number;
  /** Most messages returned per call (bounds memory: limit × maxBytes). Default 20. */
  limit?: number;
}

export interface MailboxPosition {
  uidValidity: number;
  uidNext: number;
  /** Highest UID present, 0 for an empty mailbox. */
  highestUid: number;
  /** INTERNALDATE of the message at highestUid. */
  highestInternalDate?: Date;
  exists: number;
}

/** Messages with UID > sinceUid, oldest first. */
export async function fetchNewMessages(client: ImapFlow, mailbox: string, sinceUid: number, opts: FetchOptions): Promise<FetchResult> {
  const limit = Math.max(1, opts.limit ?? 20);
  const lock = await client.getMailboxLock(mailbox);
  try {
    const box = client.mailbox;
    if (!box) throw new Error(`mailbox ${mailbox} is not selected`);
    // Read before the SEARCH: every UID below it already existed, so the search saw it (or it was expunged).
    const head = { uidValidity: Number(box.uidValidity), uidNext: box.uidNext };
    // No shortcut on box.exists: for a mailbox that stays selected it is only as fresh as the last untagged
    // EXISTS, and without IDLE nothing sends one; the SEARCH itself makes the server report new mail.
    const found = await client.search({ uid: `${sinceUid + 1}:*` }, { uid: true });
    if (found === false || found === undefined) throw new Error(`UID SEARCH in ${mailbox} failed`);
    // "n:*" also matches the highest UID when that is below n, hence the filter.
    const uids = found.filter((u) => u > sinceUid).sort((a, b) => a - b);
    const batch = uids.slice(0, limit);
    const messages = batch.length ? await fetchLocked(client, batch, opts.maxBytes) : [];
    // box.uidNext is from SELECT time when the mailbox stayed selected: never report less than what was seen.
    const uidNext = Math.max(head.uidNext, (uids.at(-1) ?? 0) + 1);
    return { uidValidity: head.uidValidity, uidNext, messages, more: uids.length > batch.length };
  } finally {
    lock.release();
  }
}

/** The given UIDs of a mailbox (those still there), oldest first, with the mailbox's UIDVALIDITY. */
export async function fetchByUid(client: ImapFlow, mailbox: string, uids: number[], maxBytes: number): Promise<{ uidValidity: number; messages: FetchedMessage[] }> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const box = client.mailbox;
    if (!box) throw new Error(`mailbox ${mailbox} is not selected`);
    return { uidValidity: Number(box.uidValidity), messages: uids.length ? await fetchLocked(client, uids, maxBytes) : [] };
  } finally {
    lock.release();
  }
}

async function fetchLocked(client: ImapFlow, uids: number[], maxBytes: number): Promise<FetchedMessage[]> {
  const query: FetchQueryObject = {
    uid: true,
    size: true,
    flags: true,
    envelope: true,
    internalDate: true,
    ...(maxBytes > 0 ? { source: { start: 0, maxLength: maxBytes } } : {}),
  };
  const messages: FetchedMessage[] = [];
  for await (const m of client.fetch(uids.join(','), query, { uid: true })) {
    const source = m.source ?? Buffer.alloc(0);
    const size = m.size ?? source.length;
    const internal = m.internalDate instanceof Date ? m.internalDate : m.internalDate ? new Date(m.internalDate) : undefined;
    messages.push({
      uid: m.uid,
      size,
      ...envelopeFields(m.envelope),
      ...(internal && !Number.isNaN(internal.getTime()) ? { internalDate: internal } : {}),
      flags: [...(m.flags ?? [])],
      source,
      truncated: maxBytes > 0 && size > source.length,
    });
  }
  return messages.sort((a, b) => a.uid - b.uid);
}

/**
 * UIDVALIDITY, UIDNEXT and the highest UID of a mailbox; with `backlog` > 0, `highestUid` is instead
 * the UID just below the newest `backlog` messages (where a first run starts to score the last N).
 */
export async function mailboxPosition(client: ImapFlow, mailbox: string, backlog = 0): Promise<MailboxPosition> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    await client.noop(); // a mailbox that stayed selected: bring EXISTS up to date
    const box = client.mailbox;
    if (!box) throw new Error(`mailbox ${mailbox} is not selected`);
    const pos: MailboxPosition = { uidValidity: Number(box.uidValidity), uidNext: box.uidNext, exists: box.exists, highestUid: 0 };
    if (box.exists === 0 || (backlog > 0 && backlog >= box.exists)) return pos;
    const seq = backlog > 0 ? String(box.exists - backlog) : '*';
    const at = await client.fetchOne(seq, { uid: true, internalDate: true });
    if (at) {
      pos.highestUid = at.uid;
      const d = at.internalDate instanceof Date ? at.internalDate : at.internalDate ? new Date(at.internalDate) : undefined;
      if (d && !Number.isNaN(d.getTime())) pos.highestInternalDate = d;
    }
    return pos;
  } finally {
    lock.release();
  }
}

function envelopeFields(env: MessageEnvelopeObject | undefined): { messageId?: string; date?: Date } {
  const out: { messageId?: string; date?: Date } = {};
  if (env?.messageId) out.messageId = env.messageId.slice(0, 998);
  if (env?.date) {
    const d = env.date instanceof Date ? env.date : new Date(env.date);
    if (!Number.isNaN(d.getTime())) out.date = d;
  }
  return out;
}
