/**
 * The daemon side of SMS exports: watches a drop folder and imports every export file that appears or grows,
 * once it has stopped changing. Re-importing a file scores only messages not seen before (stable ids).
 *
 * Files it finished with are remembered in the daemon's ledger (size, mtime, content hash, outcome), so a
 * restart neither parses them again nor reports a bad one again; a file that changes is imported again. A
 * shutdown stops an import between two chunks and leaves the file unrecorded: the next start imports it again,
 * skipping the messages already stored, which resumes it.
 */
import { mkdir, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { Connector, ImportedFile, ImportLedger, ScoringService } from '../../daemon/contract.ts';
import { sha256File } from '../../daemon/contract.ts';
import { importExport } from './import.ts';
import { watchExportFolder, type FolderWatch } from './watch.ts';

export interface SmsFolderOptions {
  folder: string;
  scoring: ScoringService;
  logger: Logger;
  ledger: ImportLedger;
  includeSent: boolean;
  settleMs: number;
}

/** Per-record problems logged for one file, each with its line; the rest are counted. */
const LOGGED_ISSUES = 20;

export class SmsFolderConnector implements Connector {
  readonly source = 'sms' as const;
  readonly account: string;
  private watch: FolderWatch | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly opts: SmsFolderOptions) {
    this.account = opts.folder;
  }

  async start(): Promise<void> {
    const { folder, logger } = this.opts;
    await mkdir(folder, { recursive: true });
    this.watch = watchExportFolder(folder, (path) => this.importFile(path), {
      settleMs: this.opts.settleMs,
      onError: (err, path) => logger.warn({ file: basename(path), err: (err as Error).message }, 'SMS export folder could not be read'),
    });
    logger.info({ folder }, 'watching for SMS exports');
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.watch?.stop();
    this.watch = undefined;
  }

  private async importFile(path: string): Promise<void> {
    const { logger, ledger, scoring } = this.opts;
    const file = basename(path);
    const info = await stat(path);
    const known = await ledger.get(path);
    if (known && known.size === info.size && known.mtimeMs === info.mtimeMs) {
      logger.debug({ file, outcome: known.outcome }, 'SMS export already handled');
      return;
    }
    const sha256 = await sha256File(path);
    const entry = { path, size: info.size, mtimeMs: info.mtimeMs, sha256 };
    const twin = known?.sha256 === sha256 ? known : await ledger.byHash(sha256);
    if (twin) {
      // The same content under another name or a touched mtime: nothing new to read.
      await ledger.record({ ...twin, ...entry, at: new Date().toISOString() });
      logger.info({ file, sameAs: basename(twin.path), outcome: twin.outcome }, 'SMS export has the content of one already handled');
      return;
    }
    try {
      const result = await importExport(path, (messages) => Promise.all(messages.map((m) => scoring.score(m))), {
        includeSent: this.opts.includeSent,
        signal: this.stopping.signal,
        addCorrespondents: (list) => scoring.addCorrespondents(list),
      });
      const s = result.summary;
      if (result.stopped) {
        logger.info({ file, scored: result.scored, duplicates: result.duplicates }, 'SMS export import stopped by the shutdown; the next start resumes it');
        return;
      }
      for (const issue of s.errors.slice(0, LOGGED_ISSUES)) {
        logger.warn({ file, line: issue.line, ...(issue.column === undefined ? {} : { column: issue.column }), problem: issue.message }, 'SMS export record problem');
      }
      if (s.errorCount > LOGGED_ISSUES) logger.warn({ file, more: s.errorCount - LOGGED_ISSUES }, 'SMS export has more record problems');
      const notes = [
        ...(s.truncated ? [s.truncated.message] : []),
        ...(s.errorCount > 0 ? [`${s.errorCount} record problem${s.errorCount === 1 ? '' : 's'}, first at line ${s.errors[0]?.line}: ${s.errors[0]?.message}`] : []),
      ];
      await ledger.record({
        ...entry, outcome: 'imported', detail: notes.length > 0 ? notes.join('; ') : null,
        scored: result.scored, duplicates: result.duplicates, errors: s.errorCount, at: new Date().toISOString(),
      });
      logger.info(
        { file, format: s.format, scored: result.scored, duplicates: result.duplicates, spam: result.spam, skipped: s.skipped, errors: s.errorCount, truncated: s.truncated ?? false },
        'SMS export imported',
      );
    } catch (err) {
      const failure: ImportedFile = {
        ...entry, outcome: 'failed', detail: (err as Error).message, scored: 0, duplicates: 0, errors: 1, at: new Date().toISOString(),
      };
      await ledger.record(failure);
      logger.warn({ file, err: failure.detail }, 'SMS export could not be imported; it is tried again when it changes');
    }
  }
}
