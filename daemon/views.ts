/** Store records → the JSON shapes of the API (daemon/API.md). Connector metadata stays server-side. */
import type { MessageRecord, ModelRecord, RunRecord } from './store.ts';

export function messageView(m: MessageRecord) {
  return {
    id: m.id,
    source: m.source,
    account: m.account,
    externalId: m.externalId,
    sender: m.sender,
    subject: m.subject,
    snippet: m.snippet,
    receivedAt: m.receivedAt,
    createdAt: m.createdAt,
    verdict: m.verdict,
    correction: m.correction,
    label: m.label,
  };
}
export type MessageView = ReturnType<typeof messageView>;

export function modelView(m: ModelRecord, current: number | null) {
  return {
    version: m.version,
    createdAt: m.createdAt,
    current: m.version === current,
    promoted: m.promotedAt !== null,
    status: m.status,
    base: m.base,
    baseHash: m.baseHash,
    trainingSize: m.trainingSize,
    corrections: m.corrections,
    metrics: m.metrics,
    comparedWith: m.compared,
    runId: m.runId,
  };
}

export function runView(r: RunRecord) {
  return {
    id: r.id,
    status: r.status,
    reason: r.reason,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    progress: r.progress,
    history: r.history,
    modelVersion: r.modelVersion,
    promoted: r.promoted,
    error: r.error,
  };
}
