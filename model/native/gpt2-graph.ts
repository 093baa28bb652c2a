/**
 * The GPT-2 classifier's forward pass as an ONNX graph, op for op the computation of model/gpt2.ts and
 * model/classifier.ts (same LayerNorm epsilon, gelu_new, scale-then-mask attention, -1e9 for masked scores),
 * so the two runtimes agree to float32 rounding.
 *
 * Three cuts of the network, by what the caller needs:
 * - `trunk`: embeddings and blocks 0 … L−2, i.e. the input of the last block, [B, T, E] (what the trunk cache
 *   holds for `--layers last_block`);
 * - `pooled`: ln_f(last block at one position per row), [B, E] (the cache entry for `--layers last_layer`);
 * - `logits`: the classification head on top of `pooled`, [B, classes] (scoring).
 *
 * Inputs: `ids` int32 [B, T]; `mask` float32, added to the scores of blocks 0 … L−2 and broadcast to
 * [B, H, T, T] (causal [1, 1, T, T] or key padding [B, 1, 1, T]); for `pooled` and `logits` also `rows` int32 [B]
 * (row b·T + position of each row's pooled token in the flattened batch) and `row_mask` float32 [B, 1, 1, T]
 * (which keys that token may see).
 */
import type { GPT2Config } from '../config.ts';
import { DataType, OnnxGraph, type Weight } from './onnx-graph.ts';

export type GraphOutput = 'trunk' | 'pooled' | 'logits';

export interface Gpt2GraphSpec {
  config: GPT2Config;
  output: GraphOutput;
  /** Every tensor by its checkpoint name; `head.weight` in [E, classes] layout; LoRA as `lora.<weight name>.A` / `.B`. */
  weight: (name: string) => Weight;
  /** Weight names that carry a LoRA adapter, and the adapter scale (alpha). */
  lora?: { names: Set<string>; scale: number };
  numClasses?: number;
  /**
   * Blocks 0 … L−2 (the frozen trunk) multiply by int8 weights (`<name>.int8` [in, out], per-column scales
   * `<name>.scale` [out]) with activations quantized on the fly (com.microsoft DynamicQuantizeMatMul): faster,
   * not exact (see README).
   */
  int8Trunk?: boolean;
}

/** The pieces both graphs (this forward one, and integrated gradients' in gradient-graph.ts) are built from. */
export function gpt2GraphOps(g: OnnxGraph, spec: Omit<Gpt2GraphSpec, 'output'>) {
  const { config } = spec;
  const { nEmbd: e, nHead: h, nLayer } = config;
  const d = e / h;
  const used = new Set<string>();
  /** A weight by name, added to the graph at its first use. */
  const w = (name: string) => {
    if (!used.has(name)) g.weight(name, spec.weight(name));
    used.add(name);
    return name;
  };
  const f32 = (x: number) => g.constant([x], DataType.FLOAT, []);

  const layerNormOutputs = (x: string, prefix: string, outputs: number) =>
    g.nodeN('LayerNormalization', [x, w(`${prefix}.weight`), w(`${prefix}.bias`)], { axis: -1, epsilon: { f: config.layerNormEpsilon } }, outputs);
  /** LayerNorm over the last axis. */
  const layerNorm = (x: string, prefix: string) => layerNormOutputs(x, prefix, 1)[0]!;
  /** LayerNorm over the last axis, with its Mean and InvStdDev ([…, 1]) for a backward pass. */
  const layerNormN = (x: string, prefix: string) => layerNormOutputs(x, prefix, 3) as [string, string, string];

  /** x · W + b, plus its LoRA update scale · (x · A) · B when the weight has one. */
  const project = (x: string, prefix: string) => {
    const name = `${prefix}.weight`;
    const layer = Number(/^h\.(\d+)\./.exec(prefix)?.[1]);
    const product = spec.int8Trunk && layer < nLayer - 1
      ? g.node('DynamicQuantizeMatMul', [x, w(`${name}.int8`), w(`${name}.scale`)], {}, 'com.microsoft')
      : g.node('MatMul', [x, w(name)]);
    let y = g.node('Add', [product, w(`${prefix}.bias`)]);
    if (spec.lora?.names.has(name)) {
      const update = g.node('MatMul', [g.node('MatMul', [x, w(`lora.${name}.A`)]), w(`lora.${name}.B`)]);
      y = g.node('Add', [y, g.node('Mul', [update, f32(spec.lora.scale)])]);
    }
    return y;
  };

  const splitSizes = g.constant([e, e, e]);
  const headShape = g.constant([0, 0, h, d]);
  const mergedShape = g.constant([0, 0, e]);
  const scale = f32(1 / Math.sqrt(d));

  /** Attention probabilities of q [B, H, Tq, D] over k [B, H, D, T] (already transposed). */
  const attentionWeights = (q: string, kT: string, addMask: string) =>
    g.node('Softmax', [g.node('Add', [g.node('Mul', [g.node('MatMul', [q, kT]), scale]), addMask])], { axis: -1 });
  /** Scaled dot-product attention of q [B, H, Tq, D] over k [B, H, D, T] (already transposed) and v [B, H, T, D]. */
  const attend = (q: string, kT: string, v: string, addMask: string) => g.node('MatMul', [attentionWeights(q, kT, addMask), v]);
  /** [B, T, E] → [B, H, T, D] (perm [0, 2, 1, 3]) or [B, H, D, T] (perm [0, 2, 3, 1]). */
  const heads = (x: string, perm: number[]) => g.node('Transpose', [g.node('Reshape', [x, headShape])], { perm });
  /** [B, H, T, D] → [B, T, E]. */
  const merge = (x: string) => g.node('Reshape', [g.node('Transpose', [x], { perm: [0, 2, 1, 3] }), mergedShape]);
  const mlp = (x: string, layer: number) =>
    project(g.node('Gelu', [project(x, `h.${layer}.mlp.c_fc`)], { approximate: 'tanh' }), `h.${layer}.mlp.c_proj`);
  /** wpe[0 … T) for the width of `ids`. */
  const positions = (ids: string) => g.node('Slice', [w('wpe.weight'), g.constant([0]), g.node('Shape', [ids], { start: 1, end: 2 }), g.constant([0])]);

  return { w, f32, layerNorm, layerNormN, project, splitSizes, scale, attentionWeights, attend, heads, merge, mlp, positions };
}

export function buildGpt2Graph(spec: Gpt2GraphSpec): OnnxGraph {
  const { config, output } = spec;
  const { nEmbd: e, nHead: h, nLayer } = config;
  const d = e / h;
  const g = new OnnxGraph(`gpt2_${output}`);
  const { w, layerNorm, project, splitSizes, attend, heads, merge, mlp, positions } = gpt2GraphOps(g, spec);

  const ids = g.input('ids', DataType.INT32, ['batch', 'width']);
  const mask = g.input('mask', DataType.FLOAT, ['mask_batch', 1, 'mask_rows', 'width']);

  // x = wte[ids] + wpe[0 … T)
  let x = g.node('Add', [g.node('Gather', [w('wte.weight'), ids], { axis: 0 }), positions(ids)]);

  for (let layer = 0; layer < nLayer - 1; layer++) {
    const p = `h.${layer}`;
    const [q, k, v] = g.nodeN('Split', [project(layerNorm(x, `${p}.ln_1`), `${p}.attn.c_attn`), splitSizes], { axis: -1 }, 3) as [string, string, string];
    const att = attend(heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1]), heads(v, [0, 2, 1, 3]), mask);
    const hid = g.node('Add', [x, project(merge(att), `${p}.attn.c_proj`)]);
    x = g.node('Add', [hid, mlp(layerNorm(hid, `${p}.ln_2`), layer)]);
  }
  if (output === 'trunk') {
    g.output('hidden', x, DataType.FLOAT, ['batch', 'width', e]);
    return g;
  }

  // The last block at one position per row (model/gpt2.ts blockAt): keys and values for every position, the
  // rest for the pooled one.
  const rows = g.input('rows', DataType.INT32, ['batch']);
  const rowMask = g.input('row_mask', DataType.FLOAT, ['batch', 1, 1, 'width']);
  const last = nLayer - 1;
  const p = `h.${last}`;
  const qkv = project(layerNorm(x, `${p}.ln_1`), `${p}.attn.c_attn`);
  const [, k, v] = g.nodeN('Split', [qkv, splitSizes], { axis: -1 }, 3) as [string, string, string];
  const pick = (t: string, cols: number) => g.node('Gather', [g.node('Reshape', [t, g.constant([-1, cols])]), rows], { axis: 0 });
  const qAt = g.node('Slice', [pick(qkv, 3 * e), g.constant([0]), g.constant([e]), g.constant([1])]);
  const q = g.node('Transpose', [g.node('Reshape', [qAt, g.constant([-1, 1, h, d])])], { perm: [0, 2, 1, 3] });
  const att = attend(q, heads(k, [0, 2, 3, 1]), heads(v, [0, 2, 1, 3]), rowMask);
  const merged = g.node('Reshape', [g.node('Transpose', [att], { perm: [0, 2, 1, 3] }), g.constant([-1, e])]);
  const hid = g.node('Add', [pick(x, e), project(merged, `${p}.attn.c_proj`)]);
  const pooled = layerNorm(g.node('Add', [hid, mlp(layerNorm(hid, `${p}.ln_2`), last)]), 'ln_f');
  if (output === 'pooled') {
    g.output('pooled', pooled, DataType.FLOAT, ['batch', e]);
    return g;
  }
  const classes = spec.numClasses ?? 2;
  const logits = g.node('Add', [g.node('MatMul', [pooled, w('head.weight')]), w('head.bias')]);
  g.output('logits', logits, DataType.FLOAT, ['batch', classes]);
  return g;
}
