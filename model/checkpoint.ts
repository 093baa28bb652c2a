/**
 * Compact fine-tuned checkpoints: only what differs from the base weights (the trained tensors, LoRA adapters
 * and the head) in `classifier.safetensors`, plus `classifier.json` with the options and a reference to the
 * base file by SHA-256. A model trained from scratch trains every tensor, so its checkpoint is complete.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { classifierOptionsSchema, GPT2Classifier } from './classifier.ts';
import { gpt2ConfigSchema } from './config.ts';
import { readJsonFile, writeFileAtomic } from './files.ts';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from './safetensors.ts';
import { initGPT2, loadGPT2, type GPT2Weights } from './weights.ts';

export const CHECKPOINT_FORMAT = 'gptspam-classifier/1';

/** `classifier.json`: what the checkpoint is, what it applies to, and how it scores. */
export const checkpointInfoSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    /** The base weights by SHA-256 (or `scratch:<seed>`), where they were, and their architecture. */
    base: z.object({ hash: z.string().min(1), source: z.string(), config: gpt2ConfigSchema, scratchSeed: z.number().int().optional() }),
    options: classifierOptionsSchema,
    /** Truncation length used in training; scoring uses the same. */
    maxTokens: z.number().int().min(1),
    /** A name per class, in class-id order. */
    labelNames: z.array(z.string()),
    createdAt: z.string(),
    /** Free-form results (metrics, history; the daemon's calibration) stored with the model: whoever wrote them reads them. */
    extra: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((info) => info.labelNames.length === info.options.numClasses, {
    path: ['labelNames'],
    message: 'must name every class (as many names as options.numClasses)',
  });
export type CheckpointInfo = z.infer<typeof checkpointInfoSchema>;

export async function saveCheckpoint(
  dir: string,
  clf: GPT2Classifier,
  meta: { maxTokens: number; labelNames: string[]; extra?: Record<string, unknown> },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, v] of clf.trainableVariables()) {
    // The head is stored in PyTorch nn.Linear layout [classes, emb], like head.safetensors files.
    const t = name === 'head.weight' ? tf.transpose(v) : v;
    tensors[name] = { shape: t.shape, data: t.dataSync() as Float32Array };
    if (t !== v) t.dispose();
  }
  const scratch = /^scratch:(\d+)$/.exec(clf.base.hash);
  const info: CheckpointInfo = {
    format: CHECKPOINT_FORMAT,
    base: { hash: clf.base.hash, source: clf.base.source, config: clf.config, ...(scratch ? { scratchSeed: Number(scratch[1]) } : {}) },
    options: clf.options,
    maxTokens: meta.maxTokens,
    labelNames: meta.labelNames,
    createdAt: new Date().toISOString(),
    ...(meta.extra ? { extra: meta.extra } : {}),
  };
  await writeSafetensors(join(dir, 'classifier.safetensors'), tensors, { format: CHECKPOINT_FORMAT });
  await writeFileAtomic(join(dir, 'classifier.json'), JSON.stringify(info, null, 2) + '\n');
}

/** The checkpoint's `classifier.json`, checked: an error names the file and each field that is wrong. */
export async function readCheckpointInfo(dir: string): Promise<CheckpointInfo> {
  return readJsonFile(join(dir, 'classifier.json'), checkpointInfoSchema, 'the model description');
}

/**
 * Loads a fine-tuned classifier. `basePath` is the base model.safetensors (default: the path recorded at
 * training time); its hash must equal the recorded one, so a checkpoint is never applied to other weights.
 */
export async function loadCheckpoint(dir: string, opts: { basePath?: string } = {}): Promise<{ classifier: GPT2Classifier; info: CheckpointInfo }> {
  const info = await readCheckpointInfo(dir);
  let base: GPT2Weights;
  if (info.base.scratchSeed !== undefined) {
    base = initGPT2(info.base.config, info.base.scratchSeed);
  } else {
    const path = opts.basePath ?? info.base.source;
    base = await loadGPT2(path);
    if (base.hash !== info.base.hash) {
      for (const t of base.tensors.values()) t.dispose();
      throw new Error(`${dir}: was trained on base weights ${info.base.hash.slice(0, 12)}…, but ${path} has ${base.hash.slice(0, 12)}…`);
    }
  }
  const file = await SafetensorsFile.open(join(dir, 'classifier.safetensors'));
  try {
    const headW = await file.readFloat32('head.weight');
    const headB = await file.readFloat32('head.bias');
    const clf = new GPT2Classifier(base, info.options, { weight: headW, bias: headB });
    for (const [name, v] of clf.trainableVariables()) {
      if (name.startsWith('head.')) continue;
      const stored = file.info(name);
      if (stored.shape.join() !== v.shape.join()) {
        throw new Error(`${dir}: tensor "${name}" has shape [${stored.shape}], the model expects [${v.shape}]`);
      }
      const data = await file.readFloat32(name);
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
    return { classifier: clf, info };
  } finally {
    await file.close();
  }
}
