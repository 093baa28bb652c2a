/**
 * Integrated gradients' integrand on ONNX Runtime (the graph of gradient-graph.ts), for the quadrature of
 * model/explain.ts: the same numbers as the tfjs source (model/path-gradients.ts), several times faster on a CPU.
 */
import { poolPositions, type ClassifierOptions } from '../classifier.ts';
import type { GPT2Config } from '../config.ts';
import type { PathGradients, PathPoints } from '../path-gradients.ts';
import { buildGradientGraph } from './gradient-graph.ts';
import { attentionMask, loraNames, readRegion } from './classifier.ts';
import type { Weight } from './onnx-graph.ts';
import { NativeSession, type NativeRuntime } from './runtime.ts';
import type { NativeModelWeights } from './weights.ts';

/** Activations a batch may keep for its backward pass (the runtime's arena, not a wasm heap: no hard limit). */
const BATCH_BYTES = 1024 ** 3;
const MAX_ROWS = 8;

export class NativePathGradients implements PathGradients {
  private constructor(
    private readonly session: NativeSession,
    readonly config: GPT2Config,
    private readonly options: ClassifierOptions,
  ) {}

  /** Builds the graph from `model`'s weights (checkpointWeights / classifierWeights with output `logits`). */
  static async create(rt: NativeRuntime, model: NativeModelWeights): Promise<NativePathGradients> {
    const { config, options, weights } = model;
    const weight = (name: string): Weight => {
      const w = weights.get(name);
      if (!w) throw new Error(`native gradient graph: weight "${name}" was not provided`);
      return w;
    };
    const graph = buildGradientGraph({
      config,
      weight,
      numClasses: options.numClasses,
      ...(options.layers === 'lora' ? { lora: { names: loraNames(weights), scale: options.loraAlpha } } : {}),
    });
    const session = await NativeSession.create(rt, await graph.encode(readRegion));
    return new NativePathGradients(session, config, options);
  }

  get numClasses(): number {
    return this.options.numClasses;
  }

  /** As many rows as keep a pass's saved activations (per layer: ~12 E + 2 H·T floats per token) under BATCH_BYTES. */
  rowsPerBatch(width: number): number {
    const { nEmbd, nHead, nLayer } = this.config;
    const perRow = nLayer * width * (12 * nEmbd + 2 * nHead * width) * 4;
    return Math.max(1, Math.min(MAX_ROWS, Math.floor(BATCH_BYTES / perRow)));
  }

  async alongPath(input: number[], length: number, alphas: number[], classes: { positive: number; negative: number }): Promise<PathPoints> {
    const width = input.length;
    if (width > this.config.nPositions) throw new Error(`sequence of ${width} tokens exceeds the model's context of ${this.config.nPositions}`);
    const pool = new Float32Array(width);
    pool[poolPositions(this.options.pooling, [length], width)[0]!] = 1;
    const direction = new Float32Array(this.numClasses);
    direction[classes.positive] = 1;
    direction[classes.negative] = -1;
    const out = await this.session.run({
      ids: { type: 'int32', data: Int32Array.from(input), dims: [1, width] },
      alpha: { type: 'float32', data: Float32Array.from(alphas), dims: [alphas.length, 1, 1] },
      mask: attentionMask(this.options.attention, [length], width),
      pool: { type: 'float32', data: pool, dims: [1, width, 1] },
      direction: { type: 'float32', data: direction, dims: [this.numClasses, 1] },
    });
    return { margins: out.get('margin')!.data, grads: out.get('grad')!.data, tok: out.get('tok')!.data };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
