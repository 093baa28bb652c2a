import type { ImportIssue, ParseReport } from './types.ts';

/** How many issue details a report keeps; beyond that only the count grows (bounded memory on bad files). */
export const DEFAULT_MAX_ISSUES = 100;

export function createReport(): ParseReport {
  return { errors: [], errorCount: 0 };
}

export function addIssue(report: ParseReport, issue: ImportIssue, maxIssues = DEFAULT_MAX_ISSUES): void {
  report.errorCount++;
  if (report.errors.length < maxIssues) report.errors.push(issue);
}
