/**
 * Where a batch's frozen features come from.
 *
 * - `DirectFeatures` runs the frozen part of the network for every batch (the chapter's way).
 * - `CachedFeatures` runs it once per distinct message and keeps the result in a `TrunkCache`: every later
 *   epoch, evaluation and re-fine-tuning reads the cache and only runs the trainable part.
 *
 * Both give identical numbers: the frozen part of a message does not depend on the other messages of its batch,
 * and padding positions are either masked or (for `last` pooling) stored with the message. `defaultFeatures`
 * picks one for a classifier; training, evaluation and scoring all read features through `withFeatures`.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { disposeFeatures, toTokenBatch, type FrozenFeatures, type GPT2Classifier } from './classifier.ts';
import type { EncodedExample } from './examples.ts';
import { padBatch } from './tokenizer.ts';
import { TrunkCache, type CachedEntry } from './trunk-cache.ts';

export interface FeatureProvider {
  /** Frozen features of a batch; the caller disposes them with `disposeFeatures` (or use `withFeatures`). */
  features(examples: EncodedExample[]): FrozenFeatures;
}

/** Runs `fn` on a batch's frozen features, then frees them. */
export function withFeatures<T>(provider: FeatureProvider, examples: EncodedExample[], fn: (features: FrozenFeatures) => T): T {
  const features = provider.features(examples);
  try {
    return fn(features);
  } finally {
    disposeFeatures(features);
    if (features.kind === 'tokens') features.batch.ids.dispose();
  }
}

/**
 * The default feature source: with a frozen trunk, a trunk cache (each message's frozen part computed once);
 * otherwise the full network every batch. Only `last` pooling reads a padding position, so only it needs the
 * chapter's fixed width; every other pooling pads each batch to its own longest message, which is exact.
 */
export function defaultFeatures(clf: GPT2Classifier, width: number, cache?: TrunkCache): FeatureProvider {
  const fixed = clf.options.pooling === 'last' ? width : undefined;
  const frozenTrunk = clf.options.layers === 'last_block' || clf.options.layers === 'last_layer';
  return frozenTrunk ? new CachedFeatures(clf, cache ?? new TrunkCache(), fixed) : new DirectFeatures(clf, fixed);
}

/** Runs the frozen part for each batch, padded to `width` (or to the batch's own longest when undefined). */
export class DirectFeatures implements FeatureProvider {
  constructor(
    private readonly clf: GPT2Classifier,
    private readonly width?: number,
  ) {}

  features(examples: EncodedExample[]): FrozenFeatures {
    const padded = padBatch(examples.map((e) => e.ids), this.width);
    const batch = toTokenBatch(padded.ids, padded.rows, padded.width, padded.lengths);
    const f = this.clf.frozenFeatures(batch);
    // 'tokens' features keep the id tensor; the others no longer need it.
    if (f.kind !== 'tokens') batch.ids.dispose();
    return f;
  }
}

/**
 * Computes cache entries outside tfjs (model/native: ONNX Runtime), exactly what `CachedFeatures` would store:
 * the block input at the message's real positions (or the whole fixed `width` for `last` pooling) for
 * `last_block`, the pooled final hidden state for `last_layer`.
 */
export interface TrunkFiller {
  trunkEntries(examples: EncodedExample[], width?: number): Promise<CachedEntry[]>;
}

/**
 * Serves frozen features from a TrunkCache, computing (in length-sorted batches) only what is missing.
 * `width` is the fixed padding width for `last` pooling, which reads a padding position; other poolings never
 * see padding and use each batch's own longest message.
 */
export class CachedFeatures implements FeatureProvider {
  readonly namespace: string;

  constructor(
    private readonly clf: GPT2Classifier,
    private readonly cache: TrunkCache,
    private readonly width?: number,
    private readonly trunkBatchSize = 16,
  ) {
    if (clf.options.layers !== 'last_block' && clf.options.layers !== 'last_layer') {
      throw new Error(`the trunk cache needs a frozen trunk (--layers last_block or last_layer), not ${clf.options.layers}`);
    }
    if (clf.options.pooling === 'last' && width === undefined) throw new Error('last pooling needs a fixed padding width');
    const o = clf.options;
    // Everything that changes the frozen activations is part of the key: base weights, trained part, pooling, attention, width.
    this.namespace = [clf.base.hash, clf.config.nLayer, o.layers, o.attention, o.pooling === 'last' ? `last@${width}` : 'real'].join('|');
  }

  private key(e: EncodedExample): string {
    const h = createHash('sha256').update(this.namespace).update(new Uint8Array(Int32Array.from(e.ids).buffer));
    return h.digest('hex');
  }

  /** Examples not in the cache yet (each distinct message once), sorted by length so each trunk batch pads little. */
  private missing(examples: EncodedExample[]): Array<[string, EncodedExample]> {
    const missing = new Map<string, EncodedExample>();
    for (const e of examples) {
      const k = this.key(e);
      if (!this.cache.has(k)) missing.set(k, e);
    }
    return [...missing].sort((a, b) => a[1].ids.length - b[1].ids.length);
  }

  /** How many distinct examples are not in the cache yet. */
  pending(examples: EncodedExample[]): number {
    return this.missing(examples).length;
  }

  /**
   * Like `warm`, with the trunk computed by `filler` (e.g. natively, several times faster): the entries are the
   * same numbers under the same keys, so training and evaluation read them as if tfjs had computed them.
   */
  async warmWith(filler: TrunkFiller, examples: EncodedExample[]): Promise<number> {
    const todo = this.missing(examples);
    for (let i = 0; i < todo.length; i += this.trunkBatchSize) {
      const chunk = todo.slice(i, i + this.trunkBatchSize);
      const entries = await filler.trunkEntries(chunk.map(([, e]) => e), this.width);
      chunk.forEach(([k], r) => this.cache.set(k, entries[r]!));
    }
    return todo.length;
  }

  /** Computes and stores the features of every example not yet in the cache. Returns how many were computed. */
  warm(examples: EncodedExample[]): number {
    const todo = this.missing(examples);
    for (let i = 0; i < todo.length; i += this.trunkBatchSize) {
      const chunk = todo.slice(i, i + this.trunkBatchSize);
      const direct = new DirectFeatures(this.clf, this.width);
      const f = direct.features(chunk.map(([, e]) => e));
      try {
        chunk.forEach(([k, e], r) => this.cache.set(k, this.extract(f, r, e)));
      } finally {
        disposeFeatures(f);
      }
    }
    return todo.length;
  }

  private extract(f: FrozenFeatures, row: number, e: EncodedExample): CachedEntry {
    if (f.kind === 'pooled-hidden') {
      const dim = f.h.shape[1];
      return { rows: 1, data: f.h.dataSync().slice(row * dim, (row + 1) * dim) as Float32Array };
    }
    if (f.kind !== 'block-input') throw new Error('unexpected feature kind');
    const [, width, dim] = f.x.shape;
    // Keep only what the pooled position can read: its real tokens (or the fixed width for `last` pooling).
    const rows = this.clf.options.pooling === 'last' ? width : Math.max(1, Math.min(e.ids.length, width));
    const all = f.x.dataSync();
    return { rows, data: all.slice(row * width * dim, (row * width + rows) * dim) as Float32Array };
  }

  features(examples: EncodedExample[]): FrozenFeatures {
    this.warm(examples);
    const entries = examples.map((e) => this.cache.get(this.key(e))!);
    const dim = this.clf.config.nEmbd;
    if (this.clf.options.layers === 'last_layer') {
      const data = new Float32Array(examples.length * dim);
      entries.forEach((en, r) => data.set(en.data, r * dim));
      return { kind: 'pooled-hidden', h: tf.tensor2d(data, [examples.length, dim]) };
    }
    const width = Math.max(...entries.map((en) => en.rows));
    const data = new Float32Array(examples.length * width * dim);
    entries.forEach((en, r) => data.set(en.data, r * width * dim));
    const lengths = examples.map((e, r) => Math.min(Math.max(1, e.ids.length), entries[r]!.rows));
    const positions = this.clf.poolPositions(lengths, width);
    return { kind: 'block-input', x: tf.tensor3d(data, [examples.length, width, dim]), positions, lengths };
  }
}
