/**
 * Timestamps in exports: epoch milliseconds (Android), epoch seconds (many CSV tools) or ISO 8601 text.
 */

/** Epoch values below this are seconds: 1e11 s is the year 5138, 1e11 ms is March 1973. */
const SECONDS_LIMIT = 1e11;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * The instant `raw` denotes, or undefined when it is neither an epoch number nor ISO 8601.
 * ISO times without an offset are local time (JavaScript's rule), date-only values are UTC midnight.
 */
export function parseTimestamp(raw: string): Date | undefined {
  const value = raw.trim();
  if (/^-?\d+(?:\.\d+)?$/.test(value)) {
    const n = Number(value);
    const date = new Date(Math.abs(n) < SECONDS_LIMIT ? Math.round(n * 1000) : Math.round(n));
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  if (!ISO_8601.test(value)) return undefined;
  const date = new Date(value.replace(' ', 'T').replace(',', '.').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(date.getTime()) ? undefined : date;
}
