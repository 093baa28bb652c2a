/**
 * The Chromium the UI tests drive: $GPTSPAM_CHROMIUM when set, else wherever the platform installs it (Debian's
 * chromium, Ubuntu's chromium-browser, Google Chrome, snap, macOS apps), else a browser of those names on PATH.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
];
const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

export function findChromium(): string | undefined {
  const chosen = process.env.GPTSPAM_CHROMIUM;
  if (chosen) return existsSync(chosen) ? chosen : undefined;
  for (const p of CANDIDATES) if (existsSync(p)) return p;
  for (const name of NAMES) {
    const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  }
  return undefined;
}

/** The browser, or an error saying how to install it: the UI tests fail without one, they never skip. */
export function requireChromium(): string {
  const found = findChromium();
  if (found) return found;
  const chosen = process.env.GPTSPAM_CHROMIUM;
  throw new Error(
    `Chromium is required by the UI tests and was not found${chosen ? ` at GPTSPAM_CHROMIUM=${chosen}` : ` (${CANDIDATES.slice(0, 5).join(', ')}, PATH)`}: ` +
      'install it (Debian: apt-get install -y chromium; .ci/run does this) or set GPTSPAM_CHROMIUM to its binary',
  );
}
