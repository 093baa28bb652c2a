/** `GET /api/messages/:id/explanation[?version=N]` (daemon/API.md): 200 with the explanation, or 202 while it is computed. */
import { ExplanationQueueFullError } from '../explain/service.ts';
import type { ApiContext } from './context.ts';
import { HttpError } from './http.ts';

/** The answer as an HTTP status and JSON body (the current model version's, unless `asked` names one). */
export async function explanation(ctx: ApiContext, messageId: number, asked: number | undefined): Promise<{ status: number; body: unknown }> {
  if (!(await ctx.store.messages.get(messageId))) throw new HttpError(404, `there is no message ${messageId}`);
  const version = asked ?? ctx.host.version;
  if (version === null) throw new HttpError(503, 'no model is ready yet: the first training run is in progress (see /api/status)');
  const model = await ctx.store.models.get(version);
  if (!model) throw new HttpError(404, `there is no model version ${version}`);
  try {
    const answer = await ctx.explanations.request(messageId, model);
    if (answer.status === 'ready') return { status: 200, body: answer.explanation };
    if (answer.status === 'failed') throw new HttpError(500, `the explanation failed: ${answer.error}`);
    return { status: 202, body: { status: 'pending', messageId, modelVersion: version } };
  } catch (err) {
    if (err instanceof ExplanationQueueFullError) throw new HttpError(503, err.message);
    throw err;
  }
}
