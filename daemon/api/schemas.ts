/**
 * What the API accepts, as schemas: request bodies and query strings are parsed here (api/http.ts `parse`), and
 * a request that does not fit gets a 400 naming the field. Texts are cut to a bounded length rather than refused.
 */
import { z } from 'zod';
import { MESSAGE_KINDS } from '../contract.ts';

export const MAX_BATCH = 1000;
export const MAX_LABELS = 1000;
export const MAX_CORRESPONDENTS = 10_000;

/** An optional text, cut to `max` characters; null is the same as absent. */
const text = (max: number) =>
  z.string({ error: 'must be a string' }).nullish().transform((v) => (v === null || v === undefined ? undefined : v.slice(0, max)));
const requiredText = (max: number, what: string) => z.string({ error: `${what} is required (a string)` }).transform((v) => v.slice(0, max));
const date = z
  .string({ error: 'must be a date (ISO 8601)' })
  .nullish()
  .transform((v, ctx) => {
    if (v === null || v === undefined) return undefined;
    const d = new Date(v.slice(0, 100));
    if (Number.isNaN(d.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'is not a date' });
      return z.NEVER;
    }
    return d;
  });
const kind = z.enum(MESSAGE_KINDS, { error: `must be one of ${MESSAGE_KINDS.join(', ')}` }).nullish().transform((v) => v ?? undefined);
const label = z.enum(['ham', 'spam'], { error: 'label must be "ham" or "spam"' });
const positiveInt = (what: string) => z.coerce.number({ error: `${what} must be a positive integer` }).int(`${what} must be a positive integer`).positive(`${what} must be a positive integer`);

/** POST /api/messages */
export const scoreMessageBody = z.object({
  body: requiredText(100_000, 'body (the message text)'),
  kind,
  sender: text(1000),
  subject: text(2000),
  account: text(200),
  externalId: text(500),
  receivedAt: date,
});

/** POST /api/messages/batch: what `gptspam import` sends. */
export const scoreBatchBody = z.object({
  messages: z.array(
    z.object({
      source: z.enum(['sms', 'api'], { error: 'source must be "sms" or "api"' }).default('api'),
      kind,
      account: z.string({ error: 'account is required' }).min(1, 'account is required').transform((v) => v.slice(0, 200)),
      externalId: z.string({ error: 'externalId is required' }).min(1, 'externalId is required').transform((v) => v.slice(0, 500)),
      body: requiredText(100_000, 'body (the message text)'),
      sender: text(1000),
      subject: text(2000),
      receivedAt: date,
      knownLabel: label.nullish().transform((v) => v ?? undefined),
    }),
    { error: 'messages must be an array' },
  ),
});

/** POST /api/messages/:id/label; null withdraws the user's correction (undo). */
export const labelBody = z.object({ label: label.nullable() });

/** POST /api/labels: the same for a selection, all or nothing. */
export const labelsBody = z.object({
  ids: z.array(positiveInt('each id'), { error: 'ids must be an array of message ids' }).min(1, 'ids must not be empty').max(MAX_LABELS, `at most ${MAX_LABELS} ids`),
  label: label.nullable(),
});

/** POST /api/correspondents */
export const correspondentsBody = z.object({
  correspondents: z
    .array(
      z.object({
        address: z.string({ error: 'address is required' }).transform((v) => v.slice(0, 500)),
        display: text(500),
        origin: z.enum(['user', 'sms-sent', 'sms-contact'], { error: 'origin must be user, sms-sent or sms-contact' }).default('user'),
        account: text(200),
      }),
      { error: 'correspondents must be an array' },
    )
    .max(MAX_CORRESPONDENTS, `at most ${MAX_CORRESPONDENTS} correspondents`),
});

/** GET /api/messages?… (uncertain=true is the review list, the same as label=uncertain). */
export const messagesQuery = z
  .object({
    label: z.enum(['ham', 'uncertain', 'spam'], { error: 'label must be ham, uncertain or spam' }).optional(),
    uncertain: z.enum(['true', 'false']).optional(),
    kind,
    source: z.enum(['imap', 'sms', 'api'], { error: 'source must be imap, sms or api' }).optional(),
    corrected: z.enum(['true', 'false'], { error: 'corrected must be true or false' }).optional(),
    q: text(200),
    before: positiveInt('before').optional(),
    limit: positiveInt('limit').optional().transform((v) => Math.min(200, v ?? 50)),
  })
  .transform(({ uncertain, ...q }) => ({ ...q, label: q.label ?? (uncertain === 'true' ? ('uncertain' as const) : undefined) }));

/** GET /api/correspondents?… */
export const correspondentsQuery = z.object({
  q: text(200),
  limit: positiveInt('limit').optional().transform((v) => Math.min(1000, v ?? 200)),
  offset: z.coerce.number({ error: 'offset must be a non-negative integer' }).int('offset must be a non-negative integer').min(0, 'offset must be a non-negative integer').default(0),
});

/** GET /api/messages/:id/explanation?version=N */
export const explanationQuery = z.object({ version: positiveInt('version').optional() });

/** A query string as an object of its parameters (the first value of each). */
export function queryObject(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (!(k in out)) out[k] = v;
  return out;
}
