/** Small conversions between SQLite values and the store's records. */
import type { SqlValue } from '../db.ts';

export type Row = Record<string, SqlValue>;

export function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function parseJson<T>(value: SqlValue | undefined): T | null {
  return typeof value === 'string' ? (JSON.parse(value) as T) : null;
}

export function str(value: SqlValue | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}

export function num(value: SqlValue | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** A LIKE pattern matching `q` anywhere, with its wildcards escaped (ESCAPE '\\'): the search text is data, never a pattern. */
export function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
