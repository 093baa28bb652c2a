/** SMS / chat export connector: parsing export files and watching a folder for new ones. */
export { readExport, parseExport, toIncomingMessage } from './read-export.ts';
export type { ExportReader, ImportSummary, ReadExportOptions, SkipReason } from './read-export.ts';
export { parseSmsBackupXml } from './xml.ts';
export type { XmlParseOptions } from './xml.ts';
export { parseCsvExport, DEFAULT_CSV_COLUMNS } from './csv.ts';
export type { CsvColumnNames, CsvParseOptions } from './csv.ts';
export { parseUciTsv } from './tsv.ts';
export type { TsvParseOptions } from './tsv.ts';
export { detectFormat, sniffFormat } from './detect.ts';
export { smsExternalId } from './ids.ts';
export type { ExportInput } from './input.ts';
export { watchExportFolder } from './watch.ts';
export type { FolderWatch, WatchOptions } from './watch.ts';
export { SmsExportError } from './types.ts';
export type { Direction, ExportFormat, ImportIssue, ParsedSms, ParseReport, SmsExportErrorCode, Truncation } from './types.ts';
