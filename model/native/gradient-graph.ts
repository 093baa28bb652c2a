/**
 * Integrated gradients' integrand on ONNX Runtime: the classifier's logit margin F = logit[positive] −
 * logit[negative] at points α·e of the straight path from the zero baseline to a text's token embeddings e, and
 * the gradient ∂F/∂(α·e), for several α in one batch (model/explain.ts does the quadrature).
 *
 * ONNX Runtime's inference build has no automatic differentiation, so the backward pass is written out here op by
 * op, in reverse order of the forward one, for the input only (weights are constants: no weight gradient). The
 * forward pass is the graph of gpt2-graph.ts except that the last block runs at every position (its backward pass
 * then reads like every other block's; only the pooled position's output is read). Per block, with x its input:
 *
 *     a = LN₁(x);  q, k, v = a·W_qkv + b;  P = softmax(q kᵀ/√d + mask);  h = x + (P v)·W_o + b
 *     m = LN₂(h);  f = m·W_fc + b;  x' = h + gelu(f)·W_pr + b
 *
 * and backward, from dx' (∂F/∂x'):
 *
 *     dh = dx' + LN₂ᵀ(h, (gelu'(f) ⊙ (dx'·W_prᵀ))·W_fcᵀ)
 *     dO = dh·W_oᵀ;  dP = dO vᵀ;  dv = Pᵀ dO;  dS = P ⊙ (dP − rowsum(dP ⊙ P)) / √d;  dq = dS k;  dk = dSᵀ q
 *     dx = dh + LN₁ᵀ(x, [dq dk dv]·W_qkvᵀ)
 *
 * where LNᵀ(x, g) = σ⁻¹ (γg − mean(γg) − x̂ · mean(γg ⊙ x̂)) is LayerNorm's input gradient (x̂ the normalised x).
 * The product with a transposed weight is a Gemm with transB on the flattened rows: no transposed copy of W.
 *
 * Inputs: `ids` int32 [1, T] (one text); `alpha` float32 [B, 1, 1] (the path points); `mask` float32 [1, 1, T, T]
 * (causal) or [1, 1, 1, T] (key padding); `pool` float32 [1, T, 1], 1 at the pooled position, else 0;
 * `direction` float32 [classes, 1], +1 for the positive class, −1 for the negative one, else 0 (F = logits · it).
 * Outputs: `margin` [B]; `grad` [B, T, E], ∂F/∂(α·e); `tok` [1, T, E], e itself (wte[ids]).
 */
import { DataType, OnnxGraph } from './onnx-graph.ts';
import { gpt2GraphOps, type Gpt2GraphSpec } from './gpt2-graph.ts';

export type GradientGraphSpec = Omit<Gpt2GraphSpec, 'output' | 'int8Trunk'>;

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_K = 0.044715;

export function buildGradientGraph(spec: GradientGraphSpec): OnnxGraph {
  const { config } = spec;
  const { nEmbd: e, nLayer } = config;
  const g = new OnnxGraph('gpt2_margin_gradient');
  const { w, f32, layerNormN, project, splitSizes, scale, attentionWeights, heads, merge, positions } = gpt2GraphOps(g, spec);

  const ids = g.input('ids', DataType.INT32, [1, 'width']);
  const alpha = g.input('alpha', DataType.FLOAT, ['batch', 1, 1]);
  const mask = g.input('mask', DataType.FLOAT, [1, 1, 'mask_rows', 'width']);
  const pool = g.input('pool', DataType.FLOAT, [1, 'width', 1]);
  const direction = g.input('direction', DataType.FLOAT, ['classes', 1]);
  const lastAxis = g.constant([-1]);
  const one = f32(1);

  // Forward, keeping what the backward pass reads.
  const tok = g.node('Gather', [w('wte.weight'), ids], { axis: 0 });
  let x = g.node('Add', [g.node('Mul', [alpha, tok]), positions(ids)]);
  const rowsShape = g.node('Shape', [x], { start: 0, end: 2 });
  const saved = [];
  for (let layer = 0; layer < nLayer; layer++) {
    const p = `h.${layer}`;
    const [a, mean1, istd1] = layerNormN(x, `${p}.ln_1`);
    const [q, k, v] = g.nodeN('Split', [project(a, `${p}.attn.c_attn`), splitSizes], { axis: -1 }, 3) as [string, string, string];
    const qh = heads(q, [0, 2, 1, 3]);
    const kT = heads(k, [0, 2, 3, 1]);
    const vh = heads(v, [0, 2, 1, 3]);
    const probs = attentionWeights(qh, kT, mask);
    const h = g.node('Add', [x, project(merge(g.node('MatMul', [probs, vh])), `${p}.attn.c_proj`)]);
    const [m, mean2, istd2] = layerNormN(h, `${p}.ln_2`);
    const f = project(m, `${p}.mlp.c_fc`);
    saved.push({ x, mean1, istd1, qh, kT, vh, probs, h, mean2, istd2, f });
    x = g.node('Add', [h, project(g.node('Gelu', [f], { approximate: 'tanh' }), `${p}.mlp.c_proj`)]);
  }
  const [z, meanF, istdF] = layerNormN(x, 'ln_f');
  const pooled = g.node('ReduceSum', [g.node('Mul', [z, pool]), g.constant([1])], { keepdims: 0 });
  const logits = g.node('Add', [g.node('MatMul', [pooled, w('head.weight')]), w('head.bias')]);
  const margin = g.node('MatMul', [logits, direction]);

  /** dy · Wᵀ for dy [B, T, out] and the projection's W [in, out], with its LoRA adapter's part. */
  const timesWeightT = (dy: string, prefix: string) => {
    const name = `${prefix}.weight`;
    const [inDim, outDim] = spec.weight(name).dims as [number, number];
    const flat = g.node('Reshape', [dy, g.constant([-1, outDim])]);
    let dx = g.node('Gemm', [flat, w(name)], { transB: 1 });
    if (spec.lora?.names.has(name)) {
      const viaB = g.node('Gemm', [flat, w(`lora.${name}.B`)], { transB: 1 });
      dx = g.node('Add', [dx, g.node('Gemm', [viaB, w(`lora.${name}.A`)], { transB: 1, alpha: { f: spec.lora.scale } })]);
    }
    return g.node('Reshape', [dx, g.node('Concat', [rowsShape, g.constant([inDim])], { axis: 0 })]);
  };
  /** LayerNorm's input gradient for output gradient dy. */
  const layerNormT = (input: string, mean: string, istd: string, prefix: string, dy: string) => {
    const xhat = g.node('Mul', [g.node('Sub', [input, mean]), istd]);
    const gy = g.node('Mul', [dy, w(`${prefix}.weight`)]);
    const centred = g.node('Sub', [gy, g.node('ReduceMean', [gy, lastAxis])]);
    return g.node('Mul', [istd, g.node('Sub', [centred, g.node('Mul', [xhat, g.node('ReduceMean', [g.node('Mul', [gy, xhat]), lastAxis])])])]);
  };
  /** d gelu_new(f) / df = ½(1 + t) + ½ f (1 − t²) c (1 + 3k f²), t = tanh(c (f + k f³)). */
  const geluDerivative = (f: string) => {
    const f2 = g.node('Mul', [f, f]);
    const t = g.node('Tanh', [g.node('Mul', [f32(GELU_C), g.node('Mul', [f, g.node('Add', [one, g.node('Mul', [f32(GELU_K), f2])])])])]);
    const outer = g.node('Mul', [f32(0.5), g.node('Add', [one, t])]);
    const slope = g.node('Mul', [g.node('Mul', [f32(0.5 * GELU_C), f]), g.node('Sub', [one, g.node('Mul', [t, t])])]);
    return g.node('Add', [outer, g.node('Mul', [slope, g.node('Add', [one, g.node('Mul', [f32(3 * GELU_K), f2])])])]);
  };
  const swap = (t: string) => g.node('Transpose', [t], { perm: [0, 1, 3, 2] });

  // Backward: F = pooled · (W · direction) + const, read at the pooled position only.
  const headDiff = g.node('Reshape', [g.node('MatMul', [w('head.weight'), direction]), g.constant([1, 1, e])]);
  let dx = layerNormT(x, meanF, istdF, 'ln_f', g.node('Mul', [pool, headDiff]));
  for (let layer = nLayer - 1; layer >= 0; layer--) {
    const p = `h.${layer}`;
    const s = saved[layer]!;
    const df = g.node('Mul', [timesWeightT(dx, `${p}.mlp.c_proj`), geluDerivative(s.f)]);
    const dh = g.node('Add', [dx, layerNormT(s.h, s.mean2, s.istd2, `${p}.ln_2`, timesWeightT(df, `${p}.mlp.c_fc`))]);
    const dO = heads(timesWeightT(dh, `${p}.attn.c_proj`), [0, 2, 1, 3]);
    const dP = g.node('MatMul', [dO, swap(s.vh)]);
    const dv = g.node('MatMul', [swap(s.probs), dO]);
    const rowDot = g.node('ReduceSum', [g.node('Mul', [dP, s.probs]), lastAxis], { keepdims: 1 });
    const dS = g.node('Mul', [g.node('Mul', [s.probs, g.node('Sub', [dP, rowDot])]), scale]);
    const dq = g.node('MatMul', [dS, swap(s.kT)]);
    const dk = g.node('MatMul', [swap(dS), s.qh]);
    const dqkv = g.node('Concat', [merge(dq), merge(dk), merge(dv)], { axis: -1 });
    dx = g.node('Add', [dh, layerNormT(s.x, s.mean1, s.istd1, `${p}.ln_1`, timesWeightT(dqkv, `${p}.attn.c_attn`))]);
  }

  g.output('margin', g.node('Reshape', [margin, g.constant([-1])]), DataType.FLOAT, ['batch']);
  g.output('grad', dx, DataType.FLOAT, ['batch', 'width', e]);
  g.output('tok', tok, DataType.FLOAT, [1, 'width', e]);
  return g;
}
