/** Store records → the JSON shapes of the API (daemon/API.md). Connector metadata stays server-side. */
import type { MessageRecord, ModelRecord, RunRecord } from './store/index.ts';
import { MESSAGE_KINDS } from './contract.ts';
import { describeKind, isTrainedOn, REASON_TEXT, type ModelCalibration } from './verdicts.ts';

export function messageView(m: MessageRecord) {
  return {
    id: m.id,
    source: m.source,
    kind: m.kind,
    account: m.account,
    externalId: m.externalId,
    sender: m.sender,
    subject: m.subject,
    snippet: m.snippet,
    receivedAt: m.receivedAt,
    createdAt: m.createdAt,
    verdict: m.verdict && { ...m.verdict, reasonText: REASON_TEXT[m.verdict.reason] ?? m.verdict.reason },
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
    calibration: calibrationView(m.calibration),
    comparedWith: m.compared,
    runId: m.runId,
  };
}

/** A model's thresholds and held-out error rates per kind (without its ROC points: /api/models/:v/roc.svg draws them). */
export function calibrationView(c: ModelCalibration | null) {
  if (!c) return null;
  const kinds = Object.fromEntries(
    MESSAGE_KINDS.map((kind) => {
      const k = c.kinds[kind];
      const { roc: _roc, ...figures } = k;
      return [kind, { ...figures, trainedOn: isTrainedOn(k), summary: describeKind(kind, k, c.options.targetHamLoss) }];
    }),
  );
  return { ...c.options, kinds };
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
