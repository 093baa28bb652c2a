/**
 * Installing a model the user already has (`model fetch --from PATH`): checked to be safetensors, then copied
 * into the models folder through a part file, so an interrupted copy never looks installed.
 */
import { copyFile, mkdir, readFile, rename, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileSize, sha256File } from '../files.ts';
import { checkSafetensorsHeader } from '../safetensors.ts';

export interface InstalledModel {
  model: { path: string; bytes: number; sha256: string };
  /** Path of the copied config.json, or undefined when none was beside the weights. */
  config?: string;
}

/**
 * Install a model the user already has (`--from PATH`): PATH is a model.safetensors file or a directory holding one.
 * A config.json beside it is copied too. Copies go through a part file so an interrupted copy never looks installed.
 */
export async function installLocalModel(opts: { from: string; destDir: string }): Promise<InstalledModel> {
  let source = resolve(opts.from);
  let info;
  try {
    info = await stat(source);
  } catch {
    throw new Error(`--from ${opts.from}: no such file or directory`);
  }
  if (info.isDirectory()) {
    source = join(source, 'model.safetensors');
    if ((await fileSize(source)) === 0) throw new Error(`--from ${opts.from}: directory has no model.safetensors`);
  }
  await checkSafetensorsHeader(source);

  const configSource = join(dirname(source), 'config.json');
  const hasConfig = (await fileSize(configSource)) > 0;
  if (hasConfig) {
    try {
      JSON.parse(await readFile(configSource, 'utf8'));
    } catch (err) {
      throw new Error(`${configSource} is not valid JSON: ${(err as Error).message}`);
    }
  }

  await mkdir(opts.destDir, { recursive: true });
  const modelDest = resolve(opts.destDir, 'model.safetensors');
  await copyAtomically(source, modelDest);
  let config: string | undefined;
  if (hasConfig) {
    config = resolve(opts.destDir, 'config.json');
    await copyAtomically(configSource, config);
  }
  return { model: { path: modelDest, bytes: await fileSize(modelDest), sha256: await sha256File(modelDest) }, config };
}

async function copyAtomically(from: string, to: string): Promise<void> {
  if (resolve(from) === resolve(to)) return; // already in place
  const part = join(dirname(to), `.${basename(to)}.part`);
  await copyFile(from, part);
  await rename(part, to);
}
