/**
 * Where the daemon's SMS training data comes from: the file named in the configuration, the copy installed in the
 * home (`gptspam data sms`), or a download of the UCI SMS Spam Collection checked against the original's SHA-256.
 * Offline and with nothing installed, text messages cannot be learned: one log line says so and what to do, and
 * SMS verdicts stay "uncertain" (the model has no training examples of them).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { downloadSmsCollection, SMS_COLLECTION_FILE } from '../../model/dataset.ts';
import type { DaemonConfig } from '../config.ts';
import { expandTilde } from '../home.ts';

export function installedSmsCollection(home: string): string {
  return join(home, 'data', 'sms', SMS_COLLECTION_FILE);
}

/** The collection file to train on, or null when it is switched off or cannot be had. */
export async function resolveSmsCollection(config: DaemonConfig, home: string, logger: Logger): Promise<string | null> {
  const t = config.training;
  if (!t.smsCollection) return null;
  if (t.smsCollectionFile) {
    const path = resolve(home, expandTilde(t.smsCollectionFile));
    if (existsSync(path)) return path;
    logger.warn({ path }, 'training.smsCollectionFile names no file: training without the SMS Spam Collection (text messages stay uncertain)');
    return null;
  }
  const installed = installedSmsCollection(home);
  if (existsSync(installed)) return installed;
  logger.info({ dest: installed }, 'the SMS Spam Collection is not installed: downloading it');
  try {
    const got = await downloadSmsCollection({
      ...(t.smsCollectionUrl ? { url: t.smsCollectionUrl } : {}),
      destDir: join(home, 'data', 'sms'),
      signal: AbortSignal.timeout(5 * 60_000),
    });
    logger.info({ path: got.path, messages: got.messages, sha256: got.sha256 }, 'SMS Spam Collection downloaded and verified');
    return got.path;
  } catch (err) {
    logger.warn(
      { err: (err as Error).message },
      'the SMS Spam Collection could not be downloaded: training without it, so text messages stay uncertain ' +
        '(install it with "gptspam data sms --from FILE", or set training.smsCollectionFile to a local copy)',
    );
    return null;
  }
}
