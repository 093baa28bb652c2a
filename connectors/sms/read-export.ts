/**
 * The connector's entry point: one export file in, IncomingMessage records out, plus a summary of what was
 * read, skipped and wrong. Format is detected from content; only incoming messages by default.
 */
import type { IncomingMessage } from '../../daemon/contract.ts';
import { parseCsvExport, type CsvColumnNames } from './csv.ts';
import { detectFormat } from './detect.ts';
import { smsExternalId } from './ids.ts';
import type { ExportInput } from './input.ts';
import { parseUciTsv } from './tsv.ts';
import type { ExportFormat, ParsedSms, ParseReport } from './types.ts';
import { parseSmsBackupXml } from './xml.ts';

export interface ReadExportOptions {
  /** Skip detection and read the file as this format. */
  format?: ExportFormat;
  /** Also import messages the phone's owner sent (default: only incoming). Drafts are never imported. */
  includeSent?: boolean;
  /** CSV column names, when the defaults do not match. */
  columns?: CsvColumnNames;
  /** CSV separator, when guessing from the header row is not wanted. */
  delimiter?: string;
  /**
   * IncomingMessage.account; default {@link DEFAULT_SMS_ACCOUNT}. Not the file name: the next export of the same
   * phone has another name, and its old messages must be recognised as already scored.
   */
  account?: string;
  /** How many problems the summary keeps in detail (all are counted). */
  maxIssues?: number;
}

/** The account of imported SMS when none is named: one phone. */
export const DEFAULT_SMS_ACCOUNT = 'phone';

export type SkipReason = 'sent' | 'draft' | 'empty' | 'unknownDirection';

export interface ImportSummary extends ParseReport {
  file: string;
  account: string;
  /** Known once reading has started. */
  format?: ExportFormat;
  /** Messages parsed from the file, before filtering. */
  read: number;
  /** Messages handed out. */
  imported: number;
  skipped: Record<SkipReason, number>;
  /** True once the whole file was read (also when it turned out truncated); false if reading stopped on an error. */
  finished: boolean;
}

/**
 * Iterate it once with `for await`; `summary` is updated as messages flow (usable for progress) and is
 * final when the loop ends. Problems that stop the import are thrown as SmsExportError; per-message
 * problems and truncation are in `summary.errors` / `summary.truncated`, which callers should show.
 */
export interface ExportReader extends AsyncIterable<IncomingMessage> {
  readonly summary: ImportSummary;
}

/** Parsed records of `input` in the given format; the parser fills `report` and returns it. */
export function parseExport(
  format: ExportFormat,
  input: ExportInput,
  opts: { fileName?: string; report?: ParseReport; maxIssues?: number; columns?: CsvColumnNames; delimiter?: string } = {},
): AsyncGenerator<ParsedSms, ParseReport, undefined> {
  switch (format) {
    case 'sms-backup-xml': return parseSmsBackupXml(input, opts);
    case 'uci-tsv': return parseUciTsv(input, opts);
    case 'csv': return parseCsvExport(input, opts);
  }
}

function skipReason(record: ParsedSms, includeSent: boolean): SkipReason | undefined {
  if (record.direction === 'draft') return 'draft';
  if (record.direction === 'unknown') return 'unknownDirection';
  if (record.direction === 'sent' && !includeSent) return 'sent';
  if (record.body.trim() === '') return 'empty';
  return undefined;
}

/** Maps a parsed record onto the daemon's contract. */
export function toIncomingMessage(record: ParsedSms, account: string): IncomingMessage {
  // A sent message's author is the owner; its counterpart keeps ids of different conversations apart.
  const party = record.sender ?? (record.recipients ? `to:${record.recipients.join(',')}` : '');
  const rawDate = record.extra?.rawDate;
  const when = record.date?.getTime() ?? (typeof rawDate === 'string' ? rawDate : undefined);
  const meta: Record<string, unknown> = { format: record.format, kind: record.kind, line: record.line, direction: record.direction };
  if (record.contactName !== undefined) meta.contactName = record.contactName;
  if (record.recipients !== undefined) meta.recipients = record.recipients;
  if (record.extra !== undefined) Object.assign(meta, record.extra);
  const message: IncomingMessage = {
    source: 'sms',
    account,
    externalId: smsExternalId(party, when, record.body),
    body: record.body,
    meta,
  };
  if (record.sender !== undefined) message.sender = record.sender;
  if (record.subject !== undefined) message.subject = record.subject;
  if (record.date !== undefined) message.receivedAt = record.date;
  if (record.knownLabel !== undefined) message.knownLabel = record.knownLabel;
  return message;
}

class FileExportReader implements ExportReader {
  readonly summary: ImportSummary;
  private started = false;

  constructor(private readonly path: string, private readonly opts: ReadExportOptions) {
    this.summary = {
      file: path,
      account: opts.account ?? DEFAULT_SMS_ACCOUNT,
      read: 0,
      imported: 0,
      skipped: { sent: 0, draft: 0, empty: 0, unknownDirection: 0 },
      errors: [],
      errorCount: 0,
      finished: false,
    };
  }

  [Symbol.asyncIterator](): AsyncGenerator<IncomingMessage, void, undefined> {
    // The summary describes one pass; a second pass would double every count.
    if (this.started) throw new Error(`readExport(${this.path}) can be iterated only once; call readExport again`);
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<IncomingMessage, void, undefined> {
    const { summary, opts } = this;
    const format = opts.format ?? (await detectFormat(this.path));
    summary.format = format;
    const records = parseExport(format, this.path, {
      report: summary,
      ...(opts.maxIssues === undefined ? {} : { maxIssues: opts.maxIssues }),
      ...(opts.columns === undefined ? {} : { columns: opts.columns }),
      ...(opts.delimiter === undefined ? {} : { delimiter: opts.delimiter }),
    });
    for await (const record of records) {
      summary.read++;
      const skip = skipReason(record, opts.includeSent === true);
      if (skip !== undefined) {
        summary.skipped[skip]++;
        continue;
      }
      summary.imported++;
      yield toIncomingMessage(record, summary.account);
    }
    summary.finished = true;
  }
}

/** Reads one export file (SMS Backup & Restore XML, UCI TSV or CSV). See ExportReader. */
export function readExport(path: string, opts: ReadExportOptions = {}): ExportReader {
  return new FileExportReader(path, opts);
}
