/**
 * The in-process scoring service the connectors and the API call: a message in, a stored verdict out. The model
 * gives a score (log-odds of spam); the verdict (ham, uncertain or spam) comes from the current model's calibrated
 * thresholds for the message's kind, or the user's fixed ones, and from the known-correspondent list
 * (daemon/verdicts.ts). The stored verdict keeps the score, the thresholds and the reason.
 *
 * Events: 'verdict' (MessageRecord), 'correction' ({ record: MessageRecord, event: CorrectionEvent }).
 */
import { EventEmitter } from 'node:events';
import { probability } from '../model/calibration.ts';
import { spamLogOdds } from '../model/examples.ts';
import type { DaemonConfig } from './config.ts';
import { correspondentKey } from './correspondents.ts';
import { modelText } from './message-text.ts';
import type { ModelHost } from './model-host.ts';
import type { MessageRecord, Store } from './store/index.ts';
import { kindOfSource, type CorrectionEvent, type CorrectionOrigin, type CorrespondentInput, type IncomingMessage, type Label, type ScoringService, type Verdict } from './contract.ts';
import { decide } from './verdicts.ts';

export class UnknownMessageError extends Error {}

function verdictOf(record: MessageRecord): Verdict {
  const v = record.verdict!;
  return {
    messageId: record.id,
    kind: record.kind,
    modelVersion: v.modelVersion,
    spamProbability: v.spamProbability,
    label: v.label,
    reason: v.reason,
    thresholds: { spam: v.thresholds.spam, ham: v.thresholds.ham },
    scoredAt: new Date(v.scoredAt),
  };
}

export class Scoring extends EventEmitter implements ScoringService {
  constructor(
    private readonly store: Store,
    private readonly host: ModelHost,
    private readonly verdicts: DaemonConfig['verdicts'],
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
    const known = await this.store.messages.find(message.source, message.account, message.externalId);
    if (known) return { record: known, duplicate: true };
    const kind = message.kind ?? kindOfSource(message.source);
    const text = modelText({ kind, sender: message.sender ?? null, subject: message.subject ?? null, body: message.body });
    const { logits, version, calibration } = await this.host.score(text);
    const logOdds = spamLogOdds(logits);
    const sender = correspondentKey(message.sender);
    const knownCorrespondent = this.verdicts.knownCorrespondents && sender !== null && (await this.store.correspondents.has(sender));
    const decision = decide(logOdds, kind, calibration, { fixed: this.verdicts.thresholds[kind], knownCorrespondent });
    const { record, duplicate } = await this.store.messages.insertScored(
      {
        source: message.source,
        kind,
        account: message.account,
        externalId: message.externalId,
        sender: message.sender ?? null,
        subject: message.subject ?? null,
        text,
        receivedAt: message.receivedAt && !Number.isNaN(message.receivedAt.getTime()) ? message.receivedAt : null,
        knownLabel: message.knownLabel ?? null,
        meta: message.meta ?? null,
      },
      { modelVersion: version, spamProbability: probability(logOdds), logOdds, ...decision, scoredAt: new Date() },
    );
    if (!duplicate) this.emit('verdict', record);
    return { record, duplicate };
  }

  async addCorrespondents(list: CorrespondentInput[]): Promise<number> {
    const entries = list.flatMap((c) => {
      const address = correspondentKey(c.address);
      return address === null ? [] : [{ address, display: c.display ?? c.address, origin: c.origin, account: c.account ?? null }];
    });
    return this.store.correspondents.add(entries);
  }

  async correct(messageId: number, label: Label | null, origin: CorrectionOrigin): Promise<void> {
    await this.correctRecord(messageId, label, origin);
  }

  /** Stores a correction (null withdraws one) and broadcasts it; returns the updated record. */
  async correctRecord(messageId: number, label: Label | null, origin: CorrectionOrigin): Promise<MessageRecord> {
    const changed = await this.store.messages.correct(messageId, label, origin);
    if (!changed) throw new UnknownMessageError(`there is no message ${messageId}`);
    return this.announceCorrection(changed, origin);
  }

  /** The same correction for several messages, all or nothing: one unknown id and none is corrected. */
  async correctRecords(messageIds: number[], label: Label | null, origin: CorrectionOrigin): Promise<MessageRecord[]> {
    const { changes, unknown } = await this.store.messages.correctMany(messageIds, label, origin);
    if (unknown.length > 0) throw new UnknownMessageError(`there is no message ${unknown.join(', ')}; nothing was changed`);
    return changes.map((c) => this.announceCorrection(c, origin));
  }

  private announceCorrection({ before, after }: { before: MessageRecord; after: MessageRecord }, origin: CorrectionOrigin): MessageRecord {
    const messageId = after.id;
    const event: CorrectionEvent = {
      messageId, source: after.source, account: after.account, externalId: after.externalId, meta: after.meta,
      label: after.label, previous: before.label, origin,
    };
    this.emit('correction', { record: after, event });
    return after;
  }
}
