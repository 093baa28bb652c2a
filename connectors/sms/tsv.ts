/**
 * The UCI SMS Spam Collection format: one message per line, "ham<TAB>text" or "spam<TAB>text", no header.
 * Every row is a labelled, incoming message: training data for the classifier.
 */
import type { Label } from '../../daemon/contract.ts';
import { decodeUtf8, inputName, readChunks, splitLines, type ExportInput } from './input.ts';
import { addIssue, createReport, DEFAULT_MAX_ISSUES } from './report.ts';
import type { ParsedSms, ParseReport } from './types.ts';

export interface TsvParseOptions {
  fileName?: string;
  report?: ParseReport;
  maxIssues?: number;
}

export async function* parseUciTsv(
  input: ExportInput,
  opts: TsvParseOptions = {},
): AsyncGenerator<ParsedSms, ParseReport, undefined> {
  const file = inputName(input, opts.fileName);
  const report = opts.report ?? createReport();
  const maxIssues = opts.maxIssues ?? DEFAULT_MAX_ISSUES;
  const invalidUtf8 = (line: number, replaced: number): void => addIssue(report, { line, message: `invalid UTF-8: ${replaced} byte sequence${replaced === 1 ? '' : 's'} replaced with U+FFFD (is the export partly in another encoding?)` }, maxIssues);
  for await (const { text, line } of splitLines(decodeUtf8(readChunks(input, file), invalidUtf8))) {
    if (text.trim() === '') continue;
    // Split on the first tab only: the message text may contain more.
    const tab = text.indexOf('\t');
    const label = (tab === -1 ? '' : text.slice(0, tab)).trim().toLowerCase();
    if (tab === -1 || (label !== 'ham' && label !== 'spam')) {
      const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
      const why = tab === -1 ? 'no tab between label and text' : `label "${label}" is not ham or spam`;
      addIssue(report, { line, column: 1, message: `${why}; row skipped`, excerpt: shown }, maxIssues);
      continue;
    }
    yield {
      format: 'uci-tsv',
      kind: 'row',
      direction: 'incoming',
      body: text.slice(tab + 1),
      knownLabel: label satisfies Label,
      line,
    };
  }
  return report;
}
