/**
 * AdamW exactly as torch.optim.AdamW (decoupled weight decay applied before the Adam update, bias-corrected
 * moments, eps added after the correction of sqrt(v)), applied to every trained tensor, biases and LayerNorm
 * parameters included, as the chapter does.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export const DEFAULT_ADAMW: AdamWOptions = { lr: 5e-5, weightDecay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export class AdamW {
  readonly options: AdamWOptions;
  /** Steps taken so far (t in the update rule, counted from 1 at the first step). */
  step = 0;
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    options: Partial<AdamWOptions> = {},
  ) {
    this.options = { ...DEFAULT_ADAMW, ...options };
  }

  /** One update with the given gradients (keyed like the parameters; a parameter without gradient is skipped). */
  apply(grads: Map<string, tf.Tensor> | Record<string, tf.Tensor>): void {
    const g = grads instanceof Map ? grads : new Map(Object.entries(grads));
    const { lr, weightDecay, beta1, beta2, eps } = this.options;
    this.step += 1;
    const t = this.step;
    const stepSize = lr / (1 - beta1 ** t);
    const sqrtBias2 = Math.sqrt(1 - beta2 ** t);
    for (const [name, p] of this.params) {
      const grad = g.get(name);
      if (!grad) continue;
      const [m, v] = tf.tidy(() => {
        const mPrev = this.m.get(name) ?? tf.zerosLike(p);
        const vPrev = this.v.get(name) ?? tf.zerosLike(p);
        const m = tf.add(tf.mul(mPrev, beta1), tf.mul(grad, 1 - beta1));
        const v = tf.add(tf.mul(vPrev, beta2), tf.mul(tf.square(grad), 1 - beta2));
        const decayed = tf.mul(p, 1 - lr * weightDecay);
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBias2), eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        return [m, v];
      });
      this.m.get(name)?.dispose();
      this.v.get(name)?.dispose();
      this.m.set(name, m);
      this.v.set(name, v);
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
