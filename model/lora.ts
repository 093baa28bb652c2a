/**
 * A LoRA adapter (appendix E of the book): a low-rank update of one projection's weight. GPT2 applies its adapters
 * in the forward pass; ConstantProjections merges them into the weight for gradients with respect to the input;
 * GPT2Classifier creates them (`--layers lora`).
 */
import type * as tf from '@tensorflow/tfjs-core';

/** W_eff = W + scale · A · B, with A [in, rank] and B [rank, out]. */
export interface LoraAdapter {
  a: tf.Variable;
  b: tf.Variable;
  scale: number;
}
