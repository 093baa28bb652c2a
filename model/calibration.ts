/**
 * Operating points and error rates of a binary spam classifier, measured the way spam filters are measured
 * (TREC spam track, SpamAssassin): ham loss (hm%: share of ham flagged as spam), spam missed (sm%), and the area
 * above the ROC curve (1-ROCA%). Scores are the classifier's log-odds of spam (spam logit − ham logit): unlike a
 * probability they never saturate at 1, so scores of very confident messages stay ordered.
 *
 * The spam threshold is chosen so that a held-out set the model never trained on shows a ham loss at or under a
 * target, judged by an exact (Clopper–Pearson) upper confidence bound: with n held-out ham and k of them flagged,
 * the threshold is accepted only if the true ham loss is ≤ target with the given confidence. A small held-out set
 * therefore cannot claim more than it shows: with no errors at all, 0.5% at 95% needs at least 598 ham.
 */
import { z } from 'zod';
import { jsonNumber } from './schema.ts';

export interface ScoredExample {
  /** Log-odds of spam. */
  score: number;
  spam: boolean;
}

// The types below are derived from schemas because a model's calibration travels as JSON: from the training process
// that makes it to the daemon, and into checkpoints. JSON writes NaN and ±Infinity as null (`jsonNumber`).

export const operatingPointOptionsSchema = z.object({
  /** Highest acceptable ham loss (share of ham flagged as spam), e.g. 0.005. */
  targetHamLoss: z.number().min(0).max(1),
  /** Confidence of the upper bound on the ham loss, e.g. 0.95. */
  confidence: z.number().min(0).max(1),
  /**
   * Size of the uncertain band below the spam threshold: the ham threshold is set where about this share of
   * held-out ham scores at or above it (the band then holds that share of ham, minus what is flagged as spam).
   */
  reviewHamShare: z.number().min(0).max(1),
});
export type OperatingPointOptions = z.infer<typeof operatingPointOptionsSchema>;

export const rocPointSchema = z.object({
  /** Share of ham at or above the threshold (false-positive rate). */
  hamLoss: jsonNumber,
  /** Share of spam at or above the threshold (true-positive rate). */
  spamCaught: jsonNumber,
});
export type RocPoint = z.infer<typeof rocPointSchema>;

const count = z.number().int().min(0);

/** What a pair of thresholds does on labelled examples (spam at or above the spam threshold, ham below the ham one). */
export const errorRatesSchema = z.object({
  nHam: count,
  nSpam: count,
  /** Ham at or above the spam threshold, and spam at or above it. */
  hamFlagged: count,
  spamCaught: count,
  /** Ham and spam between the thresholds: uncertain, left for a person. */
  hamUncertain: count,
  spamUncertain: count,
  /** hamFlagged / nHam (hm%) and (nSpam − spamCaught) / nSpam (sm%); NaN without ham or spam. */
  hamLoss: jsonNumber,
  spamMissed: jsonNumber,
  /** 100 · (1 − area under the ROC curve); NaN without ham or spam. */
  oneMinusRocaPercent: jsonNumber,
});
export type ErrorRates = z.infer<typeof errorRatesSchema>;

export const operatingPointSchema = errorRatesSchema.extend({
  /** Log-odds at or above which a message is spam; null when the held-out ham cannot certify the target. */
  spamThreshold: z.number().nullable(),
  /** Log-odds below which a message is ham; between the two it is uncertain (−Infinity: nothing is ham). */
  hamThreshold: jsonNumber,
  /** Upper confidence bound of the ham loss at the spam threshold (1 when there is no threshold). */
  hamLossBound: jsonNumber,
  /** The most held-out ham that may be flagged while the bound stays within the target (−1: none). */
  allowedHamFlagged: z.number().int().min(-1),
  /** The ROC curve from the strictest to the loosest threshold, at most ~200 points. */
  roc: z.array(rocPointSchema),
});
export type OperatingPoint = z.infer<typeof operatingPointSchema>;

/** P(X ≤ k) for X ~ Binomial(n, p), summed in log space (log C(n, i) built up term by term). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  let logChoose = 0; // log C(n, 0)
  let max = -Infinity;
  const terms: number[] = [];
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log((n - i + 1) / i);
    const t = logChoose + i * logP + (n - i) * logQ;
    terms.push(t);
    if (t > max) max = t;
  }
  let sum = 0;
  for (const t of terms) sum += Math.exp(t - max);
  return Math.min(1, Math.exp(max + Math.log(sum)));
}

/**
 * One-sided Clopper–Pearson upper bound of a proportion: the p at which seeing at most `k` events in `n` trials
 * has probability 1 − confidence. With k = 0 it is 1 − (1 − confidence)^(1/n).
 */
export function upperConfidenceBound(k: number, n: number, confidence: number): number {
  if (!(n > 0)) return 1;
  if (k >= n) return 1;
  const alpha = 1 - confidence;
  if (k === 0) return 1 - Math.pow(alpha, 1 / n);
  // The CDF falls as p grows: bisect for CDF(k; n, p) = alpha.
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The most errors out of n whose upper bound stays within target (−1 when even none is enough). */
export function allowedErrors(n: number, target: number, confidence: number): number {
  if (upperConfidenceBound(0, n, confidence) > target) return -1;
  let k = 0;
  while (k + 1 < n && upperConfidenceBound(k + 1, n, confidence) <= target) k++;
  return k;
}

/** Area under the ROC curve: P(spam score > ham score) + ½ P(equal), by one sort (the Mann–Whitney U). */
function rocArea(examples: ScoredExample[], nHam: number, nSpam: number): number {
  if (nHam === 0 || nSpam === 0) return NaN;
  const sorted = [...examples].sort((a, b) => a.score - b.score);
  let hamBelow = 0;
  let pairs = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    let ham = 0;
    let spam = 0;
    while (j < sorted.length && sorted[j]!.score === sorted[i]!.score) {
      if (sorted[j]!.spam) spam++;
      else ham++;
      j++;
    }
    pairs += spam * hamBelow + 0.5 * spam * ham;
    hamBelow += ham;
    i = j;
  }
  return pairs / (nHam * nSpam);
}

/** ROC points at every distinct score, strictest first, thinned to about `maxPoints` (ends kept). */
export function rocCurve(examples: ScoredExample[], maxPoints = 200): RocPoint[] {
  const nHam = examples.filter((e) => !e.spam).length;
  const nSpam = examples.length - nHam;
  const sorted = [...examples].sort((a, b) => b.score - a.score);
  const points: RocPoint[] = [{ hamLoss: 0, spamCaught: 0 }];
  let ham = 0;
  let spam = 0;
  for (let i = 0; i < sorted.length; ) {
    const s = sorted[i]!.score;
    while (i < sorted.length && sorted[i]!.score === s) {
      if (sorted[i]!.spam) spam++;
      else ham++;
      i++;
    }
    points.push({ hamLoss: nHam ? ham / nHam : 0, spamCaught: nSpam ? spam / nSpam : 0 });
  }
  if (points.length <= maxPoints) return points;
  // Thinned evenly by index: each kept point is still a real (ham loss, spam caught) pair of the curve.
  const step = (points.length - 1) / (maxPoints - 1);
  const kept: RocPoint[] = [];
  for (let i = 0; i < maxPoints; i++) kept.push(points[Math.round(i * step)]!);
  return kept;
}

/**
 * Chooses the operating point on held-out examples: the lowest spam threshold whose held-out ham loss has an upper
 * confidence bound within the target, and below it an uncertain band holding about `reviewHamShare` of the ham.
 * Any threshold between the highest ham score that must stay below it and the next held-out score gives the same
 * held-out figures; the midpoint is taken, leaving equal room on both sides.
 */
export function chooseOperatingPoint(examples: ScoredExample[], opts: OperatingPointOptions): OperatingPoint {
  if (examples.some((e) => Number.isNaN(e.score))) throw new Error('a held-out score is NaN');
  const hamScores = examples.filter((e) => !e.spam).map((e) => e.score).sort((a, b) => b - a);
  const nHam = hamScores.length;
  const allowed = allowedErrors(nHam, opts.targetHamLoss, opts.confidence);

  let spamThreshold: number | null = null;
  if (allowed >= 0) {
    // allowedErrors() < nHam always: the (allowed+1)-th highest ham score must stay below the threshold.
    const mustExceed = hamScores[allowed]!;
    let next = Infinity;
    for (const e of examples) if (e.score > mustExceed && e.score < next) next = e.score;
    spamThreshold = Number.isFinite(next) ? (mustExceed + next) / 2 : mustExceed + Math.max(1e-6, Math.abs(mustExceed) * 1e-9);
    if (!(spamThreshold > mustExceed)) spamThreshold = nextUp(mustExceed);
  }

  // The ham threshold: about reviewHamShare of held-out ham at or above it; never above the spam threshold.
  let hamThreshold = 0;
  if (nHam > 0) {
    const k = Math.floor(opts.reviewHamShare * nHam); // ham allowed at or above it
    hamThreshold = k >= nHam ? -Infinity : nextUp(hamScores[k]!);
  }
  if (spamThreshold !== null && hamThreshold > spamThreshold) hamThreshold = spamThreshold;

  const rates = errorRates(examples, spamThreshold, hamThreshold);
  return {
    ...rates,
    spamThreshold,
    hamThreshold,
    hamLossBound: spamThreshold === null ? 1 : upperConfidenceBound(rates.hamFlagged, nHam, opts.confidence),
    allowedHamFlagged: allowed,
    roc: rocCurve(examples),
  };
}

/** Counts and rates of given thresholds (log-odds; a null spam threshold flags nothing) on labelled examples. */
export function errorRates(examples: ScoredExample[], spamThreshold: number | null, hamThreshold: number): ErrorRates {
  const r = { nHam: 0, nSpam: 0, hamFlagged: 0, spamCaught: 0, hamUncertain: 0, spamUncertain: 0 };
  for (const e of examples) {
    const verdict = spamThreshold !== null && e.score >= spamThreshold ? 'spam' : e.score < hamThreshold ? 'ham' : 'uncertain';
    if (e.spam) {
      r.nSpam++;
      if (verdict === 'spam') r.spamCaught++;
      else if (verdict === 'uncertain') r.spamUncertain++;
    } else {
      r.nHam++;
      if (verdict === 'spam') r.hamFlagged++;
      else if (verdict === 'uncertain') r.hamUncertain++;
    }
  }
  return {
    ...r,
    hamLoss: r.nHam ? r.hamFlagged / r.nHam : NaN,
    spamMissed: r.nSpam ? (r.nSpam - r.spamCaught) / r.nSpam : NaN,
    oneMinusRocaPercent: 100 * (1 - rocArea(examples, r.nHam, r.nSpam)),
  };
}

/** The smallest double above x. */
function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigUint64(0);
  buf.setBigUint64(0, x > 0 ? bits + 1n : bits - 1n);
  return buf.getFloat64(0);
}

/** Log-odds of a probability (±Infinity at 0 and 1). */
export function logOdds(p: number): number {
  return Math.log(p) - Math.log1p(-p);
}

/** Probability of log-odds, in float64. */
export function probability(logOddsValue: number): number {
  return 1 / (1 + Math.exp(-logOddsValue));
}
