/**
 * Where a command-line client finds the daemon running on this machine: the address from its configuration and
 * the access token from its home (both as `gptspam serve` with the same home uses them).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from './config.ts';
import { gptspamHome } from './home.ts';

export interface LocalDaemon {
  home: string;
  url: string;
  token: string;
}

/** `home`: a --home flag (else $GPTSPAM_HOME or ~/.gptspam); `url`: an explicit address instead of the configured one. */
export async function localDaemon(opts: { home?: string; url?: string } = {}): Promise<LocalDaemon> {
  const home = gptspamHome(opts.home);
  const config = await loadConfig(home);
  let token: string;
  try {
    token = (await readFile(join(home, 'token'), 'utf8')).trim();
  } catch {
    throw new Error(`no access token in ${home}: start the daemon first ("npm start" or "gptspam serve")`);
  }
  return { home, url: opts.url ?? `http://${config.server.host}:${config.server.port}`, token };
}
