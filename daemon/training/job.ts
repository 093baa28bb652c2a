/**
 * What the daemon asks a training process to do (the job file), and what the process reports back (one JSON object
 * a line). Both cross a process boundary, so both are schemas, and the types are derived from them: a job file or a
 * report that does not match is refused with an error that says which field is wrong.
 */
import { z } from 'zod';
import { BACKEND_NAMES, INFERENCE_NAMES } from '../../model/backend.ts';
import { operatingPointOptionsSchema } from '../../model/calibration.ts';
import { modelCalibrationSchema } from '../verdicts.ts';
import { TRAINABLE_LAYERS } from '../../model/classifier.ts';
import { SCRATCH_SIZE_NAMES } from '../../model/config.ts';
import { readJsonFile } from '../../model/files.ts';
import { jsonNumber, parseWith } from '../../model/schema.ts';
import { epochPointSchema } from '../../model/train.ts';
import { labelledMessageSchema } from './corpus.ts';

const count = z.number().int().min(0);
const positiveInt = z.number().int().min(1);

export const baseSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('pretrained'), name: z.string(), path: z.string().min(1) }),
  z.object({ kind: z.literal('scratch'), name: z.string(), size: z.enum(SCRATCH_SIZE_NAMES), seed: z.number().int() }),
]);
export type BaseSpec = z.infer<typeof baseSpecSchema>;

export const trainJobSchema = z.object({
  home: z.string().min(1),
  version: positiveInt,
  /** The new model's checkpoint folder. */
  outDir: z.string().min(1),
  backend: z.enum(BACKEND_NAMES),
  /** What runs the frozen-trunk pass (training itself is always tfjs). */
  inference: z.enum(INFERENCE_NAMES),
  base: baseSpecSchema,
  layers: z.enum(TRAINABLE_LAYERS),
  maxTokens: positiveInt,
  epochs: positiveInt,
  batchSize: positiveInt,
  learningRate: z.number().positive(),
  /** Decay of the moving average of the weights that is kept (0: the last step's weights). */
  averageDecay: z.number().min(0).max(1),
  /** Built-in corpora (the SMS Spam Collection's file, null when not used) and the sample sizes of each. */
  corpora: z.object({ smsFile: z.string().nullable(), spamAssassin: z.boolean(), maxPerCorpus: count, maxHeldOutPerCorpus: count }),
  heldOutFraction: z.number().min(0).max(1),
  /** How each kind's thresholds are chosen on the held-out set. */
  calibration: operatingPointOptionsSchema,
  /** Labels people gave (corrections, labelled imports). */
  personal: z.array(labelledMessageSchema),
  /** The model now scoring, evaluated on the same held-out set for the promotion decision. */
  current: z.object({ version: positiveInt, dir: z.string().min(1) }).nullable(),
  /** Continue from `current` on the fresh labels plus replayed examples (when it fits this job's base and layers). */
  refine: z.object({ epochs: positiveInt, replay: z.number().min(0) }).nullable(),
});
export type TrainJob = z.infer<typeof trainJobSchema>;

/** Reads and checks a job file (the training process's only input). */
export function readTrainJob(path: string): Promise<TrainJob> {
  return readJsonFile(path, trainJobSchema, 'the training job');
}

/** Held-out metrics at the classifier's own decision boundary; NaN (null in JSON) on an empty set. */
export const heldOutMetricsSchema = z.object({
  accuracy: jsonNumber,
  precision: jsonNumber,
  recall: jsonNumber,
  f1: jsonNumber,
  count,
});
export type HeldOutMetrics = z.infer<typeof heldOutMetricsSchema>;

export const workerReportSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('log'), line: z.string() }),
  z.object({
    type: z.literal('progress'),
    phase: z.string(),
    step: count,
    totalSteps: count,
    epoch: count,
    loss: z.number().nullable(),
    etaSeconds: z.number().nullable(),
  }),
  epochPointSchema.extend({ type: z.literal('epoch') }),
  z.object({
    type: z.literal('done'),
    baseHash: z.string(),
    trainingSize: count,
    corrections: count,
    candidate: heldOutMetricsSchema,
    current: heldOutMetricsSchema.nullable(),
    /** The candidate's thresholds and error rates per kind of message, on the held-out set. */
    calibration: modelCalibrationSchema,
    seconds: z.number(),
  }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type WorkerReport = z.infer<typeof workerReportSchema>;

/** Parses one line the training process wrote; throws an error that says what is wrong with it. */
export function parseWorkerReport(line: string): WorkerReport {
  const where = 'a report from the training process';
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`${where} is not JSON (${line.length} characters)`);
  }
  return parseWith(workerReportSchema, value, `${where} is invalid`);
}
