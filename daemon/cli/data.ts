/** `gptspam data sms`: download (or take) the UCI SMS Spam Collection and prepare the chapter's train/validation/test CSVs. */
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { downloadSmsCollection, prepareSmsDataset, SMS_COLLECTION_FILE, SMS_COLLECTION_URL } from '../../model/dataset.ts';
import { copyFileAtomic } from '../../model/files.ts';
import { ensurePrivateHome, gptspamHome } from '../home.ts';

/** Where commands print; tests pass their own streams. */
export interface CliStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

interface SmsFlags {
  from?: string;
  url?: string;
  out?: string;
  seed: number;
}

function seedArg(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('--seed must be a non-negative integer');
  return n;
}

export function registerDataCommands(program: Command, io: CliStreams = { stdout: process.stdout, stderr: process.stderr }): void {
  const data = program.command('data').description('prepare training data');
  data
    .command('sms')
    .description('install the SMS Spam Collection (the daemon trains on it) and split it as chapter 6 does: balanced, 70/10/20 into train.csv, validation.csv, test.csv')
    .option('--from <file>', 'use this raw SMSSpamCollection file (label<TAB>text) instead of downloading')
    .addOption(new Option('--url <url>', `download the UCI zip from here (default: ${SMS_COLLECTION_URL})`).conflicts('from'))
    .option('--out <dir>', 'output folder (default: <home>/data/sms)')
    .option('--seed <n>', 'random seed for undersampling and shuffling', seedArg, 123)
    .action(async (flags: SmsFlags) => {
      if (flags.out === undefined) await ensurePrivateHome(gptspamHome());
      const outDir = resolve(flags.out ?? join(gptspamHome(), 'data', 'sms'));
      const rawPath = join(outDir, SMS_COLLECTION_FILE);
      let from: string;
      if (flags.from !== undefined) {
        from = resolve(flags.from);
      } else {
        const url = flags.url ?? SMS_COLLECTION_URL;
        io.stderr.write(`Downloading the SMS Spam Collection from ${url}\n`);
        const got = await downloadSmsCollection({ url, destDir: outDir });
        io.stderr.write(`Saved ${got.path} (${got.messages} messages; SHA-256 ${got.sha256}, the original file)\n`);
        from = got.path;
      }
      const c = await prepareSmsDataset({ rawPath: from, outDir, seed: flags.seed }); // parses it: a bad file stops here
      if (from !== rawPath) await copyFileAtomic(from, rawPath);
      io.stdout.write(
        `${c.raw.total} messages (${c.raw.ham} ham, ${c.raw.spam} spam) → balanced ${c.balanced} → ` +
          `train ${c.train}, validation ${c.validation}, test ${c.test} (seed ${flags.seed})\n` +
          `Wrote ${c.files.train}\n      ${c.files.validation}\n      ${c.files.test}\n      ${rawPath}\n` +
          (flags.out === undefined ? 'The daemon trains on the collection from its next run.\n' : ''),
      );
    });
}
