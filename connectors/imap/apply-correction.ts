/**
 * Carrying out one correction from the daemon on the server: spam → the spam mailbox, ham → back to the watched
 * mailbox ('move'); $Junk/$NotJunk ('flag'). The message is found where the connector last saw it, else by
 * Message-ID + size + date in the watched and the spam mailbox; one the user filed elsewhere is left there.
 * Upholds: our move is recorded first (our-moves.ts), so it is never reported back as the user's correction.
 */
import type { Logger } from 'pino';
import type { SpamAction } from './account.ts';
import { clearUncertain, markVerdict } from './actions.ts';
import type { AppliedEvent, Report } from './events.ts';
import { findByMessageId, uidExists } from './mailboxes.ts';
import { moveOurs } from './our-moves.ts';
import type { ImapMessageMeta, MessageRecord, PendingCorrection, Place } from './records.ts';
import type { Session } from './session.ts';
import type { ImapState } from './state.ts';

export interface ApplyCorrectionDeps {
  state: ImapState;
  log: Logger;
  action: SpamAction;
  report: Report;
}

export class CorrectionApplier {
  constructor(private readonly d: ApplyCorrectionDeps) {}

  async apply(s: Session, p: PendingCorrection): Promise<void> {
    const { state, log } = this.d;
    const { client, inbox, spam } = s;
    const { meta, label, messageId } = p;
    const key = meta.key;
    const rec = await state.record(key);
    const at = await locate(s, rec, meta);
    if (!at) {
      log.info({ messageId, label }, 'corrected message is in neither the watched nor the spam mailbox: left where it is');
      this.d.report('applied', { messageId, label, action: 'not-found' });
      return;
    }
    const base: MessageRecord = { id: messageId, label, ...at, by: 'user' };
    const mid = rec?.messageIdHeader ?? meta.messageId ?? undefined;
    if (mid) base.messageIdHeader = mid;
    let action: AppliedEvent['action'] = 'kept';
    let now: string | undefined = at.mailbox;
    // A settled uncertain message loses its review keyword ('flag' swaps keywords anyway).
    if (this.d.action === 'move' && rec?.label === 'uncertain') await clearUncertain(client, at.uid, at.mailbox);
    if (this.d.action === 'flag') {
      await markVerdict(client, at.uid, label, at.mailbox);
      await state.saveRecord(key, base);
      action = 'flagged';
    } else if (spam && label === 'spam' && at.mailbox === inbox) {
      const moved = await moveOurs(client, state, key, base, at.uid, inbox, spam, 'pendingMove');
      [action, now] = moved ? ['moved', spam] : ['not-found', undefined];
    } else if (spam && label !== 'spam' && at.mailbox === spam) {
      const moved = await moveOurs(client, state, key, base, at.uid, spam, inbox, 'pendingRestore');
      [action, now] = moved ? ['moved', inbox] : ['not-found', undefined];
    } else {
      await state.saveRecord(key, base); // already where the label says
    }
    log.info({ messageId, label, action, mailbox: now }, 'correction applied on the server');
    this.d.report('applied', { messageId, label, action, ...(now ? { mailbox: now } : {}) });
  }
}

/**
 * Where the message is now, in the watched or the spam mailbox: where the record says, where it was
 * scored, else the first match by Message-ID + size + date (the record's mailbox searched first).
 */
async function locate(s: Session, rec: MessageRecord | undefined, meta: ImapMessageMeta): Promise<Place | undefined> {
  const { client } = s;
  const boxes = s.spam ? [s.inbox, s.spam] : [s.inbox];
  for (const p of [rec, meta]) {
    if (p && boxes.includes(p.mailbox) && p.uid !== undefined && p.uidValidity !== undefined
      && (await uidExists(client, p.mailbox, p.uidValidity, p.uid))) return { mailbox: p.mailbox, uidValidity: p.uidValidity, uid: p.uid };
  }
  const mid = rec?.messageIdHeader ?? meta.messageId;
  if (!mid) return undefined;
  const order = rec && boxes.includes(rec.mailbox) ? [rec.mailbox, ...boxes.filter((b) => b !== rec.mailbox)] : boxes;
  const date = meta.date ? new Date(meta.date) : undefined;
  for (const mailbox of order) {
    const found = await findByMessageId(client, mailbox, mid, { size: meta.size, ...(date && !Number.isNaN(date.getTime()) ? { date } : {}) });
    const uid = found.uids[0];
    if (uid !== undefined) return { mailbox, uidValidity: found.uidValidity, uid };
  }
  return undefined;
}
