/** The IMAP connector: one ImapConnector per configured account, built for the daemon. */
import type { Logger } from 'pino';
import type { ConnectorState, ScoringService } from '../../daemon/contract.ts';
import { accountName, type ImapAccount } from './account.ts';
import { ImapConnector } from './connector.ts';

export { ImapConnector, type ImapConnectorOptions, type AppliedEvent, type CorrectedEvent, type ScoredEvent } from './connector.ts';
export { type ImapMessageMeta } from './records.ts';
export { accountName, type ImapAccount, type ImapSecurity, type SpamAction } from './account.ts';

export interface ImapConnectorDeps {
  scoring: ScoringService;
  /** The daemon's persistent key/value storage; each account gets its own prefix `imap:<account name>`. */
  state: (prefix: string) => ConnectorState;
  logger: Logger;
  pollSeconds?: number;
  /** On an account's first run, also score the newest N messages already there. */
  backlog?: number;
  /** Learn known correspondents from each account's Sent mailbox. */
  learnCorrespondents?: boolean;
}

/**
 * One connector per account. Two accounts with the same name would share cursors and records and
 * produce the same IncomingMessage.account, so a later duplicate is left out (logged), not guessed apart.
 */
export function createImapConnectors(accounts: ImapAccount[], deps: ImapConnectorDeps): ImapConnector[] {
  const seen = new Set<string>();
  const out: ImapConnector[] = [];
  for (const account of accounts) {
    const name = accountName(account);
    if (seen.has(name)) {
      deps.logger.error({ account: name }, 'two IMAP accounts have the same name: the later one is not started (set a distinct "name")');
      continue;
    }
    seen.add(name);
    out.push(new ImapConnector({
      account,
      scoring: deps.scoring,
      state: deps.state(`imap:${name}`),
      logger: deps.logger,
      ...(deps.pollSeconds !== undefined ? { pollSeconds: deps.pollSeconds } : {}),
      ...(deps.backlog !== undefined ? { backlog: deps.backlog } : {}),
      ...(deps.learnCorrespondents !== undefined ? { learnCorrespondents: deps.learnCorrespondents } : {}),
    }));
  }
  return out;
}
