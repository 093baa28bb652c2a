/**
 * Scores texts with a classifier, batching by length without making anyone wait: a text that arrives while the
 * scorer is idle is scored at once, alone; texts that arrive while a batch is running are gathered, sorted by
 * length and scored together in the next batches (so a backlog of thousands pads little and runs at batch speed).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Classifier } from './classifier.ts';
import { DirectFeatures, type FeatureProvider } from './features.ts';
import { encode } from './tokenizer.ts';
import { withFeatures } from './train.ts';

interface Pending {
  ids: number[];
  resolve: (logits: number[]) => void;
  reject: (err: Error) => void;
}

export interface ScorerOptions {
  /** Truncation length (the one the model was trained with). */
  maxTokens: number;
  batchSize?: number;
  /** Feature source; default: the full network with batch-local padding. */
  features?: FeatureProvider;
}

export class BatchScorer {
  private queue: Pending[] = [];
  private running = false;
  private readonly batchSize: number;
  private readonly features: FeatureProvider;

  constructor(
    readonly classifier: GPT2Classifier,
    readonly options: ScorerOptions,
  ) {
    this.batchSize = options.batchSize ?? 16;
    const fixed = classifier.options.pooling === 'last' ? options.maxTokens : undefined;
    this.features = options.features ?? new DirectFeatures(classifier, fixed);
  }

  /** Class logits of one text ([ham, spam] for the spam classifier): raw scores, which never saturate. */
  score(text: string): Promise<number[]> {
    const ids = encode(text, this.options.maxTokens);
    return new Promise((resolve, reject) => {
      this.queue.push({ ids, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => this.drain());
      }
    });
  }

  scoreMany(texts: string[]): Promise<number[][]> {
    return Promise.all(texts.map((t) => this.score(t)));
  }

  /** One batch per macrotask, so texts arriving meanwhile join the next batch and I/O keeps flowing. */
  private drain(): void {
    if (this.queue.length === 0) {
      this.running = false;
      return;
    }
    this.queue.sort((a, b) => a.ids.length - b.ids.length);
    const batch = this.queue.splice(0, this.batchSize);
    try {
      const logits = withFeatures(this.features, batch.map((p) => ({ ids: p.ids, label: 0 })), (f) =>
        tf.tidy(() => this.classifier.logitsFromFeatures(f).arraySync() as number[][]),
      );
      batch.forEach((p, i) => p.resolve(logits[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
    }
    setImmediate(() => this.drain());
  }
}
