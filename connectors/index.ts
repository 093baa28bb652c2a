/**
 * The connectors: where messages come from. Each turns its source's messages into the daemon's message shape and
 * carries the daemon's verdicts back to the source; they know the daemon only by its contract (daemon/contract.ts).
 */
import type { Command } from 'commander';
import type { Connector, ConnectorFactory } from '../daemon/contract.ts';
import { createImapConnectors } from './imap/index.ts';
import { registerImportCommand } from './sms/cli.ts';
import { SmsFolderConnector } from './sms/folder-connector.ts';

/** The connectors the settings ask for: the SMS export folder (unless switched off) and one per IMAP account. */
export const createConnectors: ConnectorFactory = (settings, services) => {
  const connectors: Connector[] = [];
  if (settings.smsWatchFolder) {
    connectors.push(new SmsFolderConnector({
      folder: settings.smsWatchFolder, scoring: services.scoring, logger: services.logger, ledger: services.importLedger,
      includeSent: settings.sms.includeSent, settleMs: settings.sms.settleSeconds * 1000,
    }));
  }
  connectors.push(...createImapConnectors(settings.imap.accounts, {
    scoring: services.scoring, state: services.state, logger: services.logger,
    pollSeconds: settings.imap.pollSeconds, backlog: settings.imap.backlog, learnCorrespondents: settings.knownCorrespondents,
  }));
  return connectors;
};

/** The connectors' own commands (`gptspam import`). */
export function registerConnectorCommands(program: Command): void {
  registerImportCommand(program);
}
