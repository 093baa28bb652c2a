/** GPT-2 architecture hyper-parameters, read from a Hugging Face config.json or inferred from weight shapes. */
import { z } from 'zod';

const positiveInt = z.number().int().min(1);

/** A schema, because checkpoints record the configuration of their base (model/checkpoint.ts). */
export const gpt2ConfigSchema = z.object({
  vocabSize: positiveInt,
  /** Context length (learned position embeddings). */
  nPositions: positiveInt,
  nEmbd: positiveInt,
  nLayer: positiveInt,
  nHead: positiveInt,
  layerNormEpsilon: z.number().positive(),
});
export type GPT2Config = z.infer<typeof gpt2ConfigSchema>;

export const GPT2_PRESETS = {
  /** The 124M model ("gpt2-small"). */
  '124M': { vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEpsilon: 1e-5 },
  '355M': { vocabSize: 50257, nPositions: 1024, nEmbd: 1024, nLayer: 24, nHead: 16, layerNormEpsilon: 1e-5 },
  '774M': { vocabSize: 50257, nPositions: 1024, nEmbd: 1280, nLayer: 36, nHead: 20, layerNormEpsilon: 1e-5 },
  '1558M': { vocabSize: 50257, nPositions: 1024, nEmbd: 1600, nLayer: 48, nHead: 25, layerNormEpsilon: 1e-5 },
} as const satisfies Record<string, GPT2Config>;

/** Architectures for training without pretrained weights (`--scratch --size`). */
export const SCRATCH_SIZES = {
  small: GPT2_PRESETS['124M'],
  /** Small enough to train on a laptop CPU in minutes. */
  tiny: { vocabSize: 50257, nPositions: 256, nEmbd: 64, nLayer: 2, nHead: 4, layerNormEpsilon: 1e-5 },
} as const satisfies Record<string, GPT2Config>;
export type ScratchSize = keyof typeof SCRATCH_SIZES;
export const SCRATCH_SIZE_NAMES = Object.keys(SCRATCH_SIZES) as [ScratchSize, ...ScratchSize[]];

/** Converts a Hugging Face GPT-2 config.json object. */
export function configFromHuggingFace(json: Record<string, unknown>, where = 'config.json'): GPT2Config {
  const num = (key: string, alt?: string, fallback?: number): number => {
    const v = json[key] ?? (alt ? json[alt] : undefined) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new Error(`${where}: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const cfg: GPT2Config = {
    vocabSize: num('vocab_size'),
    nPositions: num('n_positions', 'n_ctx'),
    nEmbd: num('n_embd'),
    nLayer: num('n_layer'),
    nHead: num('n_head'),
    layerNormEpsilon: num('layer_norm_epsilon', undefined, 1e-5),
  };
  checkConfig(cfg, where);
  return cfg;
}

/**
 * Infers the configuration from tensor shapes. The head count is not visible in any shape: the official sizes
 * are recognised by their width, anything else assumes GPT-2's head size of 64.
 */
export function inferConfig(shapes: { wte: number[]; wpe: number[]; nLayer: number }): GPT2Config {
  const [vocabSize, nEmbd] = shapes.wte as [number, number];
  const [nPositions] = shapes.wpe as [number];
  const preset = Object.values(GPT2_PRESETS).find((p) => p.nEmbd === nEmbd && p.nLayer === shapes.nLayer);
  const nHead = preset ? preset.nHead : Math.max(1, Math.round(nEmbd / 64));
  const cfg = { vocabSize, nPositions, nEmbd, nLayer: shapes.nLayer, nHead, layerNormEpsilon: 1e-5 };
  checkConfig(cfg, 'weights');
  return cfg;
}

export function checkConfig(cfg: GPT2Config, where: string): void {
  if (cfg.nEmbd % cfg.nHead !== 0) {
    throw new Error(`${where}: n_embd ${cfg.nEmbd} is not divisible by n_head ${cfg.nHead}`);
  }
}

/** Number of parameters of the backbone (embeddings, blocks, final LayerNorm). */
export function parameterCount(cfg: GPT2Config): number {
  const e = cfg.nEmbd;
  const block = 2 * 2 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * 4 * e + 4 * e) + (4 * e * e + e);
  return cfg.vocabSize * e + cfg.nPositions * e + cfg.nLayer * block + 2 * e;
}
