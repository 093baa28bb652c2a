/**
 * The connector's memory, in the account's own ConnectorState (keys are not prefixed with the account):
 *  - `cursor:<mailbox>`: UIDVALIDITY + highest UID done in the watched and the spam mailbox;
 *  - `cursor:sent:<mailbox>`: the same for the recipients read from the Sent mailbox;
 *  - `corrections`: corrections from the daemon not yet carried out on the server;
 *  - `msg:<key>`: records mapping a message to the daemon's stored id and where it was last seen (see keyOf).
 * The keys outlive versions of this code: never rename them. Everything read back is checked (records.ts).
 */
import type { ConnectorState } from '../../daemon/contract.ts';
import { asCursor, asPending, asRecord, asSentCursor, type Cursor, type MessageRecord, type PendingCorrection, type SentCursor } from './records.ts';

export class ImapState {
  /** The last cursor read or written per mailbox, for the wait loop's "anything new?" check. */
  private readonly lastCursor = new Map<string, Cursor>();

  constructor(private readonly store: ConnectorState) {}

  async cursor(mailbox: string): Promise<Cursor | undefined> {
    const saved = asCursor(await this.store.get(`cursor:${mailbox}`));
    if (saved) this.lastCursor.set(mailbox, saved);
    return saved;
  }

  /** The cursor last read or written for `mailbox` in this process, without asking the store. */
  knownCursor(mailbox: string): Cursor | undefined {
    return this.lastCursor.get(mailbox);
  }

  async saveCursor(mailbox: string, cursor: Cursor): Promise<void> {
    await this.store.set(`cursor:${mailbox}`, cursor);
    this.lastCursor.set(mailbox, cursor);
  }

  async record(key: string): Promise<MessageRecord | undefined> {
    return asRecord(await this.store.get(`msg:${key}`));
  }

  async saveRecord(key: string, rec: MessageRecord): Promise<void> {
    // JSON-friendly: no undefined members.
    const clean = Object.fromEntries(Object.entries(rec).filter(([, v]) => v !== undefined));
    await this.store.set(`msg:${key}`, clean);
  }

  async sentCursor(mailbox: string): Promise<SentCursor | undefined> {
    return asSentCursor(await this.store.get(`cursor:sent:${mailbox}`));
  }

  async saveSentCursor(mailbox: string, cursor: SentCursor): Promise<void> {
    await this.store.set(`cursor:sent:${mailbox}`, cursor);
  }

  /** The saved corrections still to carry out; entries that no longer parse are dropped. */
  async corrections(): Promise<PendingCorrection[]> {
    const saved = await this.store.get('corrections');
    if (!Array.isArray(saved)) return [];
    return saved.map(asPending).filter((p) => p !== undefined);
  }

  async saveCorrections(list: PendingCorrection[]): Promise<void> {
    await this.store.set('corrections', list);
  }
}
