/** `gptspam serve`: the daemon, with the connectors the composition root (bin/main.ts) hands it. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_NAMES, INFERENCE_NAMES } from '../../model/backend.ts';
import { loadConfig, smsWatchFolder, type DaemonConfig } from '../config.ts';
import type { ConnectorFactory, ConnectorSettings } from '../contract.ts';
import { Daemon } from '../daemon.ts';
import { gptspamHome } from '../home.ts';
import { createLogger } from '../log.ts';
import { tokenNotice } from './token-notice.ts';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be 0..65535');
  return n;
}

/** What the configuration asks of the connectors. */
function connectorSettings(config: DaemonConfig, home: string): ConnectorSettings {
  return {
    smsWatchFolder: smsWatchFolder(config, home),
    sms: { includeSent: config.sms.includeSent, settleSeconds: config.sms.settleSeconds },
    imap: { accounts: config.imap.accounts, pollSeconds: config.imap.pollSeconds, backlog: config.imap.backlog },
    knownCorrespondents: config.verdicts.knownCorrespondents,
  };
}

async function serve(createConnectors: ConnectorFactory, flags: { home?: string; host?: string; port?: number; backend?: string; inference?: string }): Promise<void> {
  const home = gptspamHome(flags.home);
  const config = await loadConfig(home);
  if (flags.host) config.server.host = flags.host;
  if (flags.port !== undefined) config.server.port = flags.port;
  if (flags.backend) config.backend = flags.backend as DaemonConfig['backend'];
  if (flags.inference) config.inference = flags.inference as DaemonConfig['inference'];
  const logger = createLogger(config.logLevel);
  const daemon = await Daemon.start({
    home, config, logger,
    connectors: (services) => createConnectors(connectorSettings(config, home), services),
    // Shown once, and only on a terminal (never in the log): the user pastes it into the web page.
    onNewToken: (token, path) => console.error(tokenNotice(token, path, process.stderr.isTTY === true)),
  });
  console.error(`gptspam: open http://${daemon.address.host}:${daemon.address.port}/`);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C means "now"; a repeated SIGTERM (process managers often send two) does not.
    if (stopping) {
      if (signal === 'SIGINT') {
        logger.warn({ signal }, 'second interrupt: exiting at once');
        process.exit(130);
      }
      return;
    }
    stopping = true;
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export function registerServeCommand(program: Command, createConnectors: ConnectorFactory): void {
  program
    .command('serve')
    .description('run the daemon: scoring, connectors, re-fine-tuning, web UI and API (the default of "npm start")')
    .option('--home <dir>', 'data directory (default: $GPTSPAM_HOME or ~/.gptspam)')
    .option('--host <addr>', 'address to listen on (default from config: 127.0.0.1)')
    .option('--port <n>', 'port (default from config: 8025)', port)
    .addOption(new Option('--backend <name>', 'tensor backend').choices(BACKEND_NAMES))
    .addOption(new Option('--inference <name>', 'what scores and fills the trunk cache (default from config: auto)').choices(INFERENCE_NAMES))
    .action((flags) => serve(createConnectors, flags));
}
