/**
 * From a score to a verdict a person can trust: ham, uncertain or spam, with the thresholds used and the reason.
 *
 * Each model version carries a calibration per kind of message (e-mail, SMS, other), made by its training run on
 * held-out messages it never trained on (model/calibration.ts): a spam threshold certified for the target ham loss,
 * and below it an uncertain band. A kind the model has no training examples of is never called spam; a kind whose
 * held-out ham cannot certify the target gets no spam threshold. Thresholds fixed in the configuration win. Messages
 * from known correspondents are ham whatever the score (the score is still kept).
 */
import { z } from 'zod';
import { chooseOperatingPoint, logOdds, operatingPointOptionsSchema, operatingPointSchema, probability, type OperatingPointOptions } from '../model/calibration.ts';
import type { FixedThreshold } from './config.ts';
import { MESSAGE_KINDS, type Label, type MessageKind, type VerdictLabel } from './contract.ts';

const count = z.number().int().min(0);
const kindCalibrationSchema = operatingPointSchema.extend({
  /** Training examples of this kind the model learned from. */
  trained: z.object({ ham: count, spam: count }),
});
export type KindCalibration = z.infer<typeof kindCalibrationSchema>;

/** A model's thresholds and held-out error rates per kind of message (reported by its training run, kept with it). */
export const modelCalibrationSchema = z.object({
  options: operatingPointOptionsSchema,
  kinds: z.object({ email: kindCalibrationSchema, sms: kindCalibrationSchema, other: kindCalibrationSchema }),
});
export type ModelCalibration = z.infer<typeof modelCalibrationSchema>;

/** Why a message got its label. */
export type VerdictReason =
  | 'above-spam-threshold'
  | 'below-ham-threshold'
  | 'uncertain-band'
  | 'kind-not-trained'
  | 'not-calibrated'
  | 'known-correspondent';

export const REASON_TEXT: Record<VerdictReason, string> = {
  'above-spam-threshold': 'scored at or above the spam threshold',
  'below-ham-threshold': 'scored below the ham threshold',
  'uncertain-band': 'scored between the ham and the spam threshold',
  'kind-not-trained': 'the model has no training examples of this kind of message',
  'not-calibrated': 'too few held-out ham of this kind to certify a spam threshold',
  'known-correspondent': 'from an address the user has written to',
};

/** The thresholds a verdict was made with, as probabilities (null: none applied). */
export interface AppliedThresholds {
  spam: number | null;
  ham: number | null;
  origin: 'calibrated' | 'configured' | 'none';
}

export interface Decision {
  label: VerdictLabel;
  reason: VerdictReason;
  thresholds: AppliedThresholds;
}

/** A labelled held-out example with the model's log-odds of spam. */
export interface HeldOutScore {
  kind: MessageKind;
  label: Label;
  logOdds: number;
}

/** Calibrates every kind on the held-out scores of one model. */
export function calibrate(
  heldOut: HeldOutScore[],
  trained: Record<MessageKind, { ham: number; spam: number }>,
  options: OperatingPointOptions,
): ModelCalibration {
  const kinds = {} as Record<MessageKind, KindCalibration>;
  for (const kind of MESSAGE_KINDS) {
    const examples = heldOut.filter((e) => e.kind === kind).map((e) => ({ score: e.logOdds, spam: e.label === 'spam' }));
    kinds[kind] = { ...chooseOperatingPoint(examples, options), trained: trained[kind] };
  }
  return { options, kinds };
}

export function isTrainedOn(c: KindCalibration | undefined): boolean {
  return c !== undefined && c.trained.ham + c.trained.spam > 0;
}

/** The thresholds in force for a kind: the user's fixed ones, else the model's calibrated ones, else none. */
export function appliedThresholds(c: KindCalibration | undefined, fixed: FixedThreshold | undefined): AppliedThresholds {
  if (fixed) return { spam: fixed.spam, ham: fixed.ham, origin: 'configured' };
  if (!c || !isTrainedOn(c)) return { spam: null, ham: null, origin: 'none' };
  return { spam: c.spamThreshold === null ? null : probability(c.spamThreshold), ham: probability(c.hamThreshold), origin: 'calibrated' };
}

/**
 * The verdict for a message of `kind` whose log-odds of spam is `score`. Thresholds are compared in log-odds: a
 * probability rounds to 1 for confident scores, which would make them equal.
 */
export function decide(
  score: number,
  kind: MessageKind,
  calibration: ModelCalibration | null,
  opts: { fixed?: FixedThreshold | undefined; knownCorrespondent?: boolean },
): Decision {
  const c = calibration?.kinds[kind];
  const thresholds = appliedThresholds(c, opts.fixed);
  if (opts.knownCorrespondent) return { label: 'ham', reason: 'known-correspondent', thresholds };
  const [spam, ham] = opts.fixed ? [logOdds(opts.fixed.spam), logOdds(opts.fixed.ham)] : c && isTrainedOn(c) ? [c.spamThreshold, c.hamThreshold] : [undefined, undefined];
  if (ham === undefined) return { label: 'uncertain', reason: 'kind-not-trained', thresholds };
  if (score < ham) return { label: 'ham', reason: 'below-ham-threshold', thresholds };
  if (spam === null) return { label: 'uncertain', reason: 'not-calibrated', thresholds };
  if (score >= spam!) return { label: 'spam', reason: 'above-spam-threshold', thresholds };
  return { label: 'uncertain', reason: 'uncertain-band', thresholds };
}

export const KIND_NAMES: Record<MessageKind, string> = { email: 'e-mail', sms: 'text messages', other: 'other messages' };

/**
 * One plain sentence per kind, as a person would want it: "on 1,192 held-out e-mails it would have flagged 0 of 810
 * ham and caught 186 of 382 spam", or why it does not judge that kind.
 */
export function describeKind(kind: MessageKind, c: KindCalibration | undefined, targetHamLoss: number): string {
  const noun = { email: 'e-mails', sms: 'text messages', other: 'other messages' }[kind];
  if (!c || !isTrainedOn(c)) {
    const todo = {
      email: 'Enable the SpamAssassin corpus (training.spamAssassin) or label some e-mails',
      sms: 'Install the SMS Spam Collection ("gptspam data sms --from FILE", or training.smsCollectionFile) or label some texts',
      other: 'Label some of them, or send them to the API with their kind (email or sms)',
    }[kind];
    return `It has not learned ${noun}: they are never called spam, only uncertain. ${todo}, then retrain.`;
  }
  const n = (x: number) => x.toLocaleString('en');
  if (c.spamThreshold === null) {
    return `Its ${n(c.nHam)} held-out ham ${noun} are too few to show a ham loss of at most ${pct(targetHamLoss)}` +
      `: ${noun} are never called spam, only uncertain, until more are labelled (or a threshold is set in the configuration).`;
  }
  return `On ${n(c.nHam + c.nSpam)} held-out ${noun} it would have flagged ${n(c.hamFlagged)} of ${n(c.nHam)} ham and caught ${n(c.spamCaught)} of ${n(c.nSpam)} spam.`;
}

function pct(x: number): string {
  return `${Number((100 * x).toPrecision(2))}%`;
}
