/** What the daemon asks a training process to do, and what the process reports back (one JSON object a line). */
import type { BackendName, InferenceName } from '../../model/backend.ts';
import type { OperatingPointOptions } from '../../model/calibration.ts';
import type { TrainableLayers } from '../../model/classifier.ts';
import type { ModelCalibration } from '../verdicts.ts';
import type { LabelledText } from './corpus.ts';

export type BaseSpec =
  | { kind: 'pretrained'; name: string; path: string }
  | { kind: 'scratch'; name: string; size: 'tiny' | 'small'; seed: number };

export interface TrainJob {
  home: string;
  version: number;
  /** The new model's checkpoint folder. */
  outDir: string;
  backend: BackendName;
  /** What runs the frozen-trunk pass (training itself is always tfjs). */
  inference: InferenceName;
  base: BaseSpec;
  layers: TrainableLayers;
  maxTokens: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Decay of the moving average of the weights that is kept (0: the last step's weights). */
  averageDecay: number;
  /** Built-in corpora (the SMS Spam Collection's file, null when not used) and the sample sizes of each. */
  corpora: { smsFile: string | null; spamAssassin: boolean; maxPerCorpus: number; maxHeldOutPerCorpus: number };
  heldOutFraction: number;
  /** How each kind's thresholds are chosen on the held-out set. */
  calibration: OperatingPointOptions;
  /** Labels people gave (corrections, labelled imports). */
  personal: LabelledText[];
  /** The model now scoring, evaluated on the same held-out set for the promotion decision. */
  current: { version: number; dir: string } | null;
  /** Continue from `current` on the fresh labels plus replayed examples (when it fits this job's base and layers). */
  refine: { epochs: number; replay: number } | null;
}

export interface HeldOutMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  count: number;
}

export type WorkerReport =
  | { type: 'log'; line: string }
  | { type: 'progress'; phase: string; step: number; totalSteps: number; epoch: number; loss: number | null; etaSeconds: number | null }
  | { type: 'epoch'; epoch: number; examplesSeen: number; trainLoss: number; valLoss: number; trainAcc: number; valAcc: number }
  | {
      type: 'done';
      baseHash: string;
      trainingSize: number;
      corrections: number;
      candidate: HeldOutMetrics;
      current: HeldOutMetrics | null;
      /** The candidate's thresholds and error rates per kind of message, on the held-out set. */
      calibration: ModelCalibration;
      seconds: number;
    }
  | { type: 'error'; message: string };
