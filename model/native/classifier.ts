/**
 * A GPT-2 classifier (or its frozen trunk) running on ONNX Runtime: token ids in, logits or trunk-cache entries
 * out, with the padding, pooling and masks of the tfjs path (model/classifier.ts, model/features.ts), so either
 * runtime's results can stand in for the other's.
 */
import { open } from 'node:fs/promises';
import type { ClassifierOptions, Pooling } from '../classifier.ts';
import { poolPositions } from '../classifier.ts';
import type { GPT2Config } from '../config.ts';
import type { EncodedExample } from '../examples.ts';
import type { TrunkFiller } from '../features.ts';
import { causalMaskData, causalRowMaskData, keyPaddingMaskData } from '../gpt2.ts';
import type { LogitsSource } from '../scorer.ts';
import { padBatch } from '../tokenizer.ts';
import type { CachedEntry } from '../trunk-cache.ts';
import { buildGpt2Graph, type GraphOutput } from './gpt2-graph.ts';
import { bytesOf, DataType, type Weight } from './onnx-graph.ts';
import { NativeSession, type FeedTensor, type NativeRuntime } from './runtime.ts';
import type { NativeModelWeights } from './weights.ts';

export class NativeClassifier implements LogitsSource, TrunkFiller {
  private constructor(
    private readonly session: NativeSession,
    readonly config: GPT2Config,
    readonly options: ClassifierOptions,
    readonly output: GraphOutput,
  ) {}

  /**
   * Builds the graph for `output` from `model`'s weights and opens a session on it. The encoded graph (inline
   * weights included) is dropped once the session holds the weights, so only the runtime's copy stays.
   */
  static async create(rt: NativeRuntime, model: NativeModelWeights, output: GraphOutput, opts: { int8Trunk?: boolean } = {}): Promise<NativeClassifier> {
    const { config, options } = model;
    let { weights } = model;
    const frozenTrunk = options.layers === 'last_block' || options.layers === 'last_layer';
    if (output !== 'logits' && !frozenTrunk) {
      throw new Error(`a native trunk needs a frozen trunk (layers last_block or last_layer), not ${options.layers}`);
    }
    const int8Trunk = (opts.int8Trunk ?? rt.int8Trunk) && frozenTrunk;
    if (int8Trunk) weights = await quantizeTrunk(weights, config.nLayer);
    const weight = (name: string): Weight => {
      const w = weights.get(name);
      if (!w) throw new Error(`native graph: weight "${name}" was not provided`);
      return w;
    };
    const graph = buildGpt2Graph({
      config,
      output,
      weight,
      numClasses: options.numClasses,
      int8Trunk,
      ...(options.layers === 'lora' ? { lora: { names: loraNames(weights), scale: options.loraAlpha } } : {}),
    });
    const encoded = await graph.encode(readRegion);
    const session = await NativeSession.create(rt, encoded);
    return new NativeClassifier(session, config, options, output);
  }

  get pooling(): Pooling {
    return this.options.pooling;
  }

  /** Runs one padded batch; `width` fixes the padding width (for `last` pooling), else the batch's longest. */
  private async run(seqs: number[][], width?: number) {
    const p = padBatch(seqs, width);
    if (p.width > this.config.nPositions) {
      throw new Error(`sequence of ${p.width} tokens exceeds the model's context of ${this.config.nPositions}`);
    }
    const causal = this.options.attention === 'causal';
    const feeds: Record<string, FeedTensor> = {
      ids: { type: 'int32', data: p.ids, dims: [p.rows, p.width] },
      mask: attentionMask(this.options.attention, p.lengths, p.width),
    };
    if (this.output !== 'trunk') {
      const positions = poolPositions(this.options.pooling, p.lengths, p.width);
      feeds.rows = { type: 'int32', data: Int32Array.from(positions, (pos, r) => r * p.width + pos), dims: [p.rows] };
      feeds.row_mask = {
        type: 'float32',
        data: causal ? causalRowMaskData(positions, p.width) : keyPaddingMaskData(p.lengths, p.width),
        dims: [p.rows, 1, 1, p.width],
      };
    }
    const name = this.output === 'trunk' ? 'hidden' : this.output;
    const out = (await this.session.run(feeds, [name])).get(name)!;
    return { out, padded: p };
  }

  /** Raw class logits of each sequence (LogitsSource). */
  async batchLogits(seqs: number[][], width?: number): Promise<number[][]> {
    if (this.output !== 'logits') throw new Error(`this native model computes ${this.output}, not logits`);
    const { out } = await this.run(seqs, width);
    const c = out.dims[1]!;
    return seqs.map((_, r) => Array.from(out.data.subarray(r * c, (r + 1) * c)));
  }

  /**
   * Trunk-cache entries for a batch (TrunkFiller): what CachedFeatures stores for each message, the block input
   * at its real positions (`last_block`; the whole fixed width for `last` pooling) or its pooled final hidden state
   * (`last_layer`).
   */
  async trunkEntries(examples: EncodedExample[], width?: number): Promise<CachedEntry[]> {
    const { out, padded } = await this.run(examples.map((e) => e.ids), width);
    const e = this.config.nEmbd;
    if (this.output === 'pooled') return examples.map((_, r) => ({ rows: 1, data: out.data.slice(r * e, (r + 1) * e) }));
    if (this.output !== 'trunk') throw new Error('this native model computes logits, not trunk entries');
    const w = padded.width;
    return examples.map((ex, r) => {
      const rows = this.options.pooling === 'last' ? w : Math.max(1, Math.min(ex.ids.length, w));
      return { rows, data: out.data.slice(r * w * e, (r * w + rows) * e) };
    });
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

/** The additive mask of blocks' attention: causal [1, 1, T, T], or the padding keys of each row [rows, 1, 1, T]. */
export function attentionMask(attention: ClassifierOptions['attention'], lengths: number[], width: number): FeedTensor {
  return attention === 'causal'
    ? { type: 'float32', data: causalMaskData(width), dims: [1, 1, width, width] }
    : { type: 'float32', data: keyPaddingMaskData(lengths, width), dims: [lengths.length, 1, 1, width] };
}

export function loraNames(weights: Map<string, Weight>): Set<string> {
  const names = new Set<string>();
  for (const key of weights.keys()) {
    const m = /^lora\.(.+)\.A$/.exec(key);
    if (m) names.add(m[1]!);
  }
  return names;
}

/**
 * The frozen trunk's projection weights (blocks 0 … L−2) as int8 with one symmetric scale per output column
 * (scale = max |w| / 127), read one tensor at a time; the float32 originals are left out of the model.
 */
async function quantizeTrunk(weights: Map<string, Weight>, nLayer: number): Promise<Map<string, Weight>> {
  const out = new Map(weights);
  for (const [name, w] of weights) {
    const m = /^h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.exec(name);
    if (!m || Number(m[1]) >= nLayer - 1) continue;
    const bytes = w.data.kind === 'inline' ? w.data.bytes : await readRegion(w.data);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const [rows, cols] = w.dims as [number, number];
    const scale = new Float32Array(cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) scale[j] = Math.max(scale[j]!, Math.abs(f[i * cols + j]!));
    for (let j = 0; j < cols; j++) scale[j] = scale[j]! / 127 || 1;
    const q = new Int8Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) q[i * cols + j] = Math.round(f[i * cols + j]! / scale[j]!);
    out.delete(name);
    out.set(`${name}.int8`, { dims: [rows, cols], type: DataType.INT8, data: { kind: 'inline', bytes: bytesOf(q) } });
    out.set(`${name}.scale`, { dims: [cols], type: DataType.FLOAT, data: { kind: 'inline', bytes: bytesOf(scale) } });
  }
  return out;
}

/** A file weight outside the model's external-data folder, read into the model. */
export async function readRegion(region: { path: string; offset: number; length: number }): Promise<Uint8Array> {
  const f = await open(region.path, 'r');
  try {
    const bytes = new Uint8Array(region.length);
    const { bytesRead } = await f.read(bytes, 0, region.length, region.offset);
    if (bytesRead !== region.length) throw new Error(`${region.path}: file ended after ${bytesRead} of ${region.length} bytes at offset ${region.offset}`);
    return bytes;
  } finally {
    await f.close();
  }
}
