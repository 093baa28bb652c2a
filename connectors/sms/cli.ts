/** `gptspam import`: SMS/chat export files scored through the running daemon's API, with a progress bar. */
import { basename, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { localDaemon, type CorrespondentInput, type IncomingMessage } from '../../daemon/contract.ts';
import { importExport } from './import.ts';

interface ImportFlags {
  home?: string;
  url?: string;
  sent?: boolean;
  format?: 'sms-backup-xml' | 'csv' | 'uci-tsv';
  account?: string;
}

async function importFiles(files: string[], flags: ImportFlags): Promise<void> {
  const { url: base, token } = await localDaemon({ ...(flags.home ? { home: flags.home } : {}), ...(flags.url ? { url: flags.url } : {}) });
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

export function registerImportCommand(program: Command): void {
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
