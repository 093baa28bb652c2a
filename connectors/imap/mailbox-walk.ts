/**
 * Walking a mailbox from its cursor: fetch what is above it in batches, hand each message on, and move the
 * cursor past it. Upholds: the cursor (UIDVALIDITY + highest UID done) is saved only after a message's work,
 * so a crash re-processes it; a UIDVALIDITY change starts a rescan (rescan.ts) from UID 1.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { Attempts } from './attempts.ts';
import { fetchNewMessages, mailboxPosition } from './fetch.ts';
import { KEY_BYTES, type Cursor } from './records.ts';
import type { Rescan } from './rescan.ts';
import type { HandleMessage, MailboxKind, Session } from './session.ts';
import type { ImapState } from './state.ts';

export interface MailboxWalkDeps {
  state: ImapState;
  log: Logger;
  /** On the very first run, also the newest N messages already in the watched mailbox. */
  backlog: number;
  /** Bytes fetched for scoring a watched mailbox's message. */
  maxBytes: number;
  /** Messages fetched per round trip in the watched mailbox (4× that in the spam mailbox). */
  batchSize: number;
  attempts: Attempts;
  rescan: Rescan;
  handle: HandleMessage;
  stopped: () => boolean;
}

export class MailboxWalk {
  constructor(private readonly d: MailboxWalkDeps) {}

  /** The mailbox's saved cursor; on a first run, one just after what is there now (less the backlog). */
  async cursor(client: ImapFlow, mailbox: string, kind: MailboxKind): Promise<Cursor> {
    const saved = await this.d.state.cursor(mailbox);
    if (saved) return saved;
    const backlog = kind === 'watched' ? this.d.backlog : 0;
    const pos = await mailboxPosition(client, mailbox, backlog);
    // Where "new" starts should UIDVALIDITY change: after the newest message left alone (INTERNALDATE has
    // whole seconds, on the server's clock); in a mailbox empty now everything to come is new.
    const seenMs = pos.highestInternalDate ? pos.highestInternalDate.getTime() + 1000 : 0;
    const cursor: Cursor = { uidValidity: pos.uidValidity, lastUid: pos.highestUid, seenMs };
    this.d.log.info({ mailbox, startAfterUid: cursor.lastUid, backlog }, 'first run on this mailbox: only newer mail is processed');
    await this.d.state.saveCursor(mailbox, cursor);
    return cursor;
  }

  /**
   * Works through the messages above the mailbox's cursor: the watched mailbox's are scored, the spam
   * mailbox's are checked for the user's moves. A UIDVALIDITY change starts a rescan from UID 1.
   */
  async process(s: Session, mailbox: string, kind: MailboxKind): Promise<void> {
    const { client } = s;
    const { state, attempts, rescan } = this.d;
    let cursor = await this.cursor(client, mailbox, kind);
    if (kind === 'spam' && !cursor.rescan) {
      // STATUS is cheap and keeps the watched mailbox selected when nothing changed.
      const status = await client.status(mailbox, { uidNext: true, uidValidity: true });
      if (status && Number(status.uidValidity) === cursor.uidValidity && (status.uidNext ?? 0) <= cursor.lastUid + 1) return;
    }
    const bytes = kind === 'watched' ? this.d.maxBytes : KEY_BYTES;
    const limit = kind === 'watched' ? this.d.batchSize : this.d.batchSize * 4;
    for (;;) {
      if (this.d.stopped()) return;
      // A rescan reads envelopes only: most messages are known and need no bytes.
      const res = await fetchNewMessages(client, mailbox, cursor.lastUid, cursor.rescan ? { maxBytes: 0, limit: limit * 4 } : { maxBytes: bytes, limit });
      if (res.uidValidity !== cursor.uidValidity) {
        cursor = await rescan.start(mailbox, cursor, res.uidValidity);
        continue;
      }
      for (const msg of res.messages) {
        if (this.d.stopped()) return;
        const id = kind === 'watched' ? `${res.uidValidity}:${msg.uid}` : `${mailbox}:${res.uidValidity}:${msg.uid}`;
        const c = cursor;
        const outcome = await attempts.run(id, () => (c.rescan
          ? rescan.one(s, mailbox, kind, msg, res.uidValidity, c)
          : this.d.handle(s, mailbox, kind, msg, res.uidValidity)));
        if (outcome === 'retry') return; // will be retried on the next round
        // An APPEND can carry any date: one from the future must not make all later mail look old.
        const when = Math.min(msg.internalDate?.getTime() ?? 0, Date.now() + 5 * 60_000);
        cursor = cursor.rescan
          ? { ...cursor, lastUid: msg.uid, rescanSeenMs: Math.max(cursor.rescanSeenMs ?? 0, when) }
          : { ...cursor, lastUid: msg.uid, ...(cursor.seenMs !== undefined || when ? { seenMs: Math.max(cursor.seenMs ?? 0, when) } : {}) };
        await state.saveCursor(mailbox, cursor);
      }
      if (!res.more) {
        cursor = await this.skipVanished(mailbox, cursor, res.uidNext);
        if (cursor.rescan) cursor = await rescan.end(mailbox, cursor);
        return;
      }
    }
  }

  /**
   * All of a mailbox's messages above the cursor were handled, yet UIDNEXT is further on: the messages in
   * between were expunged or moved away before we saw them. UIDs are never reused, so the cursor moves past
   * them (otherwise "UIDNEXT is ahead" would wake the loop again and again).
   */
  private async skipVanished(mailbox: string, cursor: Cursor, uidNext: number): Promise<Cursor> {
    if (uidNext - 1 <= cursor.lastUid) return cursor;
    const next = { ...cursor, lastUid: uidNext - 1 };
    await this.d.state.saveCursor(mailbox, next);
    return next;
  }
}
