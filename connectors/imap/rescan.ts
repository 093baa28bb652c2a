/**
 * UIDVALIDITY changes (a mailbox recreated, a server migrated): every old UID is void, so the mailbox is walked
 * again from UID 1. Upholds: known messages only get their new UID (they are not scored again); unknown ones are
 * new mail only when they arrived after the newest one seen before the change (INTERNALDATE).
 */
import type { Logger } from 'pino';
import { fetchByUid, type FetchedMessage } from './fetch.ts';
import { KEY_BYTES, keyOf, type Cursor } from './records.ts';
import type { HandleMessage, MailboxKind, Session } from './session.ts';
import type { ImapState } from './state.ts';

export interface RescanDeps {
  state: ImapState;
  log: Logger;
  /** Bytes fetched for scoring a watched mailbox's message. */
  maxBytes: number;
  handle: HandleMessage;
}

export class Rescan {
  constructor(private readonly d: RescanDeps) {}

  async start(mailbox: string, old: Cursor, uidValidity: number): Promise<Cursor> {
    const cursor: Cursor = { uidValidity, lastUid: 0, rescan: true };
    if (old.seenMs !== undefined) cursor.seenMs = old.seenMs;
    this.d.log.warn({ mailbox, oldUidValidity: old.uidValidity, uidValidity }, 'UIDVALIDITY changed (mailbox recreated or server migrated): matching its messages again by Message-ID, date and size');
    await this.d.state.saveCursor(mailbox, cursor);
    return cursor;
  }

  async end(mailbox: string, cursor: Cursor): Promise<Cursor> {
    const next: Cursor = { uidValidity: cursor.uidValidity, lastUid: cursor.lastUid };
    if (cursor.seenMs !== undefined || cursor.rescanSeenMs !== undefined) next.seenMs = Math.max(cursor.seenMs ?? 0, cursor.rescanSeenMs ?? 0);
    await this.d.state.saveCursor(mailbox, next);
    this.d.log.info({ mailbox }, 'rescan after the UIDVALIDITY change finished');
    return next;
  }

  /**
   * One message of a rescan (envelope only). Known here before: only its UID changed, it is not scored
   * again. Unknown and received before the newest message seen before the change: old mail, left alone.
   * Anything else (new mail, or a message that moved here meanwhile) is handled as usual.
   */
  async one(s: Session, mailbox: string, kind: MailboxKind, msg: FetchedMessage, uidValidity: number, cursor: Cursor): Promise<void> {
    const { client } = s;
    let keyed: FetchedMessage | undefined = msg;
    if (!msg.messageId) keyed = (await fetchByUid(client, mailbox, [msg.uid], KEY_BYTES)).messages[0]; // the key needs its first bytes
    if (!keyed) return; // expunged meanwhile
    const key = keyOf(keyed);
    const rec = await this.d.state.record(key);
    if (rec && rec.mailbox === mailbox) {
      const arrived = kind === 'spam' ? { pendingMove: undefined } : { pendingRestore: undefined };
      await this.d.state.saveRecord(key, { ...rec, uidValidity, uid: msg.uid, ...arrived });
      return;
    }
    const when = msg.internalDate?.getTime();
    if (!rec && (when === undefined || cursor.seenMs === undefined || when < cursor.seenMs)) return;
    const full = kind === 'watched' || !keyed.source.length ? (await fetchByUid(client, mailbox, [msg.uid], kind === 'watched' ? this.d.maxBytes : KEY_BYTES)).messages[0] : keyed;
    if (full) await this.d.handle(s, mailbox, kind, full, uidValidity);
  }
}
