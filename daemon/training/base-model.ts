/**
 * Which base model the daemon fine-tunes: the configured safetensors file, the GPT-2 that `gptspam model fetch`
 * installed, a fresh download of it, or (offline, nothing installed) a model trained from scratch so the
 * product still works.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { fetchGpt2, GPT2_SIZES } from '../../model/download/hub.ts';
import type { DaemonConfig } from '../config.ts';
import type { BaseSpec } from './job.ts';

const SCRATCH_SEED = 123;

function scratch(config: DaemonConfig): BaseSpec {
  return { kind: 'scratch', name: `scratch-${config.model.scratchSize}`, size: config.model.scratchSize, seed: SCRATCH_SEED };
}

/** Installed GPT-2 checkpoints, smallest first. */
export function installedGpt2(home: string): Array<{ name: string; path: string }> {
  return Object.keys(GPT2_SIZES)
    .map((size) => ({ name: `gpt2-${size}`, path: join(home, 'models', `gpt2-${size}`, 'model.safetensors') }))
    .filter((m) => existsSync(m.path));
}

export async function resolveBaseModel(
  config: DaemonConfig,
  home: string,
  logger: Logger,
  opts: { tryDownload: boolean },
): Promise<BaseSpec> {
  const wanted = config.model.base;
  if (wanted === 'scratch') return scratch(config);
  if (wanted !== 'auto') {
    const path = resolve(home, wanted);
    if (!existsSync(path)) throw new Error(`model.base: no weights file at ${path}`);
    return { kind: 'pretrained', name: path.split('/').slice(-2, -1)[0] ?? 'custom', path };
  }
  const installed = installedGpt2(home)[0];
  if (installed) return { kind: 'pretrained', ...installed };
  if (opts.tryDownload) {
    const destDir = join(home, 'models', 'gpt2-124M');
    logger.info({ destDir }, 'no GPT-2 weights installed: downloading GPT-2 124M');
    try {
      const got = await fetchGpt2({ size: '124M', destDir, signal: AbortSignal.timeout(60 * 60 * 1000) });
      return { kind: 'pretrained', name: 'gpt2-124M', path: got.model.path };
    } catch (err) {
      logger.warn(
        { err: (err as Error).message },
        'GPT-2 weights are not installed and could not be downloaded; training a small model from scratch instead ' +
          '(install GPT-2 with "gptspam model fetch --size 124M" or "--from FILE"; the next training run uses it)',
      );
    }
  } else {
    logger.warn('GPT-2 weights are not installed ("gptspam model fetch --size 124M"): training a small model from scratch');
  }
  return scratch(config);
}
