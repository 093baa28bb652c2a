/**
 * Generic CSV exports (chat/SMS tools, spreadsheets): a header row, then one message per row. Columns are
 * found by name, either given by the caller or from common defaults. Streamed through csv-parse.
 */
import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import type { Label } from '../../daemon/contract.ts';
import { parseTimestamp } from './dates.ts';
import { decodeUtf8, inputName, readChunks, type ExportInput } from './input.ts';
import { addIssue, createReport, DEFAULT_MAX_ISSUES } from './report.ts';
import { SmsExportError, type Direction, type ParsedSms, type ParseReport } from './types.ts';

/** Header names of the columns to use (matched case-insensitively, ignoring surrounding spaces). */
export interface CsvColumnNames {
  sender?: string;
  date?: string;
  /** The message text; the only required column. */
  body?: string;
  /** Received/sent marker; without one every row counts as incoming. */
  direction?: string;
  /** ham/spam, for labelled imports. */
  label?: string;
}

export interface CsvParseOptions {
  fileName?: string;
  report?: ParseReport;
  maxIssues?: number;
  columns?: CsvColumnNames;
  /** Field separator; guessed from the header row (",", ";" or tab) when absent. */
  delimiter?: string;
}

type Role = keyof CsvColumnNames;

export const DEFAULT_CSV_COLUMNS: Readonly<Record<Role, readonly string[]>> = {
  sender: ['sender', 'from', 'address', 'number', 'phone', 'phone number', 'contact'],
  date: ['date', 'time', 'timestamp', 'datetime', 'date/time', 'received', 'date received'],
  body: ['body', 'text', 'message', 'content', 'msg', 'sms'],
  direction: ['direction', 'type', 'folder', 'box'],
  label: ['label', 'class'],
};

const DIRECTIONS: Readonly<Record<string, Direction>> = {
  '1': 'incoming', in: 'incoming', incoming: 'incoming', inbox: 'incoming', received: 'incoming', receive: 'incoming',
  '2': 'sent', '4': 'sent', '5': 'sent', '6': 'sent', out: 'sent', outgoing: 'sent', sent: 'sent', outbox: 'sent', send: 'sent',
  '3': 'draft', draft: 'draft', drafts: 'draft',
};

/** One quoted field may span lines; a stray quote must not swallow the rest of a huge file into memory. */
const MAX_RECORD_BYTES = 8 * 1024 * 1024;

/** The separator used most often outside quotes in the header line. */
export function guessDelimiter(headerLine: string): string {
  const counts = new Map<string, number>([[',', 0], [';', 0], ['\t', 0]]);
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  let best = ',';
  for (const [ch, n] of counts) if (n > (counts.get(best) ?? 0)) best = ch;
  return best;
}

const norm = (name: string): string => name.trim().toLowerCase();

function lineBreaks(fields: readonly string[]): number {
  let n = 0;
  for (const field of fields) n += field.match(/\r\n|\r|\n/g)?.length ?? 0;
  return n;
}

function resolveColumns(header: string[], wanted: CsvColumnNames, file: string): Partial<Record<Role, number>> {
  const names = header.map(norm);
  const found = header.map((h) => JSON.stringify(h)).join(', ') || '(none)';
  const result: Partial<Record<Role, number>> = {};
  for (const role of Object.keys(DEFAULT_CSV_COLUMNS) as Role[]) {
    const given = wanted[role];
    if (given !== undefined) {
      const index = names.indexOf(norm(given));
      if (index === -1) {
        throw new SmsExportError('missing-column', file, `no column "${given}" (asked for as the ${role} column); columns found: ${found}`, { line: 1 });
      }
      result[role] = index;
      continue;
    }
    const index = names.findIndex((n) => DEFAULT_CSV_COLUMNS[role].includes(n));
    if (index !== -1) result[role] = index;
  }
  if (result.body === undefined) {
    throw new SmsExportError('missing-column', file,
      `no message text column (looked for ${DEFAULT_CSV_COLUMNS.body.join(', ')}; name it with the body column option); columns found: ${found}`,
      { line: 1 });
  }
  return result;
}

export async function* parseCsvExport(
  input: ExportInput,
  opts: CsvParseOptions = {},
): AsyncGenerator<ParsedSms, ParseReport, undefined> {
  const file = inputName(input, opts.fileName);
  const report = opts.report ?? createReport();
  const maxIssues = opts.maxIssues ?? DEFAULT_MAX_ISSUES;
  const issue = (line: number, message: string): void => addIssue(report, { line, message }, maxIssues);

  // Peek at the first chunk for the header line, then hand csv-parse that chunk and the rest.
  // Decoded here rather than by csv-parse, so invalid UTF-8 is reported with its line instead of replaced silently.
  const invalidUtf8 = (line: number, replaced: number): void => issue(line, `invalid UTF-8: ${replaced} byte sequence${replaced === 1 ? '' : 's'} replaced with U+FFFD (is the export partly in another encoding?)`);
  const chunks = decodeUtf8(readChunks(input, file), invalidUtf8);
  const first = await chunks.next();
  if (first.done === true) throw new SmsExportError('not-an-export', file, 'empty file: no header row');
  const head = first.value;
  const headText = head;
  const delimiter = opts.delimiter ?? guessDelimiter(headText.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '');

  const source = Readable.from((async function* () {
    yield head;
    yield* chunks;
  })());
  const parser = parse({
    bom: true,
    delimiter,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
    info: true,
  });
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);

  let columns: Partial<Record<Role, number>> | undefined;
  let recordsRead = 0;
  // Own line count: csv-parse's info.lines counts a CRLF inside a quoted field as two lines.
  let linesUsed = 0;
  let emptyLines = 0;
  try {
    for await (const row of parser as AsyncIterable<{ record: string[]; info: { empty_lines: number } }>) {
      const { record, info } = row;
      emptyLines = info.empty_lines;
      const line = 1 + linesUsed + emptyLines;
      linesUsed += 1 + lineBreaks(record);
      if (columns === undefined) {
        columns = resolveColumns(record, opts.columns ?? {}, file);
        continue;
      }
      const field = (role: Role): string | undefined => {
        const index = columns?.[role];
        return index === undefined ? undefined : record[index];
      };
      const body = field('body');
      if (body === undefined) {
        issue(line, `row has ${record.length} fields, no message text (column ${(columns.body ?? 0) + 1}); row skipped`);
        continue;
      }
      const parsed: ParsedSms = { format: 'csv', kind: 'row', direction: 'incoming', body, line };
      const sender = field('sender')?.trim();
      if (sender) parsed.sender = sender;
      const rawDate = field('date');
      if (rawDate !== undefined && rawDate.trim() !== '') {
        const date = parseTimestamp(rawDate);
        if (date !== undefined) parsed.date = date;
        else {
          parsed.extra = { rawDate: rawDate.trim() };
          issue(line, `unreadable date "${rawDate}" (expected ISO 8601 or epoch seconds/milliseconds); message kept without a date`);
        }
      }
      if (columns.direction !== undefined) {
        const raw = norm(field('direction') ?? '');
        parsed.direction = DIRECTIONS[raw] ?? 'unknown';
        if (parsed.direction === 'unknown') issue(line, `unknown direction "${raw}" (expected e.g. received/sent); row skipped`);
      }
      const label = norm(field('label') ?? '');
      if (label === 'ham' || label === 'spam') parsed.knownLabel = label satisfies Label;
      else if (label !== '') issue(line, `label "${label}" is not ham or spam; message kept unlabelled`);
      recordsRead++;
      yield parsed;
    }
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    const context = err as CsvError & { empty_lines?: number };
    const at = 1 + linesUsed + (context.empty_lines ?? emptyLines);
    if (err.code === 'CSV_QUOTE_NOT_CLOSED') {
      report.truncated = {
        line: at,
        recordsRead,
        unfinished: `the row starting at line ${at}`,
        message: `file ends inside a quoted field of the row starting at line ${at} (truncated export or a stray quote); ${recordsRead} complete rows read`,
      };
      return report;
    }
    throw new SmsExportError('malformed', file, `CSV: ${err.message}; ${recordsRead} rows were read before it`, { line: at, cause: err });
  } finally {
    source.destroy();
  }
  if (columns === undefined) throw new SmsExportError('not-an-export', file, 'empty file: no header row');
  return report;
}
