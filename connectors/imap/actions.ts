/** What the connector does to a message on the server: move it (to or from the spam mailbox) or flag it. */
import type { ImapFlow } from 'imapflow';
import type { VerdictLabel } from '../../daemon/contract.ts';

// RFC 9051 made these part of IMAP4rev2, where servers need not advertise them separately.
const IN_REV2 = new Set(['MOVE', 'UIDPLUS', 'IDLE']);

/** Whether the session may use an extension (advertised, or implied by an enabled IMAP4rev2). */
export function supports(client: ImapFlow, capability: string): boolean {
  return client.capabilities.has(capability) || (IN_REV2.has(capability) && client.enabled.has('IMAP4REV2'));
}

export type MoveMethod = 'move' | 'copy-expunge' | 'copy-flag-deleted';

export interface MoveResult {
  method: MoveMethod;
  /** UID in the destination (servers with UIDPLUS). Absent also when the message was already gone. */
  newUid?: number;
  /** The server reported the new UID under this UIDVALIDITY of the destination. */
  newUidValidity?: number;
  /** The message was no longer in the source mailbox: nothing was done. */
  gone?: boolean;
}

/**
 * Moves one message with UID MOVE (RFC 6851). Without MOVE: UID COPY, then \Deleted and UID EXPUNGE of
 * just that UID (UIDPLUS). A server with neither gets the copy and \Deleted only: a plain EXPUNGE would
 * also expunge the user's other \Deleted messages.
 * A message that is no longer in `from` (or flagged \Deleted) is not an error: the result says `gone`.
 */
export async function moveMessage(client: ImapFlow, uid: number, from: string, to: string): Promise<MoveResult> {
  const lock = await client.getMailboxLock(from);
  try {
    const range = String(uid);
    // A session acts only on UIDs it has synced: MOVE/COPY of one it has not seen yet answers OK and does
    // nothing, which the fallback could not tell from success. Look first; a NOOP syncs before a second look.
    if (!(await hasUid(client, from, uid))) {
      await client.noop();
      if (!(await hasUid(client, from, uid))) return { method: supports(client, 'MOVE') ? 'move' : 'copy-expunge', gone: true };
    }
    if (supports(client, 'MOVE')) {
      const r = await client.messageMove(range, to, { uid: true });
      if (r === false) throw new Error(`UID MOVE ${uid} from ${from} to ${to} was refused`);
      return withNewUid({ method: 'move' }, r?.uidMap?.get(uid), r?.uidValidity);
    }
    const copy = await client.messageCopy(range, to, { uid: true });
    if (copy === false) throw new Error(`UID COPY ${uid} from ${from} to ${to} was refused`);
    const result = withNewUid({ method: 'copy-expunge' }, copy?.uidMap?.get(uid), copy?.uidValidity);
    if (supports(client, 'UIDPLUS')) {
      // messageDelete with uid:true on a UIDPLUS server = +FLAGS (\Deleted) then UID EXPUNGE <uid>.
      if (!(await client.messageDelete(range, { uid: true }))) throw new Error(`UID EXPUNGE ${uid} in ${from} failed after the copy to ${to}`);
      return result;
    }
    if (!(await client.messageFlagsAdd(range, ['\\Deleted'], { uid: true }))) {
      throw new Error(`flagging ${uid} \\Deleted in ${from} failed after the copy to ${to}`);
    }
    return { ...result, method: 'copy-flag-deleted' };
  } finally {
    lock.release();
  }
}

async function hasUid(client: ImapFlow, mailbox: string, uid: number): Promise<boolean> {
  const found = await client.search({ uid: String(uid), deleted: false }, { uid: true });
  if (found === false || found === undefined) throw new Error(`UID SEARCH in ${mailbox} failed`);
  return found.includes(uid);
}


function withNewUid(r: MoveResult, newUid: number | undefined, validity: bigint | undefined): MoveResult {
  if (newUid !== undefined) r.newUid = newUid;
  if (validity !== undefined) r.newUidValidity = Number(validity);
  return r;
}

export const JUNK = '$Junk';
export const NOT_JUNK = '$NotJunk';
/** Our own keyword for a message the daemon could not call ham or spam: left in place, listed for review. */
export const UNCERTAIN = '$GptspamUncertain';

const KEYWORDS: Record<VerdictLabel, { add: string; remove: string[] }> = {
  spam: { add: JUNK, remove: [NOT_JUNK, UNCERTAIN] },
  ham: { add: NOT_JUNK, remove: [JUNK, UNCERTAIN] },
  uncertain: { add: UNCERTAIN, remove: [JUNK, NOT_JUNK] },
};

/**
 * Marks a message the way mail clients do (RFC 5788 keywords): spam gets $Junk, ham $NotJunk, uncertain our
 * $GptspamUncertain, each losing the other two. Idempotent. Returns false when the server does not keep the keyword.
 */
export async function markVerdict(client: ImapFlow, uid: number, label: VerdictLabel, mailbox: string): Promise<boolean> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const { add, remove } = KEYWORDS[label];
    const permanent = client.mailbox ? client.mailbox.permanentFlags : undefined;
    if (permanent && !permanent.has('\\*') && !permanent.has(add)) return false;
    const range = String(uid);
    const added = await client.messageFlagsAdd(range, [add], { uid: true });
    await client.messageFlagsRemove(range, remove, { uid: true });
    return added;
  } finally {
    lock.release();
  }
}

/** Takes our uncertain keyword off a message that was settled (by the user or a correction). */
export async function clearUncertain(client: ImapFlow, uid: number, mailbox: string): Promise<void> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    await client.messageFlagsRemove(String(uid), [UNCERTAIN], { uid: true });
  } finally {
    lock.release();
  }
}
