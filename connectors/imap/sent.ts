/**
 * Known correspondents from the Sent mailbox: the recipients (To, Cc, Bcc) of every message the user sent. Read
 * from the envelopes only, all of them on the first run and what is new after that (a UID cursor like the
 * watched mailbox's); a changed UIDVALIDITY reads the mailbox again (addresses already known are ignored).
 */
import type { ImapFlow } from 'imapflow';
import type { SentCursor } from './records.ts';


export interface SentRecipient {
  address: string;
  name?: string;
}

/** The mailbox the server marks \Sent (RFC 6154), else one named like it; undefined when there is none. */
export async function findSentMailbox(client: ImapFlow, configured?: string): Promise<string | undefined> {
  const list = await client.list();
  if (configured) return list.find((m) => m.path === configured || m.path.toLowerCase() === configured.toLowerCase())?.path;
  const flagged = list.find((m) => m.specialUse === '\\Sent' && m.specialUseSource !== 'name') ?? list.find((m) => m.specialUse === '\\Sent');
  if (flagged) return flagged.path;
  return list.find((m) => ['sent', 'sent items', 'sent messages', 'sent mail'].includes(m.path.toLowerCase()))?.path;
}

/**
 * Recipients of the messages above the cursor, in batches of `batch` UIDs, and the cursor after them. Returns at
 * once (no addresses, same cursor) when STATUS shows nothing new.
 */
export async function readSentRecipients(
  client: ImapFlow,
  mailbox: string,
  cursor: SentCursor | undefined,
  batch = 500,
): Promise<{ recipients: SentRecipient[]; cursor: SentCursor }> {
  const status = await client.status(mailbox, { uidNext: true, uidValidity: true });
  if (status === false) throw new Error(`STATUS of ${mailbox} failed`);
  const uidValidity = Number(status.uidValidity ?? 0);
  const from = cursor && cursor.uidValidity === uidValidity ? cursor.lastUid : 0;
  const uidNext = status.uidNext ?? 1;
  if (uidNext - 1 <= from) return { recipients: [], cursor: { uidValidity, lastUid: from } };
  const recipients: SentRecipient[] = [];
  let lastUid = from;
  const lock = await client.getMailboxLock(mailbox, { readOnly: true });
  try {
    for (let start = from + 1; start < uidNext; start += batch) {
      const end = Math.min(start + batch - 1, uidNext - 1);
      for await (const m of client.fetch(`${start}:${end}`, { uid: true, envelope: true }, { uid: true })) {
        const env = m.envelope;
        for (const a of [...(env?.to ?? []), ...(env?.cc ?? []), ...(env?.bcc ?? [])]) {
          if (a.address) recipients.push({ address: a.address, ...(a.name ? { name: a.name } : {}) });
        }
        lastUid = Math.max(lastUid, m.uid);
      }
      lastUid = Math.max(lastUid, end);
    }
  } finally {
    lock.release();
  }
  return { recipients, cursor: { uidValidity, lastUid } };
}
