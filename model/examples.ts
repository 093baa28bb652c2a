/**
 * What a classifier learns from: labelled texts, their token-id form, and how they are shuffled and batched. The
 * spam classifier's two classes are named here once, in class-id order (ham = 0, spam = 1); everything that turns
 * a label into a class id, or a pair of logits into a score, goes through these names.
 */
import { encode } from './tokenizer.ts';

/** The spam classifier's classes in class-id order: `LABEL_NAMES[id]` is the name of class `id`. */
export const LABEL_NAMES = ['ham', 'spam'] as const;
export type LabelName = (typeof LABEL_NAMES)[number];

/** The class id of a label name (ham 0, spam 1). */
export function labelId(name: LabelName): number {
  return LABEL_NAMES.indexOf(name);
}

/**
 * The class id of `label` in a model whose classes have these names (a checkpoint's `labelNames`); for a model that
 * does not name it, the spam classifier's id.
 */
export function classIdIn(names: readonly string[], label: LabelName): number {
  return names.includes(label) ? names.indexOf(label) : labelId(label);
}

/** The log-odds of spam from a pair of class logits (spam logit − ham logit): the score thresholds are set on. */
export function spamLogOdds(logits: readonly number[]): number {
  return logits[labelId('spam')]! - logits[labelId('ham')]!;
}

/**
 * A text with its label: a class id for training (`LabelledText`), or a label name where people and corpora give
 * one (`LabelledText<LabelName>`). Multi-class data sets use ids 0..n-1.
 */
export interface LabelledText<L = number> {
  text: string;
  label: L;
}

/** A text as the model reads it: token ids (truncated), with its class id. */
export interface EncodedExample {
  ids: number[];
  label: number;
}

/** Encodes texts once, truncated to `maxTokens`. */
export function encodeExamples(data: readonly LabelledText[], maxTokens: number): EncodedExample[] {
  return data.map((d) => ({ ids: encode(d.text, maxTokens), label: d.label }));
}

/** Fisher–Yates shuffle of a copy, driven by `rng` (a seeded generator, so the order is reproducible). */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Splits into batches of `size`; `dropLast` drops a final partial batch (training, as the chapter). */
export function batches<T>(items: readonly T[], size: number, dropLast: boolean): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    const b = items.slice(i, i + size);
    if (b.length < size && dropLast) break;
    out.push(b);
  }
  return out;
}
