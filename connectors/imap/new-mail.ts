/**
 * New mail in the watched mailbox: parsed, scored by the daemon, then acted on as the account says: spam moved to
 * the spam mailbox ('move'), every verdict marked with keywords ('flag'), or left alone ('none'); an uncertain
 * message stays where it is, marked for review. Upholds: a message the user said is not spam is never moved to
 * the spam mailbox again, and a crash before the cursor moved repeats the work without scoring twice (score()
 * returns the stored verdict for the same externalId).
 */
import type { Logger } from 'pino';
import type { IncomingMessage, ScoringService, VerdictLabel } from '../../daemon/contract.ts';
import { parseEmail } from '../../daemon/contract.ts';
import type { SpamAction } from './account.ts';
import { markVerdict } from './actions.ts';
import type { MessageAction, Report } from './events.ts';
import type { FetchedMessage } from './fetch.ts';
import { moveOurs } from './our-moves.ts';
import { keyOf, sameplace, type ImapMessageMeta, type MessageRecord } from './records.ts';
import type { Session } from './session.ts';
import type { ImapState } from './state.ts';
import type { UserMoves } from './user-moves.ts';

export interface NewMailDeps {
  /** IncomingMessage.account. */
  account: string;
  scoring: ScoringService;
  state: ImapState;
  log: Logger;
  action: SpamAction;
  maxBodyChars: number;
  userMoves: UserMoves;
  report: Report;
}

export class NewMail {
  constructor(private readonly d: NewMailDeps) {}

  async handle(s: Session, msg: FetchedMessage, uidValidity: number): Promise<void> {
    const { state, scoring, log, action: accountAction } = this.d;
    const externalId = `${uidValidity}:${msg.uid}`;
    const key = keyOf(msg);
    const rec = await state.record(key);
    const here = { mailbox: s.inbox, uidValidity, uid: msg.uid };

    // Settled by the user at this very place (a crash before the cursor moved), or our own move back from
    // the spam mailbox for a correction made in the UI arriving: neither new mail nor the user's move.
    if (rec && ((rec.by === 'user' && sameplace(rec, here)) || rec.pendingRestore)) {
      if (rec.pendingRestore || !sameplace(rec, here)) await state.saveRecord(key, { ...rec, ...here, pendingRestore: undefined });
      return;
    }

    const parsed = await parseEmail(msg.source, { maxBodyChars: this.d.maxBodyChars });
    if (parsed.problems.length) log.info({ externalId, problems: parsed.problems }, 'message has problems; scoring what could be read');
    const incoming = () => this.incoming(s.inbox, msg, parsed, externalId, key, uidValidity);

    if (rec && (await this.d.userMoves.backFromSpam(s, msg, key, rec, here, externalId, incoming))) return;

    const verdict = await scoring.score(incoming());
    // The same message again (a re-delivery, or moved back in from elsewhere) after the user said it is
    // not spam: their word stands over the model's.
    const userSaidHam = rec?.by === 'user' && rec.label === 'ham';
    const label: VerdictLabel = userSaidHam ? 'ham' : verdict.label;
    const base: MessageRecord = { id: verdict.messageId, label, ...here, messageIdHeader: msg.messageId, by: userSaidHam ? 'user' : 'verdict' };
    let action: MessageAction = 'kept';
    if (label === 'spam' && accountAction === 'move' && s.spam) {
      if (await moveOurs(s.client, state, key, base, msg.uid, s.inbox, s.spam, 'pendingMove')) action = 'moved';
    } else if (accountAction === 'flag' || (accountAction === 'move' && label === 'uncertain')) {
      // Uncertain mail stays where it is, marked for review; 'flag' marks every verdict.
      await markVerdict(s.client, msg.uid, label, s.inbox);
      await state.saveRecord(key, base);
      action = 'flagged';
    } else {
      await state.saveRecord(key, base);
    }
    if (userSaidHam && verdict.label === 'spam') log.info({ externalId, messageId: verdict.messageId }, 'the user said this message is not spam before: left in place');
    log.info({ externalId, messageId: verdict.messageId, label: verdict.label, p: round(verdict.spamProbability), action, duplicate: verdict.duplicate, size: msg.size }, 'message scored');
    this.d.report('scored', { externalId, uid: msg.uid, messageId: verdict.messageId, label: verdict.label, action });
  }

  /** The message as the daemon stores it; meta is what finds it on the server again (ImapMessageMeta). */
  private incoming(inbox: string, msg: FetchedMessage, parsed: Awaited<ReturnType<typeof parseEmail>>, externalId: string, key: string, uidValidity: number): IncomingMessage {
    const meta: ImapMessageMeta = {
      mailbox: inbox,
      uidValidity,
      uid: msg.uid,
      messageId: msg.messageId ?? parsed.messageId ?? null,
      date: (msg.date ?? parsed.date)?.toISOString() ?? null,
      size: msg.size,
      key,
      truncated: msg.truncated || parsed.truncated,
      attachments: parsed.attachments,
      ...(parsed.problems.length ? { problems: parsed.problems } : {}),
    };
    const m: IncomingMessage = { source: 'imap', account: this.d.account, externalId, body: parsed.body, meta: { ...meta } };
    if (parsed.sender) m.sender = parsed.sender;
    if (parsed.subject) m.subject = parsed.subject;
    const received = msg.date ?? parsed.date;
    if (received) m.receivedAt = received;
    return m;
  }
}

function round(p: number): number {
  return Math.round(p * 1000) / 1000;
}
