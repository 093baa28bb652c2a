/**
 * The daemon side of SMS exports: watches a drop folder and imports every export file that appears or grows,
 * once it has stopped changing. Re-importing a file scores only messages not seen before (stable ids).
 */
import { mkdir } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { Connector, ScoringService } from '../../daemon/types.ts';
import { importExport } from './import.ts';
import { watchExportFolder, type FolderWatch } from './watch.ts';

export interface SmsFolderOptions {
  folder: string;
  scoring: ScoringService;
  logger: Logger;
  includeSent: boolean;
  settleMs: number;
}

export class SmsFolderConnector implements Connector {
  readonly source = 'sms' as const;
  readonly account: string;
  private watch: FolderWatch | undefined;

  constructor(private readonly opts: SmsFolderOptions) {
    this.account = opts.folder;
  }

  async start(): Promise<void> {
    const { folder, logger, scoring } = this.opts;
    await mkdir(folder, { recursive: true });
    this.watch = watchExportFolder(
      folder,
      async (path) => {
        const result = await importExport(path, (messages) => Promise.all(messages.map((m) => scoring.score(m))), {
          includeSent: this.opts.includeSent,
          addCorrespondents: (list) => scoring.addCorrespondents(list),
        });
        const s = result.summary;
        logger.info(
          { file: basename(path), format: s.format, scored: result.scored, duplicates: result.duplicates, spam: result.spam, skipped: s.skipped, errors: s.errorCount, truncated: s.truncated ?? false },
          'SMS export imported',
        );
      },
      { settleMs: this.opts.settleMs, onError: (err, path) => logger.warn({ file: basename(path), err: (err as Error).message }, 'SMS export could not be imported') },
    );
    logger.info({ folder }, 'watching for SMS exports');
  }

  async stop(): Promise<void> {
    await this.watch?.stop();
    this.watch = undefined;
  }
}
