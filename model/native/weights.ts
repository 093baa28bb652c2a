/**
 * Where the native graph's weights come from, without a second copy in JavaScript where it can be avoided:
 * - frozen base weights: regions of the base `model.safetensors` (ONNX external data, read by the runtime);
 * - a fine-tuned checkpoint's trained tensors: regions of its `classifier.safetensors`, or inline when the base
 *   file's folder already supplies the external data (one folder per model; see onnx-graph.ts);
 * - anything that exists only in tfjs memory (random initialisation, tensors trained in this process): inline.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readCheckpointInfo, type CheckpointInfo } from '../checkpoint.ts';
import type { ClassifierOptions, GPT2Classifier } from '../classifier.ts';
import type { GPT2Config } from '../config.ts';
import { SafetensorsFile } from '../safetensors.ts';
import { blockParamNames, expectedShapes, fileSha256 } from '../weights.ts';
import type { GraphOutput } from './gpt2-graph.ts';
import { DataType, bytesOf, type Weight } from './onnx-graph.ts';

/** A model this path cannot build natively; the caller uses tfjs instead. */
export class NativeUnsupportedError extends Error {}

export interface NativeModelWeights {
  config: GPT2Config;
  options: ClassifierOptions;
  weights: Map<string, Weight>;
}

/** The tensors a graph cut reads (model/native/gpt2-graph.ts). */
export function graphWeightNames(config: GPT2Config, output: GraphOutput, options: Pick<ClassifierOptions, 'layers'>): string[] {
  const last = config.nLayer - 1;
  const names = ['wte.weight', 'wpe.weight'];
  for (let l = 0; l < last; l++) names.push(...blockParamNames(l));
  if (output !== 'trunk') names.push(...blockParamNames(last), 'ln_f.weight', 'ln_f.bias');
  if (output === 'logits') names.push('head.weight', 'head.bias');
  if (options.layers === 'lora') {
    for (const n of [...names]) {
      if (/^h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(n)) names.push(`lora.${n}.A`, `lora.${n}.B`);
    }
  }
  return names;
}

function inline(dims: number[], data: Float32Array): Weight {
  return { dims, type: DataType.FLOAT, data: { kind: 'inline', bytes: bytesOf(data) } };
}

/** The float32 tensors of a safetensors file as file regions (other dtypes are read and widened inline). */
async function fileWeights(path: string, wanted: Map<string, number[] | undefined>, stripPrefix = false): Promise<Map<string, Weight>> {
  const file = await SafetensorsFile.open(path);
  try {
    const prefix = stripPrefix && file.has('transformer.wte.weight') ? 'transformer.' : '';
    const out = new Map<string, Weight>();
    for (const [name, shape] of wanted) {
      const stored = `${prefix}${name}`;
      if (!file.has(stored)) continue;
      const info = file.info(stored);
      if (shape && info.shape.join() !== shape.join()) {
        throw new Error(`${path}: tensor "${name}" has shape [${info.shape}], the model expects [${shape}]`);
      }
      out.set(
        name,
        info.dtype === 'F32'
          ? { dims: info.shape, type: DataType.FLOAT, data: { kind: 'file', path: resolve(path), offset: info.begin, length: info.end - info.begin } }
          : inline(info.shape, await file.readFloat32(stored)),
      );
    }
    return out;
  } finally {
    await file.close();
  }
}

function missing(names: string[], have: Map<string, Weight>, where: string): void {
  const absent = names.filter((n) => !have.has(n));
  if (absent.length) throw new NativeUnsupportedError(`${where}: no ${absent.slice(0, 3).join(', ')}${absent.length > 3 ? ', …' : ''} for the native graph`);
}

/**
 * The weights of a saved fine-tuned model (model/checkpoint.ts layout), read from its files; the base file must
 * have the SHA-256 the checkpoint recorded, as for loadCheckpoint.
 */
export async function checkpointWeights(dir: string, output: GraphOutput, opts: { basePath?: string } = {}): Promise<NativeModelWeights & { info: CheckpointInfo }> {
  const info = await readCheckpointInfo(dir);
  const { config } = info.base;
  const names = graphWeightNames(config, output, info.options);
  const shapes = expectedShapes(config);
  const want = new Map(names.map((n) => [n, shapes.get(n)]));
  const trained = await fileWeights(join(dir, 'classifier.safetensors'), want);
  const head = trained.get('head.weight');
  if (head) {
    // Stored in PyTorch nn.Linear layout [classes, E]; the graph multiplies by [E, classes].
    const f = await SafetensorsFile.open(join(dir, 'classifier.safetensors'));
    try {
      const [c, e] = head.dims as [number, number];
      const w = await f.readFloat32('head.weight');
      const t = new Float32Array(c * e);
      for (let i = 0; i < c; i++) for (let j = 0; j < e; j++) t[j * c + i] = w[i * e + j]!;
      trained.set('head.weight', inline([e, c], t));
    } finally {
      await f.close();
    }
  }
  let weights = trained;
  if (info.base.scratchSeed === undefined) {
    const path = resolve(opts.basePath ?? info.base.source);
    if (!existsSync(path)) throw new Error(`${dir}: its base weights ${path} are missing`);
    const hash = await fileSha256(path);
    if (hash !== info.base.hash) {
      throw new Error(`${dir}: was trained on base weights ${info.base.hash.slice(0, 12)}…, but ${path} has ${hash.slice(0, 12)}…`);
    }
    const base = await fileWeights(path, new Map([...want].filter(([n]) => !trained.has(n))), true);
    weights = new Map([...base, ...trained]);
  }
  missing(names, weights, dir);
  return { config, options: info.options, weights, info };
}

/**
 * The weights of a classifier in tfjs memory. Frozen tensors come from its base file when it has one (and the file
 * still has the hash it was loaded with); trained ones, LoRA adapters and the head are copied from tfjs.
 */
export async function classifierWeights(clf: GPT2Classifier, output: GraphOutput): Promise<NativeModelWeights> {
  const names = graphWeightNames(clf.config, output, clf.options);
  const trainable = clf.trainableVariables();
  const fromTfjs = new Map<string, tf.Tensor>();
  for (const name of names) {
    const lora = /^lora\.(.+)\.(A|B)$/.exec(name);
    if (lora) {
      const adapter = clf.gpt.lora.get(lora[1]!);
      if (!adapter) throw new Error(`no LoRA adapter on ${lora[1]}`);
      fromTfjs.set(name, lora[2] === 'A' ? adapter.a : adapter.b);
    } else if (name === 'head.weight') fromTfjs.set(name, clf.headWeight);
    else if (name === 'head.bias') fromTfjs.set(name, clf.headBias);
    else if (trainable.has(name)) fromTfjs.set(name, trainable.get(name)!);
  }
  let weights = new Map<string, Weight>();
  const frozen = names.filter((n) => !fromTfjs.has(n));
  const { hash, source } = clf.base;
  if (frozen.length && !hash.startsWith('scratch:') && existsSync(source) && (await fileSha256(source)) === hash) {
    const shapes = expectedShapes(clf.config);
    weights = await fileWeights(source, new Map(frozen.map((n) => [n, shapes.get(n)])), true);
  }
  for (const name of frozen) if (!weights.has(name)) fromTfjs.set(name, clf.gpt.w(name));
  for (const [name, t] of fromTfjs) weights.set(name, inline(t.shape, (await t.data()) as Float32Array));
  missing(names, weights, 'classifier');
  return { config: clf.config, options: clf.options, weights };
}
