/**
 * The tensor operations of GPT-2, written so that their gradients never use a transposed matMul.
 *
 * On the wasm backend `tf.matMul(a, b, transposeA, transposeB)` is 12-45x slower than a plain product
 * (measured here), and tfjs's built-in matMul gradient uses exactly those. The custom gradients below transpose
 * explicitly and multiply plainly instead: the same numbers, a fraction of the time.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions; this registers its own (see bin/vendor-tfjs-gradients.mjs).
import './vendor/tfjs-core-gradients.js';

/** a [.., m, k] · b [.., k, n] with batch dims equal; gradients via explicit transposes. */
type CustomArgs = Array<tf.Tensor | tf.GradSaveFunc>;

export const matMul: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.customGrad((...args: CustomArgs) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
      return [gradOfA(dy, sb), tf.matMul(swapLast(sa), dy)];
    },
  };
});

/**
 * dA = dy · bᵀ for dy [M, N], b [K, N]. With few rows (a training batch read at one position per message) it is
 * far cheaper as (b · dyᵀ)ᵀ: transposing the weight b and packing that fresh matrix for XNNPACK costs more
 * than the product (768×3072, M = 8: 31 ms against 0.7 ms on wasm); the two small transposes cost little.
 */
export function gradOfA(dy: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (dy.rank === 2 && b.rank === 2) {
    const [m, n] = dy.shape as [number, number];
    const k = b.shape[0]!;
    if (m * (n + k) < k * n) return tf.transpose(tf.matMul(b, tf.transpose(dy)));
  }
  return tf.matMul(dy, swapLast(b));
}

/** Transposes the last two axes. */
export function swapLast(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/**
 * y = x · w + b for x of any rank (the last axis is the input features), w [in, out] (GPT-2's Conv1D layout).
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1]!;
  const outDim = w.shape[1]!;
  const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inDim]);
  let y = matMul(flat, w);
  if (b) y = tf.add(y, b);
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm. */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gain), bias);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GPT-2's "gelu_new": the tanh approximation of GELU. */
export function geluNew(u: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(u, tf.mul(tf.mul(tf.mul(u, u), u), 0.044715)), GELU_C);
  return tf.mul(tf.mul(u, 0.5), tf.add(tf.tanh(inner), 1));
}

/**
 * gelu_new with its derivative written out, keeping only its input and its tanh for the backward pass: tfjs
 * would keep the nine intermediates of `geluNew` (the MLP's [T, 4E] activations are most of a block's memory),
 * and tanh, slow on wasm, is not computed again. Used for input gradients (integrated gradients), where memory
 * decides how many tokens fit in one batch.
 */
export const geluNewLean: (u: tf.Tensor) => tf.Tensor = tf.customGrad((...args: CustomArgs) => {
  const [u, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const t = tf.tanh(tf.mul(tf.add(u, tf.mul(tf.mul(tf.mul(u, u), u), 0.044715)), GELU_C));
  save([u, t]);
  return {
    value: tf.mul(tf.mul(u, 0.5), tf.add(t, 1)),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [x, th] = saved as [tf.Tensor, tf.Tensor];
      // d/du 0.5·u·(1 + tanh z), z = c·(u + 0.044715·u³): 0.5·(1 + tanh z) + 0.5·u·(1 − tanh² z)·c·(1 + 3·0.044715·u²)
      const outer = tf.mul(tf.add(th, 1), 0.5);
      const inner = tf.mul(tf.mul(tf.mul(x, 0.5 * GELU_C), tf.sub(1, tf.mul(th, th))), tf.add(tf.mul(tf.mul(x, x), 3 * 0.044715), 1));
      return [tf.mul(dy, tf.add(outer, inner))];
    },
  };
});

/**
 * Embedding lookup whose gradient is a scatter-add (the wasm backend has no UnsortedSegmentSum kernel, which
 * tfjs's own gather gradient needs). Only used when the embeddings are trained.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: CustomArgs) => {
    const t = args[0] as tf.Tensor;
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor) => {
        const e = table.shape[1];
        return [tf.scatterND(tf.reshape(ids, [-1, 1]), tf.reshape(dy, [-1, e]), table.shape)];
      },
    };
  });
  return f(table);
}
