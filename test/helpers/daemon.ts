/**
 * Starts the real daemon (`bin/gptspam.js serve`) as a child process on a free port with a temporary home and
 * a tiny from-scratch model, so tests drive it exactly as a user does: over HTTP and WebSocket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { SMS_COLLECTION } from './fixture.ts';
import { waitFor } from './wait.ts';
import type { MessageView } from '../../daemon/views.ts';

const BIN = fileURLToPath(new URL('../../bin/gptspam.js', import.meta.url));

/**
 * A small, fast configuration: tiny scratch model, one epoch, 200 training examples and 900 held-out (enough ham to
 * calibrate a spam threshold) per corpus, the shared SMS Spam Collection, no schedule.
 */
export const TEST_CONFIG = {
  backend: 'wasm',
  logLevel: 'debug',
  model: { base: 'scratch', scratchSize: 'tiny', epochs: 1, maxTokens: 64 },
  training: { maxPerCorpus: 200, maxHeldOutPerCorpus: 900, schedule: '', afterCorrections: 0, smsCollectionFile: SMS_COLLECTION },
};

export interface RunningDaemon {
  url: string;
  token: string;
  home: string;
  proc: ChildProcess;
  /** Everything the process printed (stdout + stderr). */
  output(): string;
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Raw fetch with the token; for status-code assertions. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: what a crash or power cut looks like. */
  kill(): Promise<void>;
  /** Opens /ws and collects its events. */
  events(): Promise<EventLog>;
  /** Every message matching a /api/messages query (e.g. "source=sms"), all pages, newest first. */
  messages(query?: string): Promise<MessageView[]>;
  /** Waits for `look` to give a value (not undefined or false); fails at once if the daemon exits. */
  waitFor<T>(what: string, look: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
}

export interface EventLog {
  events: Array<Record<string, unknown>>;
  /** Resolves with the first event (already received or future) matching `pred`. */
  waitFor(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): void;
}

export function newHome(config: Record<string, unknown> = TEST_CONFIG): string {
  const home = mkdtempSync(join(tmpdir(), 'gptspam-home-'));
  writeFileSync(join(home, 'config.json'), JSON.stringify(config, null, 2));
  return home;
}

/** Waits for `look` while the process lives; its exit (with its last output) ends the wait at once. */
function waitWhileRunning<T>(what: string, look: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, proc: ChildProcess, output: () => string): Promise<T> {
  return waitFor(what, () => {
    if (proc.exitCode !== null) throw new Error(`the daemon exited (${proc.exitCode}) while waiting for ${what}:\n${output().slice(-3000)}`);
    return look();
  }, { timeoutMs, context: () => output().slice(-3000) });
}

export async function startDaemon(
  opts: { config?: Record<string, unknown>; home?: string; env?: Record<string, string>; readyTimeoutMs?: number; /** gptspam script to run */ bin?: string; cwd?: string } = {},
): Promise<RunningDaemon> {
  const home = opts.home ?? newHome(opts.config);
  const proc = spawn(process.execPath, [opts.bin ?? BIN, 'serve', '--home', home, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: { ...process.env, GPTSPAM_HOME: home, ...opts.env },
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const output = () => out;
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  process.on('exit', () => proc.kill('SIGKILL'));

  const url = await waitWhileRunning('the listening address', () => /open (http:\/\/[\d.]+:\d+)\//.exec(out)?.[1], 60_000, proc, output);
  const token = readFileSync(join(home, 'token'), 'utf8').trim();
  const authed = (path: string, init: RequestInit = {}) =>
    fetch(`${url}${path}`, { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
  const daemon: RunningDaemon = {
    url, token, home, proc, output,
    fetch: authed,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await authed(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const json = (await res.json()) as T & { error?: string };
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.error}`);
      return json;
    },
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
    async events() {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?token=${encodeURIComponent(token)}`);
      const log: Array<Record<string, unknown>> = [];
      ws.on('message', (d) => log.push(JSON.parse(d.toString()) as Record<string, unknown>));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return {
        events: log,
        waitFor: (pred, timeoutMs = 60_000) => waitWhileRunning('a WebSocket event', () => log.find(pred), timeoutMs, proc, output),
        close: () => ws.close(),
      };
    },
    async messages(query = '') {
      const all: MessageView[] = [];
      let before: number | null = null;
      do {
        const page: { messages: MessageView[]; nextBefore: number | null } = await daemon.api('GET', `/api/messages?limit=200${query ? `&${query}` : ''}${before ? `&before=${before}` : ''}`);
        all.push(...page.messages);
        before = page.nextBefore;
      } while (before !== null);
      return all;
    },
    waitFor: (what, look, timeoutMs = 60_000) => waitWhileRunning(what, look, timeoutMs, proc, output),
  };
  await waitWhileRunning(
    'the first model',
    async () => {
      const h = (await (await fetch(`${url}/api/health`)).json()) as { ready: boolean };
      return h.ready ? true : undefined;
    },
    opts.readyTimeoutMs ?? 180_000,
    proc,
    output,
  );
  return daemon;
}
