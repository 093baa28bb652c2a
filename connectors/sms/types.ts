/**
 * Shapes shared by the SMS/chat export parsers. Parsers turn one export format into ParsedSms records;
 * read-export.ts filters them and maps them onto the daemon's IncomingMessage.
 */
import type { Label } from '../../daemon/contract.ts';

export type ExportFormat = 'sms-backup-xml' | 'uci-tsv' | 'csv';

/** Who wrote the message, seen from the phone's owner. Only 'incoming' is imported by default. */
export type Direction = 'incoming' | 'sent' | 'draft' | 'unknown';

export interface ParsedSms {
  format: ExportFormat;
  /** 'sms' / 'mms' element of an XML backup, or a CSV/TSV row. */
  kind: 'sms' | 'mms' | 'row';
  direction: Direction;
  /** Author's address/number for incoming messages. */
  sender?: string;
  /** Counterparts of a sent message (the phone owner is the author). */
  recipients?: string[];
  contactName?: string;
  subject?: string;
  /** Decoded text, exactly as the export holds it (no trimming). */
  body: string;
  /** When the phone received (incoming) or stored (sent) the message. */
  date?: Date;
  knownLabel?: Label;
  /** 1-based line where the record starts in the file, for error messages and meta. */
  line: number;
  /** Format-specific extras; JSON-serialisable. */
  extra?: Record<string, unknown>;
}

/** A problem with one record or spot in the file; parsing went on. */
export interface ImportIssue {
  line: number;
  /** 1-based column where the parser noticed the problem, when known. */
  column?: number;
  message: string;
  /** The start of the offending text, for a person fixing the file; message content, so never logged. */
  excerpt?: string;
}

/** The file ended in the middle of a record (an interrupted copy or export). */
export interface Truncation {
  line: number;
  column?: number;
  /** Complete records read before the break (all directions, before filtering). */
  recordsRead: number;
  /** The unfinished element or row, e.g. "<sms> opened at line 12". */
  unfinished?: string;
  message: string;
}

/** Running account of one parse; parsers fill it in as they go, so it can drive a progress display. */
export interface ParseReport {
  /** The first `maxIssues` problems, in file order. */
  errors: ImportIssue[];
  /** All problems, including those beyond `maxIssues`. */
  errorCount: number;
  truncated?: Truncation;
}

export type SmsExportErrorCode =
  | 'io'
  | 'unrecognised-format'
  | 'not-an-export'
  | 'unsafe-doctype'
  | 'unsupported-encoding'
  | 'missing-column'
  | 'malformed';

/** A problem that stops the import of a file. Records before it were already delivered. */
export class SmsExportError extends Error {
  readonly code: SmsExportErrorCode;
  readonly file: string;
  readonly line?: number;
  readonly column?: number;

  constructor(
    code: SmsExportErrorCode,
    file: string,
    message: string,
    where: { line?: number; column?: number; cause?: unknown } = {},
  ) {
    const at = where.line === undefined ? '' : `:${where.line}${where.column === undefined ? '' : `:${where.column}`}`;
    super(`${file}${at}: ${message}`, where.cause === undefined ? undefined : { cause: where.cause });
    this.name = 'SmsExportError';
    this.code = code;
    this.file = file;
    this.line = where.line;
    this.column = where.column;
  }
}
