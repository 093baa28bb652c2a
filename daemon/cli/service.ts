/**
 * `gptspam service`: a systemd user unit that runs the daemon, printed (to review, or to redirect into a file)
 * or installed into ~/.config/systemd/user. Under systemd stderr goes to the journal, not a terminal, so the
 * daemon names the token file there instead of printing the token (see token-notice.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { gptspamHome } from '../home.ts';

export const UNIT_NAME = 'gptspam.service';

/** One ExecStart word, quoted as systemd.service(5) reads it ("%" starts a specifier, so it is doubled). */
export function systemdWord(word: string): string {
  const escaped = word.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export interface UnitOptions {
  /** The node binary and the gptspam script it runs, absolute. */
  node: string;
  script: string;
  home: string;
}

export function systemdUserUnit({ node, script, home }: UnitOptions): string {
  const exec = [node, script, 'serve', '--home', home].map(systemdWord).join(' ');
  return `# gptspam as a systemd user service (written by "gptspam service").
# Install: gptspam service --install; then: systemctl --user daemon-reload && systemctl --user enable --now gptspam
# To keep it running while you are logged out: loginctl enable-linger "$USER"
# Logs: journalctl --user -u gptspam. The access token is in ${join(home, 'token')}.
[Unit]
Description=gptspam spam filter (fine-tuned GPT-2): web UI and API

[Service]
Type=simple
ExecStart=${exec}
# SIGTERM is the orderly stop: an import halts between chunks, a training run is recorded as interrupted.
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=10
# Files it creates (models, caches) are the user's alone, like the database and token.
UMask=0077
NoNewPrivileges=yes

[Install]
WantedBy=default.target
`;
}

/** Where systemd looks for this user's units. */
export function userUnitDir(): string {
  const config = process.env.XDG_CONFIG_HOME?.trim() || join(homedir(), '.config');
  return join(config, 'systemd', 'user');
}

export function registerServiceCommand(program: Command): void {
  program
    .command('service')
    .description('print (or --install) a systemd user unit that runs "gptspam serve" as a service')
    .option('--home <dir>', 'data directory the service uses (default: $GPTSPAM_HOME or ~/.gptspam)')
    .option('--install', `write it to $XDG_CONFIG_HOME/systemd/user/${UNIT_NAME} (default ~/.config/systemd/user)`)
    .action(async (flags: { home?: string; install?: boolean }) => {
      // The script as it was started: for a global install, the stable bin link rather than a versioned path.
      const script = resolve(process.argv[1] ?? '');
      const unit = systemdUserUnit({ node: process.execPath, script, home: gptspamHome(flags.home) });
      if (!flags.install) {
        process.stdout.write(unit);
        return;
      }
      const path = join(userUnitDir(), UNIT_NAME);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, unit);
      process.stdout.write(`Wrote ${path}\nStart it now and at every login:\n  systemctl --user daemon-reload\n  systemctl --user enable --now gptspam\n`);
    });
}
