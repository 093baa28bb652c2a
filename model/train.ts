/**
 * Fine-tuning loop of the chapter (`train_classifier_simple`): AdamW, shuffled batches with the last partial
 * batch dropped, periodic loss evaluation on train and validation, accuracy after every epoch, and the weights
 * of the best epoch (by validation accuracy) kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { z } from 'zod';
import { AdamW, type AdamWOptions } from './adamw.ts';
import { crossEntropy, type GPT2Classifier } from './classifier.ts';
import { batches, shuffled, type EncodedExample } from './examples.ts';
import { defaultFeatures, withFeatures, type FeatureProvider } from './features.ts';
import { jsonNumber } from './schema.ts';
import { trainStep } from './step.ts';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Truncation length in tokens; default: the longest training example (capped by the model's context). */
  maxTokens?: number;
  seed: number;
  /** Evaluate train/validation loss every this many steps (the chapter: 50), on `evalBatches` batches (5). */
  evalEvery: number;
  evalBatches: number;
  optimizer: Partial<AdamWOptions>;
  onProgress?: (p: TrainProgress) => void;
  /** After each epoch's evaluation, for live training curves. */
  onEpoch?: (p: EpochPoint) => void;
  /** Where frozen features come from (default: `defaultFeatures`, i.e. a trunk cache when the trunk is frozen). */
  features?: FeatureProvider;
  /** Stops after the current step when aborted; the best weights so far are kept. */
  signal?: AbortSignal;
  /**
   * Evaluate (and keep) an exponential moving average of the weights instead of the last step's, with this decay
   * per step (0: off). Averaging smooths out the noise of the last steps, so two runs that differ only in float
   * rounding end up with nearly the same model.
   */
  averageDecay?: number;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  epochs: 5,
  batchSize: 8,
  seed: 123,
  evalEvery: 50,
  evalBatches: 5,
  optimizer: {},
};

export interface TrainProgress {
  epoch: number;
  step: number;
  totalSteps: number;
  examplesSeen: number;
  loss: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface EvalPoint {
  step: number;
  epoch: number;
  examplesSeen: number;
  trainLoss: number;
  valLoss: number;
}

/**
 * An epoch's point of the training history: losses and accuracies after it, on the training set (its first
 * `evalBatches` batches) and the whole validation set. A schema, because the point travels as JSON (from a training
 * process to the daemon, into checkpoints): a loss or accuracy of an empty set is NaN, which JSON carries as null.
 */
export const epochPointSchema = z.object({
  epoch: z.number().int().min(1),
  examplesSeen: z.number().int().min(0),
  trainLoss: jsonNumber,
  valLoss: jsonNumber,
  trainAcc: jsonNumber,
  valAcc: jsonNumber,
});
export type EpochPoint = z.infer<typeof epochPointSchema>;

export interface TrainResult {
  evals: EvalPoint[];
  epochs: EpochPoint[];
  bestEpoch: number;
  bestValAcc: number;
  maxTokens: number;
  steps: number;
  seconds: number;
  stopped: boolean;
}

/** The chapter's padding width: the longest training example (capped by truncation and the model's context). */
export function padWidthFor(clf: GPT2Classifier, examples: EncodedExample[], maxTokens: number): number {
  return Math.min(maxTokens, clf.config.nPositions, Math.max(1, ...examples.map((e) => e.ids.length)));
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  predictions: number[];
  /** Softmax probabilities per example, [n][classes]. */
  probabilities: number[][];
  /** Raw class logits per example, [n][classes]: scores that never saturate (calibration reads these). */
  logits: number[][];
}

/** Loss, accuracy and predictions over examples (or over their first `maxBatches` batches). */
export function evaluate(
  clf: GPT2Classifier,
  examples: EncodedExample[],
  opts: { batchSize: number; features: FeatureProvider; maxBatches?: number },
): EvalResult {
  let lossSum = 0;
  let correct = 0;
  let n = 0;
  const predictions: number[] = [];
  const probabilities: number[][] = [];
  const logits: number[][] = [];
  const list = batches(examples, opts.batchSize, false).slice(0, opts.maxBatches ?? Infinity);
  for (const b of list) {
    const labels = b.map((e) => e.label);
    const [loss, probs, raw] = withFeatures(opts.features, b, (features) =>
      tf.tidy(() => {
        const out = clf.logitsFromFeatures(features);
        return [crossEntropy(out, labels).dataSync()[0]!, tf.softmax(out).arraySync() as number[][], out.arraySync() as number[][]] as const;
      }),
    );
    lossSum += loss * b.length;
    probs.forEach((p, i) => {
      const pred = p.indexOf(Math.max(...p));
      predictions.push(pred);
      probabilities.push(p);
      logits.push(raw[i]!);
      if (pred === labels[i]) correct++;
    });
    n += b.length;
  }
  return { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN, predictions, probabilities, logits };
}

/**
 * An exponential moving average of trained weights. Its decay grows with the steps, (1 + t) / (10 + t) capped at
 * `decay`, so the average is not dominated by the initial weights early on.
 */
class WeightAverage {
  private readonly shadow = new Map<string, tf.Variable>();
  private steps = 0;

  constructor(
    private readonly vars: Map<string, tf.Variable>,
    private readonly decay: number,
  ) {
    for (const [name, v] of vars) this.shadow.set(name, tf.variable(tf.clone(v), false));
  }

  update(): void {
    this.steps++;
    const d = Math.min(this.decay, (1 + this.steps) / (10 + this.steps));
    tf.tidy(() => {
      for (const [name, v] of this.vars) {
        const s = this.shadow.get(name)!;
        s.assign(tf.add(tf.mul(s, d), tf.mul(v, 1 - d)));
      }
    });
  }

  /** Runs `fn` with the averaged weights in the variables, then puts the trained ones back. */
  whileApplied<T>(fn: () => T): T {
    const trained = new Map([...this.vars].map(([n, v]) => [n, tf.clone(v)]));
    for (const [name, v] of this.vars) v.assign(this.shadow.get(name)!);
    try {
      return fn();
    } finally {
      for (const [name, t] of trained) {
        this.vars.get(name)!.assign(t);
        t.dispose();
      }
    }
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
  }
}

const noAverage = { whileApplied: <T>(fn: () => T): T => fn() };

/** Fine-tunes the classifier in place; on return it holds the weights of the best epoch. */
export function trainClassifier(
  clf: GPT2Classifier,
  train: EncodedExample[],
  validation: EncodedExample[],
  options: Partial<TrainOptions> = {},
): TrainResult {
  const opts = { ...DEFAULT_TRAIN_OPTIONS, ...options };
  if (train.length < opts.batchSize) {
    throw new Error(`training needs at least one full batch: ${train.length} examples < batch size ${opts.batchSize}`);
  }
  for (const e of [...train, ...validation]) {
    if (!Number.isInteger(e.label) || e.label < 0 || e.label >= clf.options.numClasses) {
      throw new Error(`label ${e.label} is outside 0..${clf.options.numClasses - 1}`);
    }
  }
  const maxTokens = opts.maxTokens ?? clf.config.nPositions;
  const width = padWidthFor(clf, train, maxTokens);
  const vars = clf.trainableVariables();
  const optimizer = new AdamW(vars, opts.optimizer);
  const rng = seedrandom(String(opts.seed));
  const stepsPerEpoch = Math.floor(train.length / opts.batchSize);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const start = performance.now();
  const evals: EvalPoint[] = [];
  const epochs: EpochPoint[] = [];
  let best = { epoch: 0, acc: -1, state: new Map<string, tf.Tensor>() };
  let step = 0;
  let examplesSeen = 0;
  let stopped = false;
  const features = opts.features ?? defaultFeatures(clf, width);
  const evalOpts = { batchSize: opts.batchSize, features, maxBatches: opts.evalBatches };
  const average = opts.averageDecay ? new WeightAverage(vars, opts.averageDecay) : undefined;

  for (let epoch = 1; epoch <= opts.epochs && !stopped; epoch++) {
    let lastLoss = NaN;
    for (const b of batches(shuffled(train, rng), opts.batchSize, true)) {
      if (opts.signal?.aborted) {
        stopped = true;
        break;
      }
      const labels = b.map((e) => e.label);
      lastLoss = withFeatures(features, b, (f) => trainStep(clf, optimizer, f, labels));
      average?.update();
      step++;
      examplesSeen += b.length;
      if (step % opts.evalEvery === 0) {
        evals.push({
          step,
          epoch,
          examplesSeen,
          trainLoss: evaluate(clf, train, evalOpts).loss,
          valLoss: evaluate(clf, validation, evalOpts).loss,
        });
      }
      const elapsed = (performance.now() - start) / 1000;
      opts.onProgress?.({
        epoch, step, totalSteps, examplesSeen, loss: lastLoss,
        elapsedSeconds: elapsed,
        etaSeconds: (elapsed / step) * (totalSteps - step),
      });
    }
    if (stopped && epoch === 1 && step === 0) break;
    // With averaging, the averaged weights are what is judged and kept; training goes on from the last step's.
    const [trainEval, valEval, state] = (average ?? noAverage).whileApplied(() => [
      evaluate(clf, train, evalOpts),
      evaluate(clf, validation, { batchSize: opts.batchSize, features }),
      new Map([...vars].map(([n, v]) => [n, tf.clone(v)])),
    ] as const);
    const point = { epoch, examplesSeen, trainLoss: trainEval.loss, valLoss: valEval.loss, trainAcc: trainEval.accuracy, valAcc: valEval.accuracy };
    epochs.push(point);
    opts.onEpoch?.(point);
    if (valEval.accuracy > best.acc || validation.length === 0) {
      for (const t of best.state.values()) t.dispose();
      best = { epoch, acc: valEval.accuracy, state };
    } else {
      for (const t of state.values()) t.dispose();
    }
  }
  average?.dispose();
  // Restore the best epoch's weights.
  for (const [name, t] of best.state) {
    vars.get(name)!.assign(t);
    t.dispose();
  }
  optimizer.dispose();
  return {
    evals, epochs,
    bestEpoch: best.epoch,
    bestValAcc: best.acc,
    maxTokens: width,
    steps: step,
    seconds: (performance.now() - start) / 1000,
    stopped,
  };
}
