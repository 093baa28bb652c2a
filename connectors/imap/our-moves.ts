/**
 * Our own moves (a verdict's, or a correction's from the daemon), recorded so that they are never taken for the
 * user's. Upholds: before any move of ours the message's record says so (`pendingMove` towards the spam mailbox,
 * `pendingRestore` towards the watched one), so the copy that turns up there after a crash between MOVE and the
 * next write is known to be ours, not a user's correction.
 */
import type { ImapFlow } from 'imapflow';
import { moveMessage } from './actions.ts';
import type { MessageRecord } from './records.ts';
import type { ImapState } from './state.ts';

export type PendingFlag = 'pendingMove' | 'pendingRestore';

/**
 * Moves message `uid` from `from` to `to`, writing `base` (with the pending flag) first and where it arrived
 * after. Returns false when the message was gone already (the user moved or deleted it first; should it turn up
 * elsewhere, that is their move): the record is then `base` as it was.
 */
export async function moveOurs(
  client: ImapFlow,
  state: ImapState,
  key: string,
  base: MessageRecord,
  uid: number,
  from: string,
  to: string,
  flag: PendingFlag,
): Promise<boolean> {
  await state.saveRecord(key, { ...base, [flag]: true });
  const moved = await moveMessage(client, uid, from, to);
  if (moved.gone) {
    await state.saveRecord(key, base);
    return false;
  }
  await state.saveRecord(key, await afterMove(client, { ...base, mailbox: to }, moved.newUid, moved.newUidValidity, flag));
  return true;
}

/**
 * The record after one of our moves to rec.mailbox. Without the new UID (no UIDPLUS, or the message was
 * gone already) the pending flag stays: the copy found there later is then recognised as ours.
 */
async function afterMove(client: ImapFlow, rec: MessageRecord, newUid: number | undefined, newValidity: number | undefined, flag: PendingFlag): Promise<MessageRecord> {
  const out: MessageRecord = { ...rec, pendingMove: undefined, pendingRestore: undefined };
  if (newUid === undefined) return { ...out, uid: undefined, uidValidity: undefined, [flag]: true };
  return { ...out, uid: newUid, uidValidity: newValidity ?? (await uidValidityOf(client, rec.mailbox)) };
}

async function uidValidityOf(client: ImapFlow, mailbox: string): Promise<number | undefined> {
  const s = await client.status(mailbox, { uidValidity: true });
  return s && s.uidValidity !== undefined ? Number(s.uidValidity) : undefined;
}
