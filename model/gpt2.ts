/**
 * The GPT-2 forward pass: token + position embeddings, pre-LayerNorm transformer blocks with causal (or
 * bidirectional) multi-head attention and a gelu_new MLP, a final LayerNorm, and the tied LM head.
 *
 * Classification only ever needs the hidden state at one position per text, so the last block can be run for
 * that position alone (`blockAt`): keys and values are still computed for every position, but the query, the
 * attention output, the MLP and the final LayerNorm only for the pooled one. The result is identical to the
 * full block at that position, at a fraction of the cost.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from './config.ts';
import { ConstantProjections } from './constant-projections.ts';
import type { LoraAdapter } from './lora.ts';
import { embeddingLookup, geluNew, geluNewLean, layerNorm, linear, matMul, swapLast } from './ops.ts';
import type { WeightMap } from './weights.ts';

/** causal (GPT-2), or bidirectional with padding keys masked (the chapter's "no causal mask" experiment). */
export const ATTENTION_MODES = ['causal', 'bidirectional'] as const;
export type AttentionMode = (typeof ATTENTION_MODES)[number];

/** Masked attention scores get this instead of -Infinity, so a row can never become all NaN. */
export const MASKED = -1e9;

/** Token ids of a right-padded batch. */
export interface TokenBatch {
  /** int32 [rows, width] */
  ids: tf.Tensor2D;
  /** Real (non-pad) tokens per row. */
  lengths: number[];
}

export class GPT2 {
  /** Optional LoRA adapters keyed by the projection's weight name, e.g. `h.0.attn.c_attn.weight`. */
  readonly lora = new Map<string, LoraAdapter>();
  /** Whether gradients must flow into the embeddings (only when they are trained). */
  trainEmbeddings = false;
  /** Set on a `withConstantWeights()` view: its projections differentiate with respect to their input only. */
  private constants: ConstantProjections | undefined;

  constructor(
    readonly config: GPT2Config,
    readonly weights: WeightMap,
  ) {}

  /**
   * A view of this model (same weight tensors, same LoRA adapters) whose projections treat their weights as
   * constants: a gradient flows to their input only. That is what gradients with respect to the input need
   * (integrated gradients): no weight gradient is computed, which halves the backward pass, and the MLP keeps less
   * for it (`geluNewLean`). `releaseConstants()` frees the merged or sliced copies it makes; the weights stay with
   * this model.
   */
  withConstantWeights(): GPT2 {
    const view = new GPT2(this.config, this.weights);
    for (const [name, adapter] of this.lora) view.lora.set(name, adapter);
    view.constants = new ConstantProjections((name) => view.w(name), view.lora);
    return view;
  }

  /** Frees what a `withConstantWeights()` view made (no-op on a normal model). */
  releaseConstants(): void {
    this.constants?.dispose();
  }

  w(name: string): tf.Tensor {
    const t = this.weights.get(name);
    if (!t) throw new Error(`GPT-2 weight "${name}" is not loaded`);
    return t;
  }

  /** x = wte[ids] + wpe[0..T). */
  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return this.addPositions(this.tokenEmbeddings(ids));
  }

  /** wte[ids], [B, T, E]: the token part of the block input. */
  tokenEmbeddings(ids: tf.Tensor2D): tf.Tensor3D {
    const wte = this.w('wte.weight') as tf.Tensor2D;
    return (this.trainEmbeddings ? embeddingLookup(wte, ids) : tf.gather(wte, ids)) as tf.Tensor3D;
  }

  /** tok + wpe[0..T): the position part added to token embeddings [B, T, E] (given directly, or from ids). */
  addPositions(tok: tf.Tensor3D): tf.Tensor3D {
    const width = tok.shape[1];
    if (width > this.config.nPositions) {
      throw new Error(`sequence of ${width} tokens exceeds the model's context of ${this.config.nPositions}`);
    }
    const pos = tf.slice(this.w('wpe.weight'), [0, 0], [width, -1]);
    return tf.add(tok, pos) as tf.Tensor3D;
  }

  /** A projection `x · W + b` (columns [from, to) of it), with its LoRA adapter when there is one. */
  project(x: tf.Tensor, prefix: string, cols?: [number, number]): tf.Tensor {
    if (this.constants) return this.constants.project(x, prefix, cols);
    let w = this.w(`${prefix}.weight`);
    let b = this.w(`${prefix}.bias`);
    const adapter = this.lora.get(`${prefix}.weight`);
    let loraB = adapter?.b as tf.Tensor | undefined;
    if (cols) {
      const [from, to] = cols;
      w = tf.slice(w, [0, from], [-1, to - from]);
      b = tf.slice(b, [from], [to - from]);
      if (loraB) loraB = tf.slice(loraB, [0, from], [-1, to - from]);
    }
    let y = linear(x, w, b);
    if (adapter && loraB) y = tf.add(y, tf.mul(linear(linear(x, adapter.a), loraB), adapter.scale));
    return y;
  }

  private ln(x: tf.Tensor, prefix: string): tf.Tensor {
    return layerNorm(x, this.w(`${prefix}.weight`), this.w(`${prefix}.bias`), this.config.layerNormEpsilon);
  }

  private mlp(x: tf.Tensor, layer: number): tf.Tensor {
    // The constant-weights view (input gradients) keeps less for the backward pass; training keeps tfjs's own gradient.
    const act = this.constants ? geluNewLean : geluNew;
    return this.project(act(this.project(x, `h.${layer}.mlp.c_fc`)), `h.${layer}.mlp.c_proj`);
  }

  /** [B, T, E] → [B·H, T, D]. */
  private heads(x: tf.Tensor, batch: number, width: number): tf.Tensor3D {
    const { nHead, nEmbd } = this.config;
    const d = nEmbd / nHead;
    return tf.reshape(tf.transpose(tf.reshape(x, [batch, width, nHead, d]), [0, 2, 1, 3]), [batch * nHead, width, d]);
  }

  /** Scaled dot-product attention of q [B·H, Tq, D] over k, v [B·H, T, D]; mask broadcasts to [B, H, Tq, T]. */
  private attend(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor, batch: number): tf.Tensor {
    const { nHead, nEmbd } = this.config;
    const d = nEmbd / nHead;
    const [, tq, tk] = [q.shape[0], q.shape[1], k.shape[1]];
    const scores = tf.reshape(tf.mul(matMul(q, swapLast(k)), 1 / Math.sqrt(d)), [batch, nHead, tq, tk]);
    const probs = tf.reshape(tf.softmax(tf.add(scores, mask)), [batch * nHead, tq, tk]);
    const out = tf.reshape(matMul(probs, v), [batch, nHead, tq, d]);
    return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch, tq, nEmbd]);
  }

  /** One transformer block over every position. `mask` broadcasts to [B, 1, T, T]. */
  block(layer: number, x: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
    const [batch, width] = x.shape;
    const p = `h.${layer}`;
    const qkv = this.project(this.ln(x, `${p}.ln_1`), `${p}.attn.c_attn`);
    const [q, k, v] = tf.split(qkv, 3, -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
    const att = this.attend(this.heads(q, batch, width), this.heads(k, batch, width), this.heads(v, batch, width), mask, batch);
    const h = tf.add(x, this.project(att, `${p}.attn.c_proj`));
    return tf.add(h, this.mlp(this.ln(h, `${p}.ln_2`), layer)) as tf.Tensor3D;
  }

  /**
   * One transformer block evaluated only at `positions[b]` of each row: returns [B, E], equal to
   * `block(layer, x, fullMask)[b, positions[b]]`. `keyMask` [B, 1, 1, T] says which keys that query may see.
   */
  blockAt(layer: number, x: tf.Tensor3D, positions: number[], keyMask: tf.Tensor): tf.Tensor2D {
    const [batch, width, e] = x.shape;
    const p = `h.${layer}`;
    const select = selectionMatrix(positions, width);
    const xFlat = tf.reshape(x, [batch * width, e]);
    const a = this.ln(x, `${p}.ln_1`);
    const aAt = matMul(select, tf.reshape(a, [batch * width, e]));
    const q = this.project(aAt, `${p}.attn.c_attn`, [0, e]);
    const kv = this.project(a, `${p}.attn.c_attn`, [e, 3 * e]);
    const [k, v] = tf.split(kv, 2, -1) as [tf.Tensor, tf.Tensor];
    const att = this.attend(this.heads(q, batch, 1), this.heads(k, batch, width), this.heads(v, batch, width), keyMask, batch);
    const h = tf.add(matMul(select, xFlat), this.project(tf.reshape(att, [batch, e]), `${p}.attn.c_proj`));
    return tf.add(h, this.mlp(this.ln(h, `${p}.ln_2`), layer)) as tf.Tensor2D;
  }

  /** Embeddings and blocks [0, upTo): the input of block `upTo`. */
  trunk(batch: TokenBatch, mode: AttentionMode, upTo = this.config.nLayer - 1): tf.Tensor3D {
    return this.blocksFrom(this.embed(batch.ids), batch.lengths, mode, upTo);
  }

  /** Blocks [0, upTo) over a block input x [B, T, E] (embeddings with positions); x is consumed (disposed). */
  blocksFrom(input: tf.Tensor3D, lengths: number[], mode: AttentionMode, upTo = this.config.nLayer - 1): tf.Tensor3D {
    let x = input;
    const width = x.shape[1];
    const mask = mode === 'causal' ? causalMask(width) : keyPaddingMask(lengths, width);
    // Each block's intermediates are freed as soon as it is done (gradients keep what they need), so the peak is
    // one block's worth, not upTo blocks': on wasm, whose heap cannot shrink or pass 4 GB, that decides how long a
    // batch fits at all.
    for (let l = 0; l < upTo; l++) {
      const input = x;
      x = tf.tidy(() => this.block(l, input, mask));
      input.dispose();
    }
    mask.dispose();
    return x;
  }

  /** ln_f(last block at one position per row), [B, E]: what a classification head reads. */
  finalHiddenAt(x: tf.Tensor3D, positions: number[], lengths: number[], mode: AttentionMode): tf.Tensor2D {
    const width = x.shape[1];
    const keys = mode === 'causal' ? causalRowMask(positions, width) : keyPaddingMask(lengths, width);
    const h = this.blockAt(this.config.nLayer - 1, x, positions, keys);
    return this.ln(h, 'ln_f') as tf.Tensor2D;
  }

  /** Final hidden states at every position, [B, T, E] (the full model; used for checks, not for classifying). */
  hiddenStates(batch: TokenBatch, mode: AttentionMode): tf.Tensor3D {
    const x = this.trunk(batch, mode, this.config.nLayer);
    return this.ln(x, 'ln_f') as tf.Tensor3D;
  }

  /** Tied LM head: next-token logits [B, V] for hidden states [B, E]. */
  lmLogits(hidden: tf.Tensor2D): tf.Tensor2D {
    // Only used for the sanity check (`model check`), so the transpose is made per call rather than kept.
    return tf.matMul(hidden, tf.transpose(this.w('wte.weight'))) as tf.Tensor2D;
  }
}

/** A [B, B·T] one-hot matrix picking row b·T + positions[b]: selecting by matMul keeps gradients on every backend. */
export function selectionMatrix(positions: number[], width: number): tf.Tensor2D {
  const b = positions.length;
  const data = new Float32Array(b * b * width);
  positions.forEach((p, r) => {
    if (p < 0 || p >= width) throw new Error(`position ${p} is outside a sequence of ${width}`);
    data[r * b * width + r * width + p] = 1;
  });
  return tf.tensor2d(data, [b, b * width]);
}

/** [1, 1, T, T]: position i may attend to 0..i. */
export function causalMask(width: number): tf.Tensor4D {
  return tf.tensor4d(causalMaskData(width), [1, 1, width, width]);
}

/** [B, 1, 1, T]: the query at positions[b] may attend to keys 0..positions[b]. */
export function causalRowMask(positions: number[], width: number): tf.Tensor4D {
  return tf.tensor4d(causalRowMaskData(positions, width), [positions.length, 1, 1, width]);
}

/** [B, 1, 1, T]: every query may attend to the real tokens of its row, never to padding. */
export function keyPaddingMask(lengths: number[], width: number): tf.Tensor4D {
  return tf.tensor4d(keyPaddingMaskData(lengths, width), [lengths.length, 1, 1, width]);
}

// The masks' values (0 where attention is allowed, MASKED where not), shared with the native graph's inputs.

export function causalMaskData(width: number): Float32Array {
  const data = new Float32Array(width * width);
  for (let i = 0; i < width; i++) for (let j = i + 1; j < width; j++) data[i * width + j] = MASKED;
  return data;
}

export function causalRowMaskData(positions: number[], width: number): Float32Array {
  const data = new Float32Array(positions.length * width);
  positions.forEach((p, r) => {
    for (let j = p + 1; j < width; j++) data[r * width + j] = MASKED;
  });
  return data;
}

export function keyPaddingMaskData(lengths: number[], width: number): Float32Array {
  const data = new Float32Array(lengths.length * width);
  lengths.forEach((n, r) => {
    for (let j = n; j < width; j++) data[r * width + j] = MASKED;
  });
  return data;
}
