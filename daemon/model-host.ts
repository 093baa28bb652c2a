/**
 * Holds the classifier that scores messages and swaps it for another version without dropping a request: the
 * new version is loaded completely beside the old one, then one assignment switches new requests over, and
 * the old one is freed once the requests it already accepted have finished.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadCheckpoint, type CheckpointInfo } from '../model/checkpoint.ts';
import type { GPT2Classifier } from '../model/classifier.ts';
import { BatchScorer } from '../model/scorer.ts';
import type { ModelCalibration } from './verdicts.ts';

interface Loaded {
  version: number;
  /** Its thresholds per kind of message (null for a model from before calibration: nothing is called spam). */
  calibration: ModelCalibration | null;
  classifier: GPT2Classifier;
  info: CheckpointInfo;
  scorer: BatchScorer;
  inFlight: number;
  retired: boolean;
}

export class ModelHost {
  private current: Loaded | undefined;
  private readyWaiters: Array<() => void> = [];

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
    const { classifier, info } = await loadCheckpoint(dir);
    const next: Loaded = {
      version, calibration, classifier, info,
      scorer: new BatchScorer(classifier, { maxTokens: info.maxTokens, batchSize: 16 }),
      inFlight: 0,
      retired: false,
    };
    const previous = this.current;
    this.current = next;
    if (previous) this.retire(previous);
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  /** Class logits [ham, spam] of a model text, with the version that computed them and its calibration. */
  async score(text: string): Promise<{ logits: number[]; version: number; calibration: ModelCalibration | null }> {
    if (!this.current) await this.whenReady();
    const model = this.current!;
    model.inFlight++;
    try {
      const logits = await model.scorer.score(text);
      return { logits, version: model.version, calibration: model.calibration };
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
    model.classifier.dispose();
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
