/** Finding (or creating) the mailbox spam goes to, and finding a message in a mailbox. */
import type { ImapFlow } from 'imapflow';
import type { ImapAccount } from './account.ts';

/**
 * The spam mailbox: the configured one (created if missing), else the one the server marks \Junk
 * (RFC 6154), else 'Junk' (created if missing). Returns its path as the server lists it.
 */
export async function resolveSpamMailbox(client: ImapFlow, account: Pick<ImapAccount, 'spamMailbox'>): Promise<string> {
  const list = await client.list();
  if (account.spamMailbox) {
    const wanted = account.spamMailbox;
    const found = list.find((m) => m.path === wanted) ?? list.find((m) => m.path.toLowerCase() === wanted.toLowerCase());
    if (found) return found.path;
    return (await client.mailboxCreate(wanted)).path;
  }
  // specialUseSource 'name' is imapflow guessing from a localized name; the server's own flag wins.
  const flagged = list.find((m) => m.specialUse === '\\Junk' && m.specialUseSource !== 'name')
    ?? list.find((m) => m.specialUse === '\\Junk');
  if (flagged) return flagged.path;
  const named = list.find((m) => m.path.toLowerCase() === 'junk');
  if (named) return named.path;
  return (await client.mailboxCreate('Junk')).path;
}

/**
 * Whether `uid` still exists in `mailbox` under `uidValidity`. A different UIDVALIDITY means the old
 * UIDs are gone, so the answer is false; so is a message flagged \Deleted (gone as far as the user is
 * concerned, e.g. the source half of a MOVE emulated without UIDPLUS). Takes the mailbox lock itself:
 * call it without holding one.
 */
export async function uidExists(client: ImapFlow, mailbox: string, uidValidity: number, uid: number): Promise<boolean> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const box = client.mailbox;
    if (!box || Number(box.uidValidity) !== uidValidity) return false;
    const look = async () => {
      const found = await client.search({ uid: String(uid), deleted: false }, { uid: true });
      if (found === false || found === undefined) throw new Error(`UID SEARCH in ${mailbox} failed`);
      return found.includes(uid);
    };
    if (await look()) return true;
    // A mailbox that stayed selected shows what the last sync showed: sync (NOOP) before saying "gone",
    // as "gone" is what makes a move count as the user's.
    await client.noop();
    return look();
  } finally {
    lock.release();
  }
}

export interface MessageMatch {
  /** Compared with RFC822.SIZE when given. */
  size?: number;
  /** Compared with the Date header when given (a resent copy can share the Message-ID). */
  date?: Date;
}

/**
 * The UIDs (ascending) of the messages in `mailbox` that carry exactly this Message-ID and match size and
 * date, \Deleted ones left out. HEADER search is a substring match, hence the check on the envelope.
 */
export async function findByMessageId(client: ImapFlow, mailbox: string, messageId: string, match: MessageMatch = {}): Promise<{ uidValidity: number; uids: number[] }> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const box = client.mailbox;
    if (!box) throw new Error(`mailbox ${mailbox} is not selected`);
    const uidValidity = Number(box.uidValidity);
    const search = async () => {
      const found = await client.search({ header: { 'message-id': messageId }, deleted: false }, { uid: true });
      if (found === false || found === undefined) throw new Error(`SEARCH by Message-ID in ${mailbox} failed`);
      return found;
    };
    let found = await search();
    if (found.length === 0) {
      await client.noop(); // as in uidExists: sync before saying it is not there
      found = await search();
    }
    if (found.length === 0) return { uidValidity, uids: [] };
    const uids: number[] = [];
    // A Message-ID shared by hundreds of messages is not an identity any more: look at the first few only.
    const candidates = found.sort((a, b) => a - b).slice(0, 50);
    for await (const m of client.fetch(candidates.join(','), { uid: true, size: true, envelope: true }, { uid: true })) {
      if (m.envelope?.messageId?.slice(0, 998) !== messageId) continue;
      if (match.size !== undefined && m.size !== match.size) continue;
      if (match.date !== undefined && m.envelope.date) {
        const d = m.envelope.date instanceof Date ? m.envelope.date : new Date(m.envelope.date);
        if (!Number.isNaN(d.getTime()) && d.getTime() !== match.date.getTime()) continue;
      }
      uids.push(m.uid);
    }
    return { uidValidity, uids: uids.sort((a, b) => a - b) };
  } finally {
    lock.release();
  }
}
