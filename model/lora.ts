/** A LoRA adapter on one projection (appendix E of the book): W_eff = W + scale · A · B. */
import type * as tf from '@tensorflow/tfjs-core';

export interface LoraAdapter {
  a: tf.Variable;
  b: tf.Variable;
  scale: number;
}
