/**
 * Streaming reader for "SMS Backup & Restore" XML (Android), and the similar <allsms> files of other backup
 * apps. Memory stays bounded by the largest single element, whatever the file size: the file is read in
 * chunks, fed to saxes, and each finished <sms>/<mms> is handed out before the next chunk is read.
 *
 * Entities: only XML's five predefined entities and numeric references are decoded. saxes never reads entity
 * declarations from a DTD, and a DOCTYPE that declares entities is refused outright (billion-laughs files).
 */
import { SaxesParser } from 'saxes';
import { addMmsChild, mmsRecord, openMms, smsRecord, type OpenMms } from './backup-records.ts';
import { decodeUtf8, inputName, readChunks, type ExportInput } from './input.ts';
import { addIssue, createReport, DEFAULT_MAX_ISSUES } from './report.ts';
import { SurrogateRefJoiner } from './surrogates.ts';
import { SmsExportError, type ParsedSms, type ParseReport } from './types.ts';

export interface XmlParseOptions {
  /** Name used in errors when the input is a stream (a path names itself). */
  fileName?: string;
  /** Report to fill in (e.g. a live import summary); a fresh one otherwise. It is also the return value. */
  report?: ParseReport;
  maxIssues?: number;
  /** Longest stretch of markup without a complete tag; guards against a runaway attribute. Default 200 Mi chars. */
  maxElementChars?: number;
}

const ROOTS = new Set(['smses', 'allsms']);
/** Everything before the root element (XML declaration, DOCTYPE, comments) must fit in this. */
const MAX_PROLOG_CHARS = 1 << 20;

export async function* parseSmsBackupXml(
  input: ExportInput,
  opts: XmlParseOptions = {},
): AsyncGenerator<ParsedSms, ParseReport, undefined> {
  const file = inputName(input, opts.fileName);
  const report = opts.report ?? createReport();
  const maxIssues = opts.maxIssues ?? DEFAULT_MAX_ISSUES;
  const maxElementChars = opts.maxElementChars ?? 200 * 1024 * 1024;
  const parser = new SaxesParser<{ position: true; xmlns: false }>({ position: true, xmlns: false });

  const ready: ParsedSms[] = [];
  let recordsRead = 0;
  let depth = 0;
  let sawRoot = false;
  let rootOpen = false;
  let declaredCount: number | undefined;
  let mms: OpenMms | undefined;
  /** A start tag whose attributes have not all arrived yet (what a truncated file breaks off in). */
  let pendingTag: { name: string; line: number } | undefined;
  let tagLine = 1;
  let charsSinceTag = 0;
  let closing = false;
  const closeErrors: string[] = [];

  const issue = (message: string, line = parser.line, column: number | undefined = parser.column): void =>
    addIssue(report, { line, column, message }, maxIssues);

  const recordIssue = (message: string, line: number): void => issue(message, line, undefined);

  const emit = (record: ParsedSms): void => {
    recordsRead++;
    ready.push(record);
  };

  parser.on('xmldecl', (decl) => {
    const encoding = decl.encoding;
    if (encoding !== undefined && !/^(utf-?8|us-ascii)$/i.test(encoding)) {
      throw new SmsExportError('unsupported-encoding', file, `declares encoding "${encoding}"; only UTF-8 exports are supported`, { line: parser.line });
    }
  });

  parser.on('doctype', (doctype) => {
    if (/<!ENTITY/i.test(doctype)) {
      throw new SmsExportError('unsafe-doctype', file,
        'the DOCTYPE declares entities; refusing to read it (SMS exports never contain them, and entity declarations are never expanded)',
        { line: parser.line });
    }
  });

  parser.on('opentagstart', (tag) => {
    charsSinceTag = 0;
    tagLine = parser.line;
    pendingTag = { name: tag.name, line: parser.line };
  });

  parser.on('opentag', (tag) => {
    charsSinceTag = 0;
    pendingTag = undefined;
    const a = tag.attributes;
    if (depth === 0) {
      if (!ROOTS.has(tag.name)) {
        const hint = tag.name === 'calls' ? ' (this is a call-log backup, not messages)' : '';
        throw new SmsExportError('not-an-export', file, `root element is <${tag.name}>, expected <smses>${hint}`, { line: tagLine });
      }
      sawRoot = true;
      rootOpen = true;
      const count = a.count === undefined ? NaN : Number(a.count);
      if (Number.isInteger(count)) declaredCount = count;
    } else if (depth === 1 && tag.name === 'sms') {
      emit(smsRecord(a, tagLine, recordIssue));
    } else if (depth === 1 && tag.name === 'mms') {
      mms = openMms(a, tagLine);
    } else if (mms !== undefined) {
      addMmsChild(mms, tag.name, a);
    }
    depth++;
  });

  parser.on('closetag', (tag) => {
    charsSinceTag = 0;
    depth--;
    if (depth === 1 && tag.name === 'mms' && mms !== undefined) {
      emit(mmsRecord(mms, recordIssue));
      mms = undefined;
    } else if (depth === 0) {
      rootOpen = false;
    }
  });

  parser.on('error', (err) => {
    const message = err.message.replace(/^\d+:\d+: /, '');
    if (closing) {
      closeErrors.push(message);
      return;
    }
    const kept = /entity/.test(message) ? '; kept as written' : '';
    const where = pendingTag !== undefined ? ` (in <${pendingTag.name}> at line ${pendingTag.line})`
      : mms !== undefined ? ` (in <mms> at line ${mms.line})` : '';
    issue(`XML: ${message.replace(/\.$/, '')}${kept}${where}`);
  });

  const refs = new SurrogateRefJoiner();
  let prologChars = 0;
  const invalidUtf8 = (line: number, replaced: number): void => issue(`invalid UTF-8: ${replaced} byte sequence${replaced === 1 ? '' : 's'} replaced with U+FFFD (is the export partly in another encoding?)`, line, undefined);
  for await (const text of decodeUtf8(readChunks(input, file), invalidUtf8)) {
    parser.write(refs.push(text));
    if (!sawRoot && (prologChars += text.length) > MAX_PROLOG_CHARS) {
      throw new SmsExportError('not-an-export', file, `no root element in the first ${MAX_PROLOG_CHARS} characters`);
    }
    if ((charsSinceTag += text.length) > maxElementChars) {
      throw new SmsExportError('malformed', file, `no complete tag for ${maxElementChars} characters (runaway attribute or element?)`, { line: tagLine });
    }
    for (const record of ready.splice(0)) yield record;
  }
  parser.write(refs.end());
  for (const record of ready.splice(0)) yield record;

  // close() resets the position, so take it first: it is where the file ended.
  const end = { line: parser.line, column: parser.column };
  closing = true;
  parser.close();

  if (!sawRoot) {
    throw new SmsExportError('not-an-export', file, 'no XML root element: the file is empty or not an SMS backup');
  }
  if (rootOpen) {
    const unfinished = mms !== undefined
      ? `<mms> opened at line ${mms.line}`
      : pendingTag !== undefined ? `<${pendingTag.name}> opened at line ${pendingTag.line}` : undefined;
    const of = declaredCount === undefined ? '' : ` of the ${declaredCount} the file declares`;
    report.truncated = {
      ...end,
      recordsRead,
      ...(unfinished === undefined ? {} : { unfinished }),
      message: `file ends at line ${end.line}, column ${end.column}${unfinished === undefined ? '' : ` inside ${unfinished}`} ` +
        `before </smses>: truncated export; ${recordsRead} complete messages read${of}`,
    };
  } else {
    for (const message of closeErrors) issue(`XML: ${message}`, end.line, end.column);
  }
  return report;
}
