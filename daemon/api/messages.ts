/** Routes of messages: the review list, one message, scoring (one or a batch), corrections, explanations. */
import { createHash } from 'node:crypto';
import { UnknownMessageError } from '../scoring.ts';
import type { Label } from '../contract.ts';
import { messageView } from '../views.ts';
import type { ApiContext } from './context.ts';
import { HttpError } from './http.ts';
import { MAX_BATCH, type labelsBody, type messagesQuery, type scoreBatchBody, type scoreMessageBody } from './schemas.ts';
import type { z } from 'zod';

export async function listMessages(ctx: ApiContext, q: z.output<typeof messagesQuery>) {
  const rows = await ctx.store.messages.list({
    limit: q.limit,
    ...(q.label ? { label: q.label } : {}),
    ...(q.kind ? { kind: q.kind } : {}),
    ...(q.source ? { source: q.source } : {}),
    ...(q.corrected ? { corrected: q.corrected === 'true' } : {}),
    ...(q.q ? { q: q.q } : {}),
    ...(q.before !== undefined ? { before: q.before } : {}),
  });
  return { messages: rows.map(messageView), nextBefore: rows.length === q.limit ? rows[rows.length - 1]!.id : null };
}

export async function messageDetail(ctx: ApiContext, id: number) {
  const { messages } = ctx.store;
  const m = await messages.get(id);
  if (!m) throw new HttpError(404, `there is no message ${id}`);
  return { ...messageView(m), text: (await messages.text(id)) ?? '', verdicts: await messages.verdictsOf(id), corrections: await messages.correctionsOf(id) };
}

function requireModel(ctx: ApiContext): void {
  if (!ctx.host.ready) throw new HttpError(503, 'no model is ready yet: the first training run is in progress (see /api/status)');
}

export async function scoreOne(ctx: ApiContext, b: z.output<typeof scoreMessageBody>) {
  requireModel(ctx);
  // Without an id of its own, a message is new every time it is sent.
  const externalId = b.externalId ?? createHash('sha256').update(`${b.sender ?? ''}\n${b.subject ?? ''}\n${b.body}\n${Date.now()}-${Math.random()}`).digest('hex');
  const { record, duplicate } = await ctx.scoring.scoreRecord({
    source: 'api', account: b.account ?? 'api', externalId, body: b.body,
    ...(b.kind ? { kind: b.kind } : {}),
    ...(b.sender !== undefined ? { sender: b.sender } : {}),
    ...(b.subject !== undefined ? { subject: b.subject } : {}),
    ...(b.receivedAt ? { receivedAt: b.receivedAt } : {}),
  });
  return { message: messageView(record), duplicate };
}

export async function scoreBatch(ctx: ApiContext, b: z.output<typeof scoreBatchBody>) {
  requireModel(ctx);
  if (b.messages.length > MAX_BATCH) throw new HttpError(413, `at most ${MAX_BATCH} messages per batch`);
  const results = await Promise.all(
    b.messages.map((m) =>
      ctx.scoring.scoreRecord({
        source: m.source, account: m.account, externalId: m.externalId, body: m.body,
        ...(m.kind ? { kind: m.kind } : {}),
        ...(m.sender !== undefined ? { sender: m.sender } : {}),
        ...(m.subject !== undefined ? { subject: m.subject } : {}),
        ...(m.receivedAt ? { receivedAt: m.receivedAt } : {}),
        ...(m.knownLabel ? { knownLabel: m.knownLabel } : {}),
      }),
    ),
  );
  return {
    results: results.map(({ record, duplicate }) => ({ id: record.id, duplicate, label: record.label, spamProbability: record.verdict?.spamProbability ?? null })),
  };
}

/** A correction from the web page (null withdraws one: undo). */
export async function correct(ctx: ApiContext, id: number, label: Label | null) {
  try {
    return { message: messageView(await ctx.scoring.correctRecord(id, label, 'ui')) };
  } catch (err) {
    if (err instanceof UnknownMessageError) throw new HttpError(404, err.message);
    throw err;
  }
}

/** The same correction for a selection, all or nothing. */
export async function correctMany(ctx: ApiContext, b: z.output<typeof labelsBody>) {
  try {
    const records = await ctx.scoring.correctRecords([...new Set(b.ids)], b.label, 'ui');
    return { messages: records.map(messageView) };
  } catch (err) {
    if (err instanceof UnknownMessageError) throw new HttpError(404, err.message);
    throw err;
  }
}
