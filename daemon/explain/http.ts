/** `GET /api/messages/:id/explanation[?version=N]` (daemon/API.md): 200 with the explanation, or 202 while it is computed. */
import type { ModelHost } from '../model-host.ts';
import type { Store } from '../store/index.ts';
import { ExplanationQueueFullError, type Explanations } from './service.ts';

export interface ExplanationRouteContext {
  store: Store;
  host: ModelHost;
  explanations: Explanations;
}

/** The answer as an HTTP status and JSON body; errors are `{ error }` with a 4xx/5xx status. */
export async function explanationResponse(ctx: ExplanationRouteContext, messageId: number, params: URLSearchParams): Promise<{ status: number; body: unknown }> {
  if (!(await ctx.store.messages.get(messageId))) return { status: 404, body: { error: `there is no message ${messageId}` } };
  const asked = params.get('version');
  let version = ctx.host.version;
  if (asked !== null) {
    version = Number(asked);
    if (!Number.isSafeInteger(version) || version < 1) return { status: 400, body: { error: 'version must be a positive integer' } };
  }
  if (version === null) return { status: 503, body: { error: 'no model is ready yet: the first training run is in progress (see /api/status)' } };
  const model = await ctx.store.models.get(version);
  if (!model) return { status: 404, body: { error: `there is no model version ${version}` } };
  try {
    const answer = await ctx.explanations.request(messageId, model);
    if (answer.status === 'ready') return { status: 200, body: answer.explanation };
    if (answer.status === 'failed') return { status: 500, body: { error: `the explanation failed: ${answer.error}` } };
    return { status: 202, body: { status: 'pending', messageId, modelVersion: version } };
  } catch (err) {
    if (err instanceof ExplanationQueueFullError) return { status: 503, body: { error: err.message } };
    throw err;
  }
}
