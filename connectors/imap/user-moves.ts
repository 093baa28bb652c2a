/**
 * Learning from the user's moves: a message they move into the spam mailbox is corrected to spam, one they move
 * out of it (back to the watched mailbox) to ham. Upholds: a move counts as the user's only when the message is
 * gone from where we last saw it (UID check), so a second delivery of the same message, or our own move
 * arriving (see our-moves.ts), is never mistaken for a correction.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { IncomingMessage, ScoringService } from '../../daemon/contract.ts';
import type { SpamAction } from './account.ts';
import { markVerdict } from './actions.ts';
import type { Report } from './events.ts';
import type { FetchedMessage } from './fetch.ts';
import { findByMessageId, uidExists } from './mailboxes.ts';
import { keyOf, type MessageRecord, type Place } from './records.ts';
import type { Session } from './session.ts';
import type { ImapState } from './state.ts';

export interface UserMovesDeps {
  scoring: ScoringService;
  state: ImapState;
  log: Logger;
  action: SpamAction;
  report: Report;
}

export class UserMoves {
  constructor(private readonly d: UserMovesDeps) {}

  /** A message found in the spam mailbox: the user's move there, our own move arriving, or one we never scored. */
  async inSpam(s: Session, spam: string, msg: FetchedMessage, uidValidity: number): Promise<void> {
    const { state, scoring, log } = this.d;
    const key = keyOf(msg);
    const rec = await state.record(key);
    const here = { mailbox: spam, uidValidity, uid: msg.uid };
    if (!rec) {
      // Not scored by us (filed by the server, or older): remember it so a move to the inbox is recognised.
      await state.saveRecord(key, { ...here, messageIdHeader: msg.messageId, by: 'server' });
      return;
    }
    if (rec.pendingMove || (rec.mailbox === spam && rec.by === 'verdict')) {
      await state.saveRecord(key, { ...rec, ...here, pendingMove: undefined }); // our own move arriving
      return;
    }
    if (rec.mailbox !== spam && (await stillThere(s.client, rec))) return; // a second copy; the original stays put
    if (rec.mailbox === spam) {
      await state.saveRecord(key, { ...rec, ...here });
      return;
    }
    // It left the mailbox we last saw it in and is now here: the user says spam.
    if (rec.id !== undefined && rec.label !== 'spam') await scoring.correct(rec.id, 'spam', 'imap-move');
    await state.saveRecord(key, { ...rec, ...here, label: 'spam', by: 'user', pendingRestore: undefined });
    log.info({ messageId: rec.id, uid: msg.uid }, 'user moved message to the spam mailbox: corrected to spam');
    this.d.report('corrected', { messageId: rec.id, label: 'spam', mailbox: spam, uid: msg.uid });
  }

  /**
   * A message in the watched mailbox whose record places it in the spam mailbox: when it is gone from there, the
   * user moved it back and says it is not spam (it is never moved back again). Returns whether that was so; then
   * it is handled. `incoming` is what to store for a message never scored (the server filed it as spam).
   */
  async backFromSpam(s: Session, msg: FetchedMessage, key: string, rec: MessageRecord, here: Place, externalId: string, incoming: () => IncomingMessage): Promise<boolean> {
    if (!s.spam || rec.mailbox !== s.spam || (await stillThere(s.client, rec))) return false;
    const { state, scoring, log } = this.d;
    let id = rec.id;
    if (id !== undefined && rec.label !== 'ham') await scoring.correct(id, 'ham', 'imap-move');
    if (id === undefined) {
      // Never scored (the server filed it as spam): store it with the user's label.
      id = (await scoring.score({ ...incoming(), knownLabel: 'ham' })).messageId;
    }
    await state.saveRecord(key, { id, label: 'ham', ...here, messageIdHeader: msg.messageId, by: 'user' });
    if (this.d.action === 'flag') await markVerdict(s.client, msg.uid, 'ham', s.inbox);
    log.info({ externalId, messageId: id }, 'user moved message out of the spam mailbox: corrected to ham');
    this.d.report('corrected', { messageId: id, label: 'ham', mailbox: s.inbox, uid: msg.uid });
    return true;
  }
}

/** Whether the message is still where the record says; without a UID, by Message-ID search. */
async function stillThere(client: ImapFlow, rec: MessageRecord): Promise<boolean> {
  if (rec.uid !== undefined && rec.uidValidity !== undefined) return uidExists(client, rec.mailbox, rec.uidValidity, rec.uid);
  if (!rec.messageIdHeader) return true; // cannot tell: assume it did not move (no correction)
  return (await findByMessageId(client, rec.mailbox, rec.messageIdHeader)).uids.length > 0;
}
