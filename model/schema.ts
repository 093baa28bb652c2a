/**
 * Checking data that crosses a trust boundary (a file, another process) against a zod schema, with an error that
 * says where the data came from and what is wrong with it, field by field.
 */
import { z } from 'zod';

/** A number as JSON carries it: NaN and ±Infinity are written as null, so null reads back as NaN. */
export const jsonNumber = z.union([z.number(), z.null().transform(() => NaN)]);

/** One line per problem: `path: message` (the path in JS notation, e.g. `kinds.sms.roc[3].hamLoss`). */
export function issuesText(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.map((k, n) => (typeof k === 'number' ? `[${k}]` : n === 0 ? String(k) : `.${String(k)}`)).join('');
      return `${path || '(the whole value)'}: ${i.message}`;
    })
    .join('; ');
}

/** Parses `value` with `schema`; otherwise throws an Error naming `where` and every problem found. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`${where}: ${issuesText(result.error)}`);
  return result.data;
}
