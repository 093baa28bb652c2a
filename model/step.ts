/** One optimisation step of the classifier: loss, gradients of the trained tensors, AdamW update. */
import * as tf from '@tensorflow/tfjs-core';
import type { AdamW } from './adamw.ts';
import { crossEntropy, type FrozenFeatures, type GPT2Classifier } from './classifier.ts';

/** Loss and gradients (keyed by trainable-tensor name) for one batch of frozen features. Caller disposes the grads. */
export function lossAndGrads(
  clf: GPT2Classifier,
  features: FrozenFeatures,
  labels: number[],
): { loss: number; grads: Map<string, tf.Tensor> } {
  const vars = clf.trainableVariables();
  const names = [...vars.keys()];
  const { value, grads } = tf.variableGrads(() => crossEntropy(clf.logitsFromFeatures(features), labels), [...vars.values()]);
  const loss = value.dataSync()[0]!;
  value.dispose();
  const byName = new Map<string, tf.Tensor>();
  // variableGrads keys gradients by the variables' unique names; map them back to the tensor names.
  for (const name of names) {
    const g = grads[vars.get(name)!.name];
    if (g) byName.set(name, g);
  }
  return { loss, grads: byName };
}

/** Computes gradients and applies one AdamW step; returns the batch loss before the step. */
export function trainStep(clf: GPT2Classifier, optimizer: AdamW, features: FrozenFeatures, labels: number[]): number {
  const { loss, grads } = lossAndGrads(clf, features, labels);
  optimizer.apply(grads);
  for (const g of grads.values()) g.dispose();
  return loss;
}
