/**
 * Structured logs (pino, JSON lines on stdout). Message content and secrets never go into a log at info level:
 * callers log ids and counts; these keys are redacted everywhere as a second line of defence.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export const REDACTED_KEYS = ['password', 'pass', 'accessToken', 'token', 'authorization', 'body', 'text', '*.password', '*.pass', '*.accessToken', '*.token', '*.body', '*.text'];

export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, redact: { paths: REDACTED_KEYS, censor: '[redacted]' } };
  return destination ? pino(opts, destination) : pino(opts);
}
