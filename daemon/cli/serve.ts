/** `gptspam serve` (the daemon) and `gptspam import` (SMS/chat exports, scored through the running daemon). */
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { importExport } from '../../connectors/sms/import.ts';
import { BACKEND_NAMES, INFERENCE_NAMES } from '../../model/backend.ts';
import { SmsFolderConnector } from '../../connectors/sms/folder-connector.ts';
import { createImapConnectors } from '../../connectors/imap/index.ts';
import { loadConfig, smsWatchFolder, type DaemonConfig } from '../config.ts';
import { Daemon, type ConnectorServices } from '../daemon.ts';
import { gptspamHome } from '../home.ts';
import { createLogger } from '../log.ts';
import { tokenNotice } from './token-notice.ts';
import type { Connector, CorrespondentInput, IncomingMessage } from '../types.ts';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be 0..65535');
  return n;
}

/** The connectors the configuration asks for. */
function buildConnectors(config: DaemonConfig, home: string, services: ConnectorServices): Connector[] {
  const connectors: Connector[] = [];
  const folder = smsWatchFolder(config, home);
  if (folder) {
    connectors.push(
      new SmsFolderConnector({
        folder, scoring: services.scoring, logger: services.logger, ledger: services.importLedger, includeSent: config.sms.includeSent, settleMs: config.sms.settleSeconds * 1000,
      }),
    );
  }
  connectors.push(
    ...createImapConnectors(config.imap.accounts, {
      scoring: services.scoring, state: services.state, logger: services.logger,
      pollSeconds: config.imap.pollSeconds, backlog: config.imap.backlog, learnCorrespondents: config.verdicts.knownCorrespondents,
    }),
  );
  return connectors;
}

async function serve(flags: { home?: string; host?: string; port?: number; backend?: string; inference?: string }): Promise<void> {
  const home = gptspamHome(flags.home);
  const config = await loadConfig(home);
  if (flags.host) config.server.host = flags.host;
  if (flags.port !== undefined) config.server.port = flags.port;
  if (flags.backend) config.backend = flags.backend as DaemonConfig['backend'];
  if (flags.inference) config.inference = flags.inference as DaemonConfig['inference'];
  const logger = createLogger(config.logLevel);
  const daemon = await Daemon.start({
    home, config, logger,
    connectors: (services) => buildConnectors(config, home, services),
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

interface ImportFlags {
  home?: string;
  url?: string;
  sent?: boolean;
  format?: 'sms-backup-xml' | 'csv' | 'uci-tsv';
  account?: string;
}

async function importFiles(files: string[], flags: ImportFlags): Promise<void> {
  const home = gptspamHome(flags.home);
  const config = await loadConfig(home);
  const base = flags.url ?? `http://${config.server.host}:${config.server.port}`;
  let token: string;
  try {
    token = (await readFile(join(home, 'token'), 'utf8')).trim();
  } catch {
    throw new Error(`no access token in ${home}: start the daemon first ("npm start" or "gptspam serve")`);
  }
  const post = async <T>(path: string, payload: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify(payload),
      });
    } catch (err) {
      throw new Error(`the daemon is not reachable at ${base} (${(err as Error).message}): start it with "npm start"`);
    }
    const body = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (!res.ok) throw new Error(`the daemon answered ${res.status}: ${body.error ?? 'no details'}`);
    return body;
  };
  const submit = async (messages: IncomingMessage[]) => {
    const body = await post<{ results?: Array<{ duplicate: boolean; label: string | null }> }>('/api/messages/batch', {
      messages: messages.map((m) => ({ ...m, meta: undefined, receivedAt: m.receivedAt?.toISOString() })),
    });
    if (!body.results) throw new Error('the daemon answered without results');
    return body.results;
  };
  const addCorrespondents = async (list: CorrespondentInput[]) => {
    for (let i = 0; i < list.length; i += 5000) await post('/api/correspondents', { correspondents: list.slice(i, i + 5000) });
  };
  for (const file of files) {
    const path = resolve(file);
    const bar = new cliProgress.SingleBar(
      { format: `${basename(path)} | {value} messages | {scored} new, {duplicates} known, {spam} spam`, stream: process.stderr, noTTYOutput: false },
      cliProgress.Presets.shades_classic,
    );
    bar.start(0, 0, { scored: 0, duplicates: 0, spam: 0 });
    const result = await importExport(path, submit, {
      includeSent: flags.sent === true,
      addCorrespondents,
      ...(flags.account ? { account: flags.account } : {}),
      ...(flags.format ? { format: flags.format } : {}),
      onProgress: (r) => bar.update(r.scored + r.duplicates, { scored: r.scored, duplicates: r.duplicates, spam: r.spam }),
    }).finally(() => bar.stop());
    const s = result.summary;
    const skipped = Object.entries(s.skipped).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ');
    console.log(
      `${path}: ${s.format} — ${result.scored} scored (${result.spam} spam), ${result.duplicates} already known` +
        `${skipped ? `, skipped ${skipped}` : ''}${s.errorCount ? `, ${s.errorCount} unreadable` : ''}`,
    );
    if (s.truncated) console.log(`${path}: the file is truncated: ${JSON.stringify(s.truncated)}; everything complete before it was imported`);
    for (const e of s.errors.slice(0, 10)) console.log(`  ${JSON.stringify(e)}`);
  }
}

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('run the daemon: scoring, connectors, re-fine-tuning, web UI and API (the default of "npm start")')
    .option('--home <dir>', 'data directory (default: $GPTSPAM_HOME or ~/.gptspam)')
    .option('--host <addr>', 'address to listen on (default from config: 127.0.0.1)')
    .option('--port <n>', 'port (default from config: 8025)', port)
    .addOption(new Option('--backend <name>', 'tensor backend').choices(BACKEND_NAMES))
    .addOption(new Option('--inference <name>', 'what scores and fills the trunk cache (default from config: auto)').choices(INFERENCE_NAMES))
    .action(serve);

  program
    .command('import')
    .description('score SMS/chat export files (SMS Backup & Restore XML, CSV, UCI TSV) through the running daemon')
    .argument('<files...>')
    .option('--home <dir>', 'data directory of the daemon')
    .option('--url <url>', 'the daemon\'s address (default from its config)')
    .option('--account <name>', 'whose phone the export is from, when you import more than one (default: phone)')
    .option('--sent', 'also score messages the phone\'s owner sent')
    .addOption(new Option('--format <format>', 'skip format detection').choices(['sms-backup-xml', 'csv', 'uci-tsv']))
    .action(importFiles);
}
