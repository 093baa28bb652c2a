/**
 * An IMAP account's configuration and opening an authenticated imapflow connection for it.
 * Secrets (password, access token) never reach a log: imapflow's own logger is filtered here.
 */
import { ImapFlow, type Logger as ImapLogger } from 'imapflow';
import type { Logger } from 'pino';
import type { ImapAccountConfig } from '../../daemon/contract.ts';

/** An account as the configuration gives it (daemon/config.ts defines and checks it: exactly one secret). */
export type ImapAccount = ImapAccountConfig;
export type ImapSecurity = ImapAccount['secure'];
/** What to do with spam: move it to the spam mailbox, flag it ($Junk), or only score it. */
export type SpamAction = ImapAccount['action'];

export function accountName(account: ImapAccount): string {
  return account.name ?? `${account.user}@${account.host}`;
}

export function watchedMailbox(account: ImapAccount): string {
  return account.mailbox ?? 'INBOX';
}

type Credentials = { pass: string } | { accessToken: string };

/** Throws on an account that can never connect (its password's environment variable is not set). */
export function checkAccount(account: ImapAccount): void {
  credentials(account);
}

/** The account's secret (the configuration made sure there is exactly one); an unset environment variable throws. */
function credentials(account: ImapAccount): Credentials {
  if (account.accessToken !== undefined) return { accessToken: account.accessToken };
  if (account.passwordEnv !== undefined) {
    const pass = process.env[account.passwordEnv];
    if (!pass) throw new Error(`IMAP account ${accountName(account)}: environment variable ${account.passwordEnv} is not set`);
    return { pass };
  }
  return { pass: account.password ?? '' };
}

/** Fields of imapflow log entries that carry no message data or secrets. */
const SAFE_FIELDS = ['msg', 'cid', 'code', 'command', 'responseStatus', 'responseText', 'host', 'port', 'secure', 'path'];

/**
 * imapflow logs protocol traffic at debug/trace (which can include message data and, for some auth
 * paths, credentials). Only its warnings and errors are passed on, reduced to fields known to be safe;
 * its info chatter goes to our debug.
 */
export function imapLogger(logger: Logger): ImapLogger {
  const pick = (entry: unknown): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    if (entry && typeof entry === 'object') {
      for (const k of SAFE_FIELDS) {
        const v = (entry as Record<string, unknown>)[k];
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
      }
      const err = (entry as Record<string, unknown>).err;
      if (err instanceof Error) out.error = err.message;
    }
    return out;
  };
  const msgOf = (o: Record<string, unknown>) => (typeof o.msg === 'string' ? o.msg : 'imapflow');
  return {
    debug: () => {},
    trace: () => {},
    info: (entry) => { const o = pick(entry); logger.debug({ imap: o }, msgOf(o)); },
    warn: (entry) => { const o = pick(entry); logger.warn({ imap: o }, msgOf(o)); },
    error: (entry) => { const o = pick(entry); logger.warn({ imap: o }, msgOf(o)); },
    fatal: (entry) => { const o = pick(entry); logger.error({ imap: o }, msgOf(o)); },
  };
}

export interface ConnectOptions {
  /** Largest literal accepted from the server (bounds memory against a broken or hostile server). Default 64 MiB. */
  maxLiteralSize?: number;
  connectionTimeoutMs?: number;
  socketTimeoutMs?: number;
  /**
   * Extensions not to use even when the server advertises them (e.g. 'IDLE', 'MOVE', 'UIDPLUS'), for
   * servers whose implementation is broken. Also keeps the session out of IMAP4rev2, which implies them.
   */
  disableExtensions?: string[];
}

/**
 * Opens and authenticates a connection. Auto-IDLE is off: the connector decides when to IDLE. The caller
 * must attach an 'error' listener (imapflow emits one before 'close' on a failed connection).
 */
export async function connect(account: ImapAccount, logger: Logger, opts: ConnectOptions = {}): Promise<ImapFlow> {
  const auth = { user: account.user, ...credentials(account) };
  const port = account.port ?? (account.secure === 'tls' ? 993 : 143);
  const client = new ImapFlow({
    host: account.host,
    port,
    secure: account.secure === 'tls',
    doSTARTTLS: account.secure === 'starttls' ? true : account.secure === 'none' ? false : undefined,
    auth,
    tls: account.tls,
    logger: imapLogger(logger),
    disableAutoIdle: true,
    maxLiteralSize: opts.maxLiteralSize ?? 64 * 1024 * 1024,
    maxResponseSize: (opts.maxLiteralSize ?? 64 * 1024 * 1024) * 2,
    connectionTimeout: opts.connectionTimeoutMs ?? 30_000,
    greetingTimeout: 16_000,
    socketTimeout: opts.socketTimeoutMs ?? 5 * 60_000,
    clientInfo: { name: 'gptspam' },
    ...(opts.disableExtensions?.length ? { disableIMAP4rev2: true } : {}),
  });
  // Until the caller attaches its own: an unhandled 'error' event would crash the process.
  const early = (err: Error) => logger.debug({ account: accountName(account), error: err.message }, 'IMAP connection error');
  client.on('error', early);
  try {
    await client.connect();
  } catch (err) {
    client.close();
    throw new Error(`IMAP ${accountName(account)} (${account.host}:${port}): ${describeError(err)}`, { cause: err });
  }
  for (const ext of opts.disableExtensions ?? []) for (const k of [ext, ext.toUpperCase()]) client.capabilities.delete(k);
  return client;
}

/** A one-line reason for an imapflow failure, without server-sent detail beyond its response text. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { code?: string; responseText?: string; authenticationFailed?: boolean };
  if (e.authenticationFailed) return `authentication failed${e.responseText ? `: ${e.responseText}` : ''}`;
  const parts = [e.message];
  if (e.code && !e.message.includes(e.code)) parts.push(`(${e.code})`);
  if (e.responseText && !e.message.includes(e.responseText)) parts.push(`- ${e.responseText}`);
  return parts.join(' ');
}
