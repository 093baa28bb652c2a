/**
 * Scores texts with a classifier, batching by length without making anyone wait: a text that arrives while the
 * scorer is idle is scored at once, alone; texts that arrive while a batch is running are gathered, sorted by
 * length and scored together in the next batches (so a backlog of thousands pads little and runs at batch speed).
 *
 * The classifier is either a tfjs GPT2Classifier or any other `LogitsSource` (model/native: ONNX Runtime).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT2Classifier, type Pooling } from './classifier.ts';
import { DirectFeatures, withFeatures, type FeatureProvider } from './features.ts';
import { encode } from './tokenizer.ts';

/** Something that turns a batch of token sequences into raw class logits. */
export interface LogitsSource {
  readonly pooling: Pooling;
  /** Logits [rows][classes]; `width` fixes the padding width (for `last` pooling), else each batch's longest. */
  batchLogits(seqs: number[][], width?: number): Promise<number[][]>;
}

/** The tfjs classifier as a LogitsSource: its frozen features (direct or from a provider), then the trained part. */
export class TfjsLogits implements LogitsSource {
  constructor(
    readonly classifier: GPT2Classifier,
    private readonly features?: FeatureProvider,
  ) {}

  get pooling(): Pooling {
    return this.classifier.options.pooling;
  }

  async batchLogits(seqs: number[][], width?: number): Promise<number[][]> {
    const provider = this.features ?? new DirectFeatures(this.classifier, width);
    return withFeatures(provider, seqs.map((ids) => ({ ids, label: 0 })), (f) =>
      tf.tidy(() => this.classifier.logitsFromFeatures(f).arraySync() as number[][]),
    );
  }
}

interface Pending {
  ids: number[];
  resolve: (logits: number[]) => void;
  reject: (err: Error) => void;
}

export interface ScorerOptions {
  /** Truncation length (the one the model was trained with). */
  maxTokens: number;
  batchSize?: number;
  /** tfjs only: feature source; default: the full network with batch-local padding. */
  features?: FeatureProvider;
}

export class BatchScorer {
  private queue: Pending[] = [];
  private running = false;
  private readonly batchSize: number;
  private readonly source: LogitsSource;
  /** `last` pooling reads the final padded position, so it pads to the training width; others pad per batch. */
  private readonly width: number | undefined;

  constructor(
    classifier: GPT2Classifier | LogitsSource,
    readonly options: ScorerOptions,
  ) {
    this.batchSize = options.batchSize ?? 16;
    this.source = classifier instanceof GPT2Classifier ? new TfjsLogits(classifier, options.features) : classifier;
    this.width = this.source.pooling === 'last' ? options.maxTokens : undefined;
  }

  /** Raw class logits of one text ([ham, spam] for the spam classifier). */
  score(text: string): Promise<number[]> {
    const ids = encode(text, this.options.maxTokens);
    return new Promise((resolve, reject) => {
      this.queue.push({ ids, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  scoreMany(texts: string[]): Promise<number[][]> {
    return Promise.all(texts.map((t) => this.score(t)));
  }

  /** One batch per macrotask, so texts arriving meanwhile join the next batch and I/O keeps flowing. */
  private async drain(): Promise<void> {
    if (this.queue.length === 0) {
      this.running = false;
      return;
    }
    this.queue.sort((a, b) => a.ids.length - b.ids.length);
    const batch = this.queue.splice(0, this.batchSize);
    try {
      const logits = await this.source.batchLogits(batch.map((p) => p.ids), this.width);
      batch.forEach((p, i) => p.resolve(logits[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
    }
    setImmediate(() => void this.drain());
  }
}
