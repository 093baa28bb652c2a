/**
 * GPT-2 backbone weights: loading a Hugging Face checkpoint into tensors, validating every name and shape, and
 * random initialisation for training from scratch.
 *
 * Weights are kept in one map keyed by the official checkpoint names (`wte.weight`, `h.3.attn.c_attn.weight`,
 * `ln_f.bias`, ...), so saving, loading and choosing trainable tensors all speak the same language.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { sha256File } from './files.ts';
import { configFromHuggingFace, inferConfig, type GPT2Config } from './config.ts';
import { SafetensorsFile, SafetensorsError } from './safetensors.ts';

export type WeightMap = Map<string, tf.Tensor>;

export interface GPT2Weights {
  config: GPT2Config;
  tensors: WeightMap;
  /** SHA-256 of the checkpoint file, or a description of how the weights were made. */
  hash: string;
  source: string;
}

/** The per-block parameters, in the order of the reference implementation. */
export const BLOCK_PARAMS = [
  'ln_1.weight', 'ln_1.bias',
  'attn.c_attn.weight', 'attn.c_attn.bias',
  'attn.c_proj.weight', 'attn.c_proj.bias',
  'ln_2.weight', 'ln_2.bias',
  'mlp.c_fc.weight', 'mlp.c_fc.bias',
  'mlp.c_proj.weight', 'mlp.c_proj.bias',
] as const;

export function blockParamNames(layer: number): string[] {
  return BLOCK_PARAMS.map((p) => `h.${layer}.${p}`);
}

/** The expected shape of every backbone tensor. */
export function expectedShapes(cfg: GPT2Config): Map<string, number[]> {
  const e = cfg.nEmbd;
  const shapes = new Map<string, number[]>([
    ['wte.weight', [cfg.vocabSize, e]],
    ['wpe.weight', [cfg.nPositions, e]],
    ['ln_f.weight', [e]],
    ['ln_f.bias', [e]],
  ]);
  const block: Record<(typeof BLOCK_PARAMS)[number], number[]> = {
    'ln_1.weight': [e], 'ln_1.bias': [e],
    'attn.c_attn.weight': [e, 3 * e], 'attn.c_attn.bias': [3 * e],
    'attn.c_proj.weight': [e, e], 'attn.c_proj.bias': [e],
    'ln_2.weight': [e], 'ln_2.bias': [e],
    'mlp.c_fc.weight': [e, 4 * e], 'mlp.c_fc.bias': [4 * e],
    'mlp.c_proj.weight': [4 * e, e], 'mlp.c_proj.bias': [e],
  };
  for (let l = 0; l < cfg.nLayer; l++) {
    for (const p of BLOCK_PARAMS) shapes.set(`h.${l}.${p}`, block[p]);
  }
  return shapes;
}

/** Buffers that real checkpoints carry but that are not parameters (the causal mask), and the tied LM head. */
function isIgnored(name: string): boolean {
  return /^h\.\d+\.attn\.(bias|masked_bias)$/.test(name) || name === 'lm_head.weight';
}

/** The bytes a backend must hold for these weights. */
export function weightBytes(cfg: GPT2Config): number {
  let n = 0;
  for (const s of expectedShapes(cfg).values()) n += s.reduce((a, d) => a * d, 1);
  return n * 4;
}

const GiB = 1024 ** 3;
/** wasm memory is 32-bit addressed: 4 GiB at most, and it never shrinks. */
const WASM_HEAP_LIMIT = 4 * GiB;
/** Activations of a scoring or training batch (one block at a time) plus the allocator's slack; measured ~0.4 GiB for 124M. */
const WASM_WORKING_BYTES = 0.6 * GiB;

/**
 * What the wasm backend's heap must hold to run this model: the weights, plus the copy XNNPACK packs of every
 * projection matrix the first time it multiplies by it (measured: +0.37 GiB for 124M), plus working memory.
 */
export function wasmBytesNeeded(cfg: GPT2Config): number {
  const projections = 12 * cfg.nEmbd * cfg.nEmbd * cfg.nLayer * 4; // c_attn 3E², attn c_proj E², c_fc 4E², mlp c_proj 4E²
  return weightBytes(cfg) + projections + WASM_WORKING_BYTES;
}

/**
 * Refuses, before anything is allocated, a model the backend cannot hold. On wasm this is the only safe place to
 * stop: running out of its heap later aborts the single-threaded build and hangs the multi-threaded one.
 */
export function checkFitsBackend(config: GPT2Config, where: string, backend = tf.getBackend()): void {
  const bytes = wasmBytesNeeded(config);
  if (backend === 'wasm' && bytes > WASM_HEAP_LIMIT) {
    throw new Error(
      `${where}: this model needs about ${(bytes / GiB).toFixed(1)} GiB to run on the wasm backend (weights ` +
        `${(weightBytes(config) / GiB).toFixed(1)} GiB plus packed copies and activations), more than its 4 GiB ` +
        'address space; use --backend node or --backend gpu (see README) or a smaller GPT-2',
    );
  }
}

/**
 * Loads a GPT-2 backbone from a Hugging Face `model.safetensors`. The configuration comes from a
 * `config.json` beside the file when there is one, else from the tensor shapes.
 */
export async function loadGPT2(path: string, opts: { configPath?: string } = {}): Promise<GPT2Weights> {
  const file = await SafetensorsFile.open(path);
  try {
    // Some exports nest everything under `transformer.` (GPT2LMHeadModel state dicts): strip it.
    const prefix = file.has('transformer.wte.weight') ? 'transformer.' : '';
    const canonical = new Map<string, string>();
    for (const name of file.tensors.keys()) {
      if (name === '__metadata__') continue;
      const bare = name.startsWith(prefix) ? name.slice(prefix.length) : name;
      if (!isIgnored(bare)) canonical.set(bare, name);
    }
    for (const required of ['wte.weight', 'wpe.weight']) {
      if (!canonical.has(required)) {
        throw new SafetensorsError(path, `tensor "${required}" is missing: not a GPT-2 checkpoint?`);
      }
    }
    const layers = new Set<number>();
    for (const name of canonical.keys()) {
      const m = /^h\.(\d+)\./.exec(name);
      if (m) layers.add(Number(m[1]));
    }
    const config = await readConfig(path, opts.configPath, {
      wte: file.info(canonical.get('wte.weight')!).shape,
      wpe: file.info(canonical.get('wpe.weight')!).shape,
      nLayer: layers.size,
    });
    const shapes = expectedShapes(config);
    for (const [name, shape] of shapes) {
      const stored = canonical.get(name);
      if (!stored) throw new SafetensorsError(path, `tensor "${name}" is missing (expected shape [${shape}])`);
      const got = file.info(stored).shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
        throw new SafetensorsError(path, `tensor "${name}" has shape [${got}], expected [${shape}] for this configuration`);
      }
    }
    checkFitsBackend(config, path);
    const tensors: WeightMap = new Map();
    try {
      for (const [name, shape] of shapes) {
        const data = await file.readFloat32(canonical.get(name)!);
        for (let i = 0; i < data.length; i++) {
          if (!Number.isFinite(data[i]!)) {
            throw new SafetensorsError(path, `tensor "${name}" holds a non-finite value at element ${i} (corrupt file?)`);
          }
        }
        tensors.set(name, tf.tensor(data, shape, 'float32'));
      }
    } catch (err) {
      disposeWeights(tensors);
      throw err;
    }
    return { config, tensors, hash: await fileSha256(path), source: path };
  } finally {
    await file.close();
  }
}

async function readConfig(
  weightsPath: string,
  configPath: string | undefined,
  shapes: { wte: number[]; wpe: number[]; nLayer: number },
): Promise<GPT2Config> {
  const candidate = configPath ?? join(dirname(weightsPath), 'config.json');
  let text: string | undefined;
  try {
    text = await readFile(candidate, 'utf8');
  } catch (err) {
    if (configPath) throw new Error(`cannot read ${configPath}: ${(err as Error).message}`);
  }
  if (text === undefined) return inferConfig(shapes);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${candidate}: not valid JSON (${(err as Error).message})`);
  }
  return configFromHuggingFace(json, candidate);
}

/**
 * SHA-256 of a file (sha256File), cached beside the file (keyed by size and mtime) because hashing a 6 GB
 * checkpoint takes a while and the daemon needs the hash at every start.
 */
export async function fileSha256(path: string): Promise<string> {
  const st = await stat(path);
  const cachePath = `${path}.sha256`;
  const key = `${st.size}:${st.mtimeMs}`;
  try {
    const [cachedKey, cachedHash] = (await readFile(cachePath, 'utf8')).trim().split(' ');
    if (cachedKey === key && cachedHash && /^[0-9a-f]{64}$/.test(cachedHash)) return cachedHash;
  } catch {
    // no cache yet
  }
  const hex = await sha256File(path);
  await writeFile(cachePath, `${key} ${hex}\n`).catch(() => undefined); // read-only folders just skip the cache
  return hex;
}

/**
 * Random GPT-2 initialisation (normal(0, 0.02) weights, zero biases, unit LayerNorm gains; residual projections
 * scaled by 1/sqrt(2·layers) as in the GPT-2 paper), for training from scratch.
 */
export function initGPT2(config: GPT2Config, seed: number): GPT2Weights {
  checkFitsBackend(config, `a ${config.nLayer}-layer, ${config.nEmbd}-wide GPT-2`);
  const tensors: WeightMap = new Map();
  let s = seed;
  const residualStd = 0.02 / Math.sqrt(2 * config.nLayer);
  for (const [name, shape] of expectedShapes(config)) {
    let t: tf.Tensor;
    if (/ln_\w+\.weight$/.test(name)) t = tf.ones(shape);
    // Token embeddings start at zero: a classifier trained from scratch sees a few thousand messages, so most of the
    // 50,257 tokens are never trained, and at random they would add noise to every message that contains one.
    // At zero they stay neutral (the rest of the network, random, breaks the symmetry from the first step).
    else if (name.endsWith('.bias') || name === 'wte.weight') t = tf.zeros(shape);
    else {
      const std = /c_proj\.weight$/.test(name) ? residualStd : 0.02;
      t = tf.randomNormal(shape, 0, std, 'float32', s++);
    }
    tensors.set(name, t);
  }
  return { config, tensors, hash: `scratch:${seed}`, source: 'random initialisation' };
}

export function disposeWeights(tensors: WeightMap): void {
  for (const t of tensors.values()) t.dispose();
  tensors.clear();
}
