/**
 * Known correspondents: the recipients of what the user sent (read from the Sent mailbox, sent.ts) handed to the
 * daemon, all of them the first time and what is new after that (cursor `cursor:sent:<mailbox>`). Runs before new
 * mail is scored, so a reply from someone the user wrote to is recognised.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { ScoringService } from '../../daemon/contract.ts';
import { findSentMailbox, readSentRecipients } from './sent.ts';
import type { ImapState } from './state.ts';

export interface SentCorrespondentsDeps {
  /** IncomingMessage.account, given with each address. */
  account: string;
  /** The account's configured Sent mailbox; else the one the server marks \Sent. */
  sentMailbox: string | undefined;
  scoring: ScoringService;
  state: ImapState;
  log: Logger;
}

export class SentCorrespondents {
  /** The Sent mailbox, looked up once per connector (null: the server has none). */
  private mailbox: string | null | undefined;

  constructor(private readonly d: SentCorrespondentsDeps) {}

  /** Hands the daemon the recipients of what the user sent since the last look (all of it the first time). */
  async sync(client: ImapFlow): Promise<void> {
    const { state, log } = this.d;
    if (this.mailbox === undefined) {
      this.mailbox = (await findSentMailbox(client, this.d.sentMailbox)) ?? null;
      if (this.mailbox === null) {
        log.warn({ sentMailbox: this.d.sentMailbox ?? '\\Sent' }, 'no Sent mailbox found: known correspondents cannot be learned from this account');
      }
    }
    if (this.mailbox === null) return;
    const saved = await state.sentCursor(this.mailbox);
    const { recipients, cursor } = await readSentRecipients(client, this.mailbox, saved);
    if (recipients.length) {
      const unique = new Map(recipients.map((r) => [r.address.toLowerCase(), r]));
      const added = await this.d.scoring.addCorrespondents(
        [...unique.values()].map((r) => ({ address: r.address, display: r.name ? `${r.name} <${r.address}>` : r.address, origin: 'imap-sent', account: this.d.account })),
      );
      log.info({ mailbox: this.mailbox, recipients: recipients.length, added }, 'read the Sent mailbox: known correspondents updated');
    }
    if (!saved || saved.uidValidity !== cursor.uidValidity || saved.lastUid !== cursor.lastUid) await state.saveSentCursor(this.mailbox, cursor);
  }
}
