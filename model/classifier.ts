/**
 * GPT-2 as a classifier (chapter 6): the LM head is replaced by a linear layer with `numClasses` outputs read
 * at one pooled position, and only a chosen part of the network is trained.
 *
 * The forward pass is split in two at the boundary between frozen and trainable parts: `frozenFeatures` runs
 * everything that no gradient can reach (no tape, cacheable per message), `logitsFromFeatures` the trainable
 * rest. Training and scoring both go through the same two functions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { ATTENTION_MODES, GPT2, type TokenBatch } from './gpt2.ts';
import { linear } from './ops.ts';
import { SafetensorsFile } from './safetensors.ts';
import { blockParamNames, type GPT2Weights } from './weights.ts';

/** last_real: last non-pad token (default); last: final position of the padded batch (the chapter); first: position 0. */
export const POOLINGS = ['last_real', 'last', 'first'] as const;
export type Pooling = (typeof POOLINGS)[number];
/** What is trained besides the head: the last block and final LayerNorm, nothing else, everything, or LoRA adapters. */
export const TRAINABLE_LAYERS = ['last_block', 'last_layer', 'all', 'lora'] as const;
export type TrainableLayers = (typeof TRAINABLE_LAYERS)[number];

/** The classifier's shape and training choices; a schema, because checkpoints record them (model/checkpoint.ts). */
export const classifierOptionsSchema = z.object({
  numClasses: z.number().int().min(1),
  pooling: z.enum(POOLINGS),
  attention: z.enum(ATTENTION_MODES),
  layers: z.enum(TRAINABLE_LAYERS),
  loraRank: z.number().int().min(1),
  loraAlpha: z.number(),
  seed: z.number().int(),
});
export type ClassifierOptions = z.infer<typeof classifierOptionsSchema>;

export const DEFAULT_CLASSIFIER_OPTIONS: ClassifierOptions = {
  numClasses: 2,
  pooling: 'last_real',
  attention: 'causal',
  layers: 'last_block',
  loraRank: 16,
  loraAlpha: 16,
  seed: 123,
};

/** The head in PyTorch nn.Linear layout: weight [classes, emb], bias [classes]. */
export interface HeadInit {
  weight: Float32Array;
  bias: Float32Array;
}

/** A head saved on its own (tensors `weight` and `bias`, as `classify --head` takes it). */
export async function readHead(path: string): Promise<HeadInit> {
  const f = await SafetensorsFile.open(path);
  try {
    return { weight: await f.readFloat32('weight'), bias: await f.readFloat32('bias') };
  } finally {
    await f.close();
  }
}

/**
 * What the frozen part computes for a batch:
 * - `block-input`: the input of the last transformer block, [B, T, E] (layers = last_block);
 * - `pooled-hidden`: the final hidden state at the pooled position, [B, E] (layers = last_layer);
 * - `tokens`: nothing is frozen below the trainable part, the token ids themselves (all, lora).
 */
export type FrozenFeatures =
  | { kind: 'block-input'; x: tf.Tensor3D; positions: number[]; lengths: number[] }
  | { kind: 'pooled-hidden'; h: tf.Tensor2D }
  | { kind: 'tokens'; batch: TokenBatch; positions: number[] };

export class GPT2Classifier {
  readonly gpt: GPT2;
  /** Stored [E, classes] so the forward pass needs no transpose. */
  headWeight: tf.Variable;
  headBias: tf.Variable;
  readonly options: ClassifierOptions;

  constructor(
    readonly base: GPT2Weights,
    options: Partial<ClassifierOptions> = {},
    head?: HeadInit,
  ) {
    this.options = { ...DEFAULT_CLASSIFIER_OPTIONS, ...options };
    const { numClasses, seed } = this.options;
    if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`numClasses must be an integer ≥ 2, got ${numClasses}`);
    this.gpt = new GPT2(base.config, base.tensors);
    const e = base.config.nEmbd;
    if (head) {
      if (head.weight.length !== numClasses * e || head.bias.length !== numClasses) {
        throw new Error(`head has ${head.weight.length}+${head.bias.length} values, expected weight [${numClasses}, ${e}] and bias [${numClasses}]`);
      }
      this.headWeight = tf.variable(tf.transpose(tf.tensor2d(head.weight, [numClasses, e])));
      this.headBias = tf.variable(tf.tensor1d(head.bias));
    } else {
      // torch.nn.Linear's default initialisation: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
      const bound = 1 / Math.sqrt(e);
      this.headWeight = tf.variable(tf.randomUniform([e, numClasses], -bound, bound, 'float32', seed));
      this.headBias = tf.variable(tf.randomUniform([numClasses], -bound, bound, 'float32', seed + 1));
    }
    this.markTrainable();
  }

  get config() {
    return this.base.config;
  }

  /** Names of the backbone tensors that are trained (LoRA adapters and the head are listed separately). */
  trainableBackboneNames(): string[] {
    const last = this.config.nLayer - 1;
    switch (this.options.layers) {
      case 'last_layer':
      case 'lora':
        return [];
      case 'last_block':
        return [...blockParamNames(last), 'ln_f.weight', 'ln_f.bias'];
      case 'all':
        return [...this.base.tensors.keys()];
    }
  }

  private markTrainable(): void {
    for (const name of this.trainableBackboneNames()) {
      const t = this.base.tensors.get(name)!;
      if (!(t instanceof tf.Variable)) {
        this.base.tensors.set(name, tf.variable(t));
        t.dispose();
      }
    }
    this.gpt.trainEmbeddings = this.options.layers === 'all';
    if (this.options.layers === 'lora') this.addLora();
  }

  /** LoRA on every attention and MLP projection of every block (appendix E of the book). */
  private addLora(): void {
    const { loraRank: r, loraAlpha, seed } = this.options;
    if (!Number.isInteger(r) || r < 1) throw new Error(`--lora-rank must be a positive integer, got ${r}`);
    let s = seed + 100;
    for (let l = 0; l < this.config.nLayer; l++) {
      for (const proj of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) {
        const name = `h.${l}.${proj}.weight`;
        const [inDim, outDim] = this.base.tensors.get(name)!.shape as [number, number];
        // As the book's LoRALayer: A ~ kaiming_uniform(a=√5) on an [in, rank] tensor (bound 1/√rank), B = 0, so
        // training starts from the pretrained function; the update is alpha · x·A·B (alpha not divided by rank).
        const bound = 1 / Math.sqrt(r);
        this.gpt.lora.set(name, {
          a: tf.variable(tf.randomUniform([inDim, r], -bound, bound, 'float32', s++)),
          b: tf.variable(tf.zeros([r, outDim])),
          scale: loraAlpha,
        });
      }
    }
  }

  /** Every trained tensor by name: backbone parts, LoRA adapters, head. */
  trainableVariables(): Map<string, tf.Variable> {
    const vars = new Map<string, tf.Variable>();
    for (const name of this.trainableBackboneNames()) vars.set(name, this.base.tensors.get(name) as tf.Variable);
    for (const [name, adapter] of this.gpt.lora) {
      vars.set(`lora.${name}.A`, adapter.a);
      vars.set(`lora.${name}.B`, adapter.b);
    }
    vars.set('head.weight', this.headWeight);
    vars.set('head.bias', this.headBias);
    return vars;
  }

  /** The position each row is classified from. */
  poolPositions(lengths: number[], width: number): number[] {
    return poolPositions(this.options.pooling, lengths, width);
  }

  /** Runs the frozen part of the network (call outside any gradient tape). */
  frozenFeatures(batch: TokenBatch): FrozenFeatures {
    const positions = this.poolPositions(batch.lengths, batch.ids.shape[1]);
    const mode = this.options.attention;
    switch (this.options.layers) {
      case 'last_block':
        return tf.tidy(() => ({ kind: 'block-input' as const, x: this.gpt.trunk(batch, mode), positions, lengths: batch.lengths }));
      case 'last_layer':
        return {
          kind: 'pooled-hidden',
          h: tf.tidy(() => this.gpt.finalHiddenAt(this.gpt.trunk(batch, mode), positions, batch.lengths, mode)),
        };
      default:
        return { kind: 'tokens', batch, positions };
    }
  }

  /** Runs the trainable part: class logits [B, classes]. */
  logitsFromFeatures(features: FrozenFeatures): tf.Tensor2D {
    const mode = this.options.attention;
    let h: tf.Tensor2D;
    switch (features.kind) {
      case 'pooled-hidden':
        h = features.h;
        break;
      case 'block-input':
        h = this.gpt.finalHiddenAt(features.x, features.positions, features.lengths, mode);
        break;
      case 'tokens':
        h = this.gpt.finalHiddenAt(this.gpt.trunk(features.batch, mode), features.positions, features.batch.lengths, mode);
        break;
    }
    return linear(h, this.headWeight, this.headBias) as tf.Tensor2D;
  }

  /**
   * Class logits [B, classes] from token embeddings [B, T, E] given directly instead of ids (positions are added
   * here, as for ids): the input integrated gradients differentiates with respect to. `lengths` are the real
   * tokens per row, as in a TokenBatch. `gpt` may be a view of this model's GPT-2 (`withConstantWeights()`).
   */
  logitsFromTokenEmbeddings(tok: tf.Tensor3D, lengths: number[], gpt: GPT2 = this.gpt): tf.Tensor2D {
    const mode = this.options.attention;
    const positions = this.poolPositions(lengths, tok.shape[1]);
    const x = gpt.blocksFrom(gpt.addPositions(tok), lengths, mode);
    return linear(gpt.finalHiddenAt(x, positions, lengths, mode), this.headWeight, this.headBias) as tf.Tensor2D;
  }

  /** Class logits for a batch, [B, classes]. */
  logits(batch: TokenBatch): tf.Tensor2D {
    return tf.tidy(() => {
      const features = this.frozenFeatures(batch);
      const out = this.logitsFromFeatures(features);
      disposeFeatures(features);
      return out;
    });
  }

  dispose(): void {
    for (const t of this.base.tensors.values()) t.dispose();
    for (const a of this.gpt.lora.values()) {
      a.a.dispose();
      a.b.dispose();
    }
    this.headWeight.dispose();
    this.headBias.dispose();
  }
}

/** The position each row of a padded batch is classified from. */
export function poolPositions(pooling: Pooling, lengths: number[], width: number): number[] {
  switch (pooling) {
    case 'last_real':
      return lengths.map((n) => Math.min(n, width) - 1);
    case 'last':
      return lengths.map(() => width - 1);
    case 'first':
      return lengths.map(() => 0);
  }
}

export function disposeFeatures(f: FrozenFeatures): void {
  if (f.kind === 'block-input') f.x.dispose();
  else if (f.kind === 'pooled-hidden') f.h.dispose();
}

/** Mean cross-entropy (natural log) of softmax(logits) against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: number[]): tf.Scalar {
  const classes = logits.shape[1];
  const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

/** Builds the int32 id tensor of a padded batch. */
export function toTokenBatch(ids: Int32Array, rows: number, width: number, lengths: number[]): TokenBatch {
  return { ids: tf.tensor2d(ids, [rows, width], 'int32'), lengths };
}
