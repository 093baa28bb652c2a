/**
 * GPT-2-124M-sized random weights for the benchmarks, initialised as GPT-2 is (token embeddings N(0, 0.02)), not as
 * gptspam's from-scratch models are (token embeddings zero, model/weights.ts): with zero embeddings every text
 * would read the same and an explanation would be zero everywhere, converging at once and timing nothing real.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT2_PRESETS } from '../../model/config.ts';
import { initGPT2, type GPT2Weights } from '../../model/weights.ts';

export function gpt2LikeWeights(seed: number): GPT2Weights {
  const w = initGPT2(GPT2_PRESETS['124M'], seed);
  const wte = w.tensors.get('wte.weight')!;
  w.tensors.set('wte.weight', tf.randomNormal(wte.shape, 0, 0.02, 'float32', seed + 1000));
  wte.dispose();
  return w;
}
