/** Where gptspam keeps its models, data and state: one directory the user can move or wipe as a whole. */
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
