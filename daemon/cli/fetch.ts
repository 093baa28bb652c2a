/** `gptspam model fetch`: download GPT-2 weights from the Hugging Face Hub, or install a local copy with --from. */
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { fetchGpt2, GPT2_SIZES, type FetchedFile, type Gpt2Size } from '../../model/download/hub.ts';
import { installLocalModel } from '../../model/download/install.ts';
import { ensurePrivateHome, gptspamHome } from '../home.ts';
import type { CliStreams } from './data.ts';

interface FetchFlags {
  size: Gpt2Size;
  hubUrl?: string;
  from?: string;
  dest?: string;
}

export function registerFetchCommand(modelCommand: Command, io: CliStreams = { stdout: process.stdout, stderr: process.stderr }): void {
  modelCommand
    .command('fetch')
    .description('download GPT-2 weights (model.safetensors + config.json) from the Hugging Face Hub, verified by SHA-256')
    .addOption(new Option('--size <size>', 'GPT-2 size').choices(Object.keys(GPT2_SIZES)).default('124M'))
    .option('--hub-url <url>', 'Hub to download from (default: $GPTSPAM_HF_ENDPOINT, $HF_ENDPOINT or https://huggingface.co)')
    .addOption(new Option('--from <path>', 'install a local model.safetensors (or a folder holding one) instead of downloading').conflicts('hubUrl'))
    .option('--dest <dir>', 'where to put the files (default: <home>/models/gpt2-<size>)')
    .action(async (flags: FetchFlags) => {
      if (flags.dest === undefined) await ensurePrivateHome(gptspamHome());
      const destDir = resolve(flags.dest ?? join(gptspamHome(), 'models', `gpt2-${flags.size}`));
      if (flags.from !== undefined) {
        const got = await installLocalModel({ from: flags.from, destDir });
        io.stdout.write(
          `Installed ${got.model.path} (${formatBytes(got.model.bytes)}, sha256 ${got.model.sha256})\n` +
            (got.config !== undefined
              ? `Installed ${got.config}\n`
              : `No config.json beside ${flags.from}: the architecture will be inferred from the weights' shapes\n`),
        );
        return;
      }
      const progress = new ByteProgress(io.stderr);
      let result;
      try {
        result = await fetchGpt2({ size: flags.size, destDir, baseUrl: flags.hubUrl, onProgress: (f, r, t) => progress.update(f, r, t) });
      } finally {
        progress.stop();
      }
      io.stdout.write(`GPT-2 ${flags.size} (${result.repo}) is in ${result.destDir}\n`);
      for (const f of [result.config, result.model]) io.stdout.write(`  ${describe(f)}\n`);
    });
}

function describe(f: FetchedFile): string {
  const how = f.verified ? `verified against the Hub's hash${f.reused ? ', already present' : ''}` : 'NOT verified: the server reported no hash';
  return `${f.path}  ${formatBytes(f.bytes)}  sha256 ${f.sha256}  ${how}`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** One cli-progress bar per file: bytes, speed and ETA. Drawn only on a terminal; logs get a line per file instead. */
class ByteProgress {
  private bar: cliProgress.SingleBar | undefined;
  private file: string | undefined;
  private started = 0;
  private startBytes = 0;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(file: string, received: number, total: number | undefined): void {
    if (file !== this.file) {
      this.stop();
      this.file = file;
      this.started = Date.now();
      this.startBytes = received; // a resumed download's speed counts only what arrives now
      if ((this.stream as { isTTY?: boolean }).isTTY) {
        this.bar = new cliProgress.SingleBar(
          {
            format: '{file} |{bar}| {percentage}% {got}/{size} {speed} ETA {eta_formatted}',
            stream: this.stream,
            etaBuffer: 200,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total ?? 0, received, this.payload(received, total));
      } else {
        this.stream.write(`Downloading ${file}${total !== undefined ? ` (${formatBytes(total)})` : ''}${received > 0 ? `, resuming at ${formatBytes(received)}` : ''}\n`);
      }
    }
    if (this.bar) {
      if (total !== undefined) this.bar.setTotal(total);
      this.bar.update(received, this.payload(received, total));
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  private payload(received: number, total: number | undefined): Record<string, string> {
    const seconds = (Date.now() - this.started) / 1000;
    const speed = seconds > 0.5 ? `${formatBytes((received - this.startBytes) / seconds)}/s` : '';
    return { file: this.file ?? '', got: formatBytes(received), size: total !== undefined ? formatBytes(total) : '?', speed };
  }
}
