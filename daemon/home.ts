/** Where gptspam keeps its models, data and state: one directory the user can move or wipe as a whole. */
import { chmod, mkdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The gptspam home directory: `override` (e.g. a `--home` flag) if given, else `$GPTSPAM_HOME`, else `~/.gptspam`.
 * A leading `~` is expanded because values from config files and quoted env vars do not go through the shell.
 */
export function gptspamHome(override?: string): string {
  const chosen = nonEmpty(override) ?? nonEmpty(process.env.GPTSPAM_HOME);
  if (chosen === undefined) return join(homedir(), '.gptspam');
  return resolve(expandTilde(chosen));
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

/** `~` and `~/…` as the shell would expand them (config files and quoted variables do not go through one). */
export function expandTilde(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/**
 * Creates the home (mode 0700) if needed and makes sure it is the owner's alone: it holds message text, the
 * access token and the database. A home someone else created more openly (`mkdir`, an older gptspam) is
 * tightened to 0700; returns true when it was.
 */
export async function ensurePrivateHome(home: string): Promise<boolean> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const info = await stat(home);
  if (!info.isDirectory()) throw new Error(`${home} is not a directory`);
  if ((info.mode & 0o077) === 0) return false;
  try {
    await chmod(home, 0o700);
  } catch (err) {
    throw new Error(`${home} can be read by other users (mode ${(info.mode & 0o777).toString(8)}) and cannot be made private: ${(err as Error).message}`);
  }
  return true;
}
