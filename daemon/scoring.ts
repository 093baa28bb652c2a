/**
 * The in-process scoring service the connectors and the API call: a message in, a stored verdict out. The
 * verdict keeps the spam probability and the threshold beside the label, so a threshold changed later can be
 * re-applied without re-scoring.
 *
 * Events: 'verdict' (MessageRecord), 'correction' ({ record: MessageRecord, event: CorrectionEvent }).
 */
import { EventEmitter } from 'node:events';
import type { DaemonConfig } from './config.ts';
import { modelText } from './message-text.ts';
import type { ModelHost } from './model-host.ts';
import type { MessageRecord, Store } from './store.ts';
import type { CorrectionEvent, CorrectionOrigin, IncomingMessage, Label, ScoringService, Verdict } from './types.ts';

export class UnknownMessageError extends Error {}

function verdictOf(record: MessageRecord): Verdict {
  const v = record.verdict!;
  return {
    messageId: record.id,
    modelVersion: String(v.modelVersion),
    spamProbability: v.spamProbability,
    label: v.label,
    threshold: v.threshold,
    scoredAt: new Date(v.scoredAt),
  };
}

export class Scoring extends EventEmitter implements ScoringService {
  constructor(
    private readonly store: Store,
    private readonly host: ModelHost,
    private readonly thresholds: DaemonConfig['thresholds'],
  ) {
    super();
  }

  async score(message: IncomingMessage): Promise<Verdict & { duplicate: boolean }> {
    const { record, duplicate } = await this.scoreRecord(message);
    return { ...verdictOf(record), duplicate };
  }

  /** Like score(), returning the stored record (what the API and UI show). */
  async scoreRecord(message: IncomingMessage): Promise<{ record: MessageRecord; duplicate: boolean }> {
    // A connector re-processing after a crash gets the stored verdict: nothing is scored or stored twice.
    const known = await this.store.findMessage(message.source, message.account, message.externalId);
    if (known) return { record: known, duplicate: true };
    const text = modelText(message);
    const { logits, version } = await this.host.score(text);
    // softmax([ham, spam])[spam], as a logistic of the margin, in float64.
    const spamProbability = 1 / (1 + Math.exp(-(logits[1]! - logits[0]!)));
    const threshold = this.thresholds[message.source];
    const label: Label = spamProbability >= threshold ? 'spam' : 'ham';
    const { record, duplicate } = await this.store.insertScored(
      {
        source: message.source,
        account: message.account,
        externalId: message.externalId,
        sender: message.sender ?? null,
        subject: message.subject ?? null,
        text,
        receivedAt: message.receivedAt && !Number.isNaN(message.receivedAt.getTime()) ? message.receivedAt : null,
        knownLabel: message.knownLabel ?? null,
        meta: message.meta ?? null,
      },
      { modelVersion: version, spamProbability, label, threshold, scoredAt: new Date() },
    );
    if (!duplicate) this.emit('verdict', record);
    return { record, duplicate };
  }

  async correct(messageId: number, label: Label | null, origin: CorrectionOrigin): Promise<void> {
    await this.correctRecord(messageId, label, origin);
  }

  /** Stores a correction (null withdraws one) and broadcasts it; returns the updated record. */
  async correctRecord(messageId: number, label: Label | null, origin: CorrectionOrigin): Promise<MessageRecord> {
    const changed = await this.store.correct(messageId, label, origin);
    if (!changed) throw new UnknownMessageError(`there is no message ${messageId}`);
    const { before, after } = changed;
    const event: CorrectionEvent = {
      messageId, source: after.source, account: after.account, externalId: after.externalId, meta: after.meta,
      label: after.label, previous: before.label, origin,
    };
    this.emit('correction', { record: after, event });
    return after;
  }
}
