/**
 * Holds the classifier that scores messages and swaps it for another version without dropping a request: the
 * new version is loaded completely beside the old one, then one assignment switches new requests over, and
 * the old one is freed once the requests it already accepted have finished.
 *
 * With native inference (model/backend.ts initInference) a version scores on ONNX Runtime straight from its
 * files and no tfjs copy of its weights is made; one is loaded only if something asks for the tfjs classifier
 * (`withClassifier`, e.g. for gradients).
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeRuntime } from '../model/backend.ts';
import { loadCheckpoint, type CheckpointInfo } from '../model/checkpoint.ts';
import type { GPT2Classifier } from '../model/classifier.ts';
import { NativeClassifier } from '../model/native/classifier.ts';
import { checkpointWeights } from '../model/native/weights.ts';
import { BatchScorer } from '../model/scorer.ts';
import type { ModelCalibration } from './verdicts.ts';

interface Loaded {
  version: number;
  /** Its thresholds per kind of message (null for a model from before calibration: nothing is called spam). */
  calibration: ModelCalibration | null;
  dir: string;
  info: CheckpointInfo;
  scorer: BatchScorer;
  native?: NativeClassifier;
  /** The tfjs classifier: always on the tfjs path, on demand on the native one. */
  classifier?: Promise<GPT2Classifier>;
  inFlight: number;
  retired: boolean;
}

export class ModelHost {
  private current: Loaded | undefined;
  private readyWaiters: Array<() => void> = [];

  /** `log` gets a line when a version cannot run natively and falls back to tfjs. */
  constructor(private readonly log: (line: string) => void = () => {}) {}

  get version(): number | null {
    return this.current?.version ?? null;
  }

  get ready(): boolean {
    return this.current !== undefined;
  }

  /** Resolves once a model is loaded (immediately if one is). */
  whenReady(): Promise<void> {
    if (this.current) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Loads version `version` from its checkpoint folder and makes it the one that scores. */
  async load(version: number, dir: string, calibration: ModelCalibration | null): Promise<void> {
    const next = (await this.loadNative(version, dir, calibration)) ?? (await this.loadTfjs(version, dir, calibration));
    const previous = this.current;
    this.current = next;
    if (previous) this.retire(previous);
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  private async loadNative(version: number, dir: string, calibration: ModelCalibration | null): Promise<Loaded | undefined> {
    const rt = nativeRuntime();
    if (!rt) return undefined;
    try {
      const weights = await checkpointWeights(dir, 'logits');
      const native = await NativeClassifier.create(rt, weights, 'logits');
      const scorer = new BatchScorer(native, { maxTokens: weights.info.maxTokens, batchSize: 16 });
      return { version, calibration, dir, info: weights.info, scorer, native, inFlight: 0, retired: false };
    } catch (err) {
      // tfjs can run every model this daemon trains; if it cannot load this one either, its error is the one to see.
      this.log(`model version ${version} runs on tfjs: native inference failed (${(err as Error).message})`);
      return undefined;
    }
  }

  private async loadTfjs(version: number, dir: string, calibration: ModelCalibration | null): Promise<Loaded> {
    const { classifier, info } = await loadCheckpoint(dir);
    return {
      version, calibration, dir, info,
      scorer: new BatchScorer(classifier, { maxTokens: info.maxTokens, batchSize: 16 }),
      classifier: Promise.resolve(classifier),
      inFlight: 0,
      retired: false,
    };
  }

  /** Raw class logits ([ham, spam]) of a model text, with the version that computed them and its calibration. */
  async score(text: string): Promise<{ logits: number[]; version: number; calibration: ModelCalibration | null }> {
    return this.use(async (model) => ({ logits: await model.scorer.score(text), version: model.version, calibration: model.calibration }));
  }

  /**
   * Runs `fn` with the current version's tfjs classifier (loaded on first use when scoring runs natively); the
   * version is not freed while `fn` runs.
   */
  async withClassifier<T>(fn: (classifier: GPT2Classifier, info: { version: number; info: CheckpointInfo }) => T | Promise<T>): Promise<T> {
    return this.use(async (model) => {
      model.classifier ??= loadCheckpoint(model.dir).then((r) => r.classifier);
      return fn(await model.classifier, { version: model.version, info: model.info });
    });
  }

  private async use<T>(fn: (model: Loaded) => Promise<T>): Promise<T> {
    if (!this.current) await this.whenReady();
    const model = this.current!;
    model.inFlight++;
    try {
      return await fn(model);
    } finally {
      model.inFlight--;
      if (model.retired && model.inFlight === 0) this.free(model);
    }
  }

  private retire(model: Loaded): void {
    model.retired = true;
    if (model.inFlight === 0) this.free(model);
  }

  private free(model: Loaded): void {
    void model.native?.dispose();
    void model.classifier?.then((c) => c.dispose(), () => undefined);
  }

  dispose(): void {
    if (this.current) this.retire(this.current);
    this.current = undefined;
  }

  /** Bytes of tensors alive in the engine, for /api/status. */
  static tensorBytes(): number {
    return tf.memory().numBytes;
  }
}
