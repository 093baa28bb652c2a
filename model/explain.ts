/**
 * Why did the classifier decide this? Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for
 * Deep Networks", 2017) on the token embeddings: a weight per token saying how much it moved the logit margin
 * F = logit[positive] − logit[negative] (for the spam filter: spam minus ham).
 *
 * Method. The model reads x_i = e_i + p_i at position i (token embedding e_i = wte[token], position embedding p_i).
 * Only the token part moves along the straight path e(α) = b + α (e − b), α from 0 to 1; positions stay as they
 * are, so the weights are about which tokens were there, not where a message ends. Token i gets
 *     w_i = Σ_d (e_i − b_i)_d · ∫₀¹ ∂F/∂e_i,d (e(α)) dα.
 * Guarantee (completeness, the fundamental theorem of calculus for line integrals): Σ_i w_i = F(e) − F(b)
 * exactly, and a token whose embedding equals the baseline's gets 0. Words add their tokens' weights, so they
 * keep the guarantee.
 *
 * Baseline. b = 0, the zero vector at every token position: a message of the same length with no token content,
 * only positions. It favours no token (the `<|endoftext|>` pad token would be a real, trained token in a
 * pretrained GPT-2 and an untrained one in a from-scratch model) and means the same for every model, so
 * explanations read the same for the pretrained and the from-scratch model. Its own margin F(b) is reported.
 *
 * Quadrature. The integral is computed numerically, and completeness says how well: the margin at both ends is
 * known exactly, so |Σ w − (F(e) − F(b))| measures the quadrature error of the sum. The integrand is smooth
 * (GELU, softmax, LayerNorm: no ReLU kinks), where Gauss-type rules excel: an n-point rule is exact for
 * polynomials of degree 2n−1 (Gauss-Legendre) or 2n−3 (Gauss-Lobatto), where a Riemann sum's error shrinks only
 * as 1/steps (hence the 20-300 steps the paper suggests). Lobatto's nodes include both ends, which are needed
 * anyway (their margins are the two sides of the completeness check); neighbouring segments share them; and the
 * baseline end does not depend on the message, only on its length, so it is computed once per length and reused.
 * The rule is composite and adaptive: by the same line-integral argument each segment [a, b] must sum to
 * F(e(b)) − F(e(a)), so each segment's own error is known exactly, and segments whose error is above their share
 * of the tolerance are halved until the summed absolute errors (a bound on the total's error) are within
 * tolerance, or the evaluation budget is spent (reported as not converged). The default is the 3-point rule
 * (Simpson's: exact to degree 3), whose halving reuses the old midpoint and costs 2 new nodes; measured on the
 * fixture and on a from-scratch model it reaches 5 % with fewer evaluations than the 4- or 5-point rules
 * (see README).
 *
 * Cost: one forward + backward pass per node (input gradients only: weights held constant), nodes batched.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Classifier } from './classifier.ts';
import type { GPT2 } from './gpt2.ts';
import { mergeWords, tokenSpans, type TokenAttribution, type WordAttribution } from './explain-text.ts';
import { encode, PAD_TOKEN_ID } from './tokenizer.ts';
import { wasmBytesNeeded } from './weights.ts';

export type { TokenAttribution, WordAttribution };

export const EXPLANATION_METHOD = 'integrated-gradients';
export const EXPLANATION_BASELINE = 'zero-token-embeddings';

export type LobattoPoints = 3 | 4 | 5;

export interface ExplainOptions {
  /** Truncation length in tokens (the one the model scores with). */
  maxTokens: number;
  /** Pad to this width as the scorer does (only `last` pooling reads padding); default: no padding. */
  width?: number;
  /** Stop when the summed segment errors are at most tolerance · |F(e) − F(b)| (relative) ... */
  tolerance: number;
  /** ... or at most this many logits (absolute), whichever is larger. */
  absoluteTolerance: number;
  /** At most this many gradient evaluations (each a forward and backward pass). */
  maxEvaluations: number;
  /** Gauss-Lobatto points per segment. */
  points: LobattoPoints;
  /** Equal segments [0, 1] starts with. */
  initialSegments: number;
  /** Interpolation points per forward/backward batch; default: as many as fit the activation budget below. */
  rowsPerBatch?: number;
  /** F = logit[positiveClass] − logit[negativeClass]. */
  positiveClass: number;
  negativeClass: number;
}

export const DEFAULT_EXPLAIN_OPTIONS: Omit<ExplainOptions, 'maxTokens'> = {
  tolerance: 0.05,
  absoluteTolerance: 1e-3,
  maxEvaluations: 33,
  points: 3,
  initialSegments: 1,
  positiveClass: 1,
  negativeClass: 0,
};

/**
 * Rows × tokens × width × layers per batch: one 128-token row of GPT-2-124M. Its backward pass grows the wasm
 * heap by about 1 GB (tfjs keeps every intermediate gradient until the pass ends); two such rows reach 3.2 GB of
 * a 4 GB heap, four abort it.
 */
const BATCH_ACTIVATIONS = 128 * 768 * 12;

/** wasm heap growth per unit of BATCH_ACTIVATIONS (measured: ~1 GB for one 128-token row of GPT-2-124M). */
const HEAP_BYTES_PER_ACTIVATION = 900;
const WASM_HEAP_LIMIT = 4 * 1024 ** 3;

/** Baseline ends kept per explainer (one per text length seen, most recent). */
const BASELINE_CACHE = 32;

export interface Explanation {
  method: typeof EXPLANATION_METHOD;
  baseline: typeof EXPLANATION_BASELINE;
  /** The logit margin F of the text, and of the baseline. */
  margin: number;
  baselineMargin: number;
  /** Σ token weights + padding − (margin − baselineMargin): the quadrature's error (0 for exact integration). */
  completenessGap: number;
  /** |completenessGap| / |margin − baselineMargin|. */
  relativeGap: number;
  /** Whether the error bound reached the tolerance within the evaluation budget. */
  converged: boolean;
  quadrature: { rule: string; segments: number; evaluations: number; baselineReused: boolean };
  /** The text the tokens cover: what the model read (after truncation to maxTokens). */
  text: string;
  truncated: boolean;
  tokens: TokenAttribution[];
  words: WordAttribution[];
  /** Summed weight of pad tokens (only with a padding width, i.e. `last` pooling; else 0). */
  padding: number;
  seconds: number;
}

/** Gauss-Lobatto rules on [−1, 1] (ends included): n points are exact for polynomials of degree ≤ 2n − 3. */
const LOBATTO: Record<LobattoPoints, { nodes: number[]; weights: number[] }> = {
  3: { nodes: [-1, 0, 1], weights: [1 / 3, 4 / 3, 1 / 3] },
  4: { nodes: [-1, -1 / Math.sqrt(5), 1 / Math.sqrt(5), 1], weights: [1 / 6, 5 / 6, 5 / 6, 1 / 6] },
  5: { nodes: [-1, -Math.sqrt(3 / 7), 0, Math.sqrt(3 / 7), 1], weights: [1 / 10, 49 / 90, 32 / 45, 49 / 90, 1 / 10] },
};

interface NodeValue {
  /** The margin at this point of the path. */
  margin: number;
  /** Σ_d (e − b)_d · ∂F/∂e_d per position. */
  grad: Float64Array;
}

interface Segment {
  a: number;
  b: number;
  /** Per-position integral over [a, b] and its error against F(b) − F(a). */
  integral: Float64Array;
  error: number;
}

/** The baseline end for one length: its margin and its raw gradient [1, width, E] (kept). */
interface BaselineEnd {
  margin: number;
  grad: tf.Tensor3D;
}

/**
 * Explains texts with one classifier: integrated gradients of its logit margin on the token embeddings. Keeps a
 * constant-weights view of the model and the baseline end of each recent length; `dispose()` frees them.
 */
export class Explainer {
  readonly options: ExplainOptions;
  private readonly view: GPT2;
  private readonly baselines = new Map<string, BaselineEnd>();

  constructor(
    readonly classifier: GPT2Classifier,
    options: Partial<ExplainOptions> & { maxTokens: number },
  ) {
    this.options = { ...DEFAULT_EXPLAIN_OPTIONS, ...options };
    checkOptions(classifier, this.options);
    // The widest batch any text can make: one row of the widest text, or the activation budget's worth of rows.
    const cfg = classifier.config;
    const widest = Math.max(this.options.maxTokens, this.options.width ?? 0);
    const perRow = cfg.nEmbd * cfg.nLayer;
    checkFitsWasm(cfg, this.options.rowsPerBatch ? this.options.rowsPerBatch * widest : Math.max(widest, Math.floor(BATCH_ACTIVATIONS / perRow)));
    this.view = classifier.gpt.withConstantWeights();
  }

  explain(text: string): Explanation {
    const opts = this.options;
    const started = performance.now();
    const ids = encode(text, opts.maxTokens);
    // As the scorer: an empty text reads one pad token; `last` pooling pads to a fixed width.
    const width = Math.max(1, ids.length, opts.width ?? 0);
    const length = Math.max(1, ids.length);
    const input = [...ids, ...Array<number>(width - ids.length).fill(PAD_TOKEN_ID)];
    const rule = LOBATTO[opts.points];
    const cfg = this.classifier.config;
    const rows = opts.rowsPerBatch ?? Math.max(1, Math.floor(BATCH_ACTIVATIONS / (width * cfg.nEmbd * cfg.nLayer)));

    const tok = tf.tidy(() => this.view.tokenEmbeddings(tf.tensor2d(input, [1, width], 'int32')));
    const nodes = new Map<number, NodeValue>();
    let evaluations = 0;
    let baselineReused = false;
    const baselineKey = `${width}:${length}`;
    const evaluate = (alphas: number[]) => {
      let todo = [...new Set(alphas)].filter((a) => !nodes.has(a));
      const known = this.baselines.get(baselineKey);
      if (known && todo.includes(0)) {
        nodes.set(0, { margin: known.margin, grad: projectOnEmbeddings(known.grad, tok) });
        baselineReused = true;
        todo = todo.filter((a) => a !== 0);
      }
      for (let i = 0; i < todo.length; i += rows) {
        const chunk = todo.slice(i, i + rows);
        const { values, baseline } = this.gradientsAlongPath(tok, chunk, length);
        chunk.forEach((a, r) => nodes.set(a, values[r]!));
        if (baseline) this.rememberBaseline(baselineKey, baseline);
        evaluations += chunk.length;
      }
    };

    let segments: Segment[] = [];
    try {
      const n0 = opts.initialSegments;
      let pending: Array<[number, number]> = Array.from({ length: n0 }, (_, k) => [k / n0, (k + 1) / n0]);
      for (;;) {
        evaluate(pending.flatMap(([a, b]) => segmentNodes(rule.nodes, a, b)));
        segments = [...segments, ...pending.map(([a, b]) => integrateSegment(rule, a, b, nodes, width))].sort((x, y) => x.a - y.a);
        const allowed = allowedError(nodes, opts);
        if (errorBound(segments) <= allowed) break;
        // Halve every segment whose error is above its share of the tolerance (by length), the worst first when
        // the evaluation budget is short.
        const over = segments.filter((s) => Math.abs(s.error) > allowed * (s.b - s.a)).sort((x, y) => Math.abs(y.error) - Math.abs(x.error));
        const split: Segment[] = [];
        let cost = 0;
        for (const s of over) {
          const m = (s.a + s.b) / 2;
          const added = new Set([...segmentNodes(rule.nodes, s.a, m), ...segmentNodes(rule.nodes, m, s.b)].filter((a) => !nodes.has(a))).size;
          if (evaluations + cost + added > opts.maxEvaluations) break;
          split.push(s);
          cost += added;
        }
        if (split.length === 0) break;
        segments = segments.filter((s) => !split.includes(s));
        pending = split.flatMap((s): Array<[number, number]> => [[s.a, (s.a + s.b) / 2], [(s.a + s.b) / 2, s.b]]);
      }
    } finally {
      tok.dispose();
    }

    const weights = new Float64Array(width);
    for (const s of segments) for (let i = 0; i < width; i++) weights[i]! += s.integral[i]!;
    const margin = nodes.get(1)!.margin;
    const baselineMargin = nodes.get(0)!.margin;
    const delta = margin - baselineMargin;
    const gap = weights.reduce((sum, w) => sum + w, 0) - delta;
    const { text: read, spans, continues } = tokenSpans(ids);
    const tokens: TokenAttribution[] = ids.map((id, i) => ({ id, text: read.slice(spans[i]![0], spans[i]![1]), start: spans[i]![0], end: spans[i]![1], weight: weights[i]! }));
    let padding = 0;
    for (let i = ids.length; i < width; i++) padding += weights[i]!;
    return {
      method: EXPLANATION_METHOD,
      baseline: EXPLANATION_BASELINE,
      margin,
      baselineMargin,
      completenessGap: gap,
      relativeGap: Math.abs(gap) / Math.max(Math.abs(delta), Number.MIN_VALUE),
      converged: errorBound(segments) <= allowedError(nodes, opts),
      quadrature: { rule: `gauss-lobatto-${opts.points}, composite, adaptive`, segments: segments.length, evaluations, baselineReused },
      text: read,
      truncated: ids.length < encode(text, opts.maxTokens + 1).length,
      tokens,
      words: mergeWords(read, tokens, continues),
      padding,
      seconds: (performance.now() - started) / 1000,
    };
  }

  dispose(): void {
    for (const b of this.baselines.values()) b.grad.dispose();
    this.baselines.clear();
    this.view.releaseConstants();
  }

  private rememberBaseline(key: string, end: BaselineEnd): void {
    this.baselines.get(key)?.grad.dispose();
    this.baselines.delete(key);
    this.baselines.set(key, end);
    if (this.baselines.size > BASELINE_CACHE) {
      const [oldest, value] = this.baselines.entries().next().value!;
      value.grad.dispose();
      this.baselines.delete(oldest);
    }
  }

  /**
   * Margins and input gradients at points α of the path, as one batch: row r reads α_r · e (the baseline is 0).
   * Rows are independent (per-row attention, normalisation and pooling), so the gradient of the summed margins
   * with respect to the batch holds each row's own gradient. The raw gradient at α = 0 is returned (kept) too.
   */
  private gradientsAlongPath(tok: tf.Tensor3D, alphas: number[], length: number): { values: NodeValue[]; baseline?: BaselineEnd } {
    const { positiveClass, negativeClass } = this.options;
    const rows = alphas.length;
    const width = tok.shape[1];
    const zero = alphas.indexOf(0);
    const [margins, projected, baselineGrad] = tf.tidy(() => {
      const path = tf.mul(tf.tensor3d(alphas, [rows, 1, 1]), tok) as tf.Tensor3D;
      const lengths = Array<number>(rows).fill(length);
      const { value, grad } = tf.valueAndGrad((e: tf.Tensor3D) => {
        const logits = this.classifier.logitsFromTokenEmbeddings(e, lengths, this.view);
        // Slices, not gather: gather's gradient needs a kernel the wasm backend lacks.
        return tf.reshape(tf.sub(tf.slice(logits, [0, positiveClass], [-1, 1]), tf.slice(logits, [0, negativeClass], [-1, 1])), [rows]);
      })(path);
      // (e − b) · ∂F/∂e summed over the embedding axis: the integrand per position.
      const out: tf.Tensor[] = [value, tf.sum(tf.mul(grad, tok), -1)];
      if (zero >= 0) out.push(tf.keep(tf.slice(grad, [zero, 0, 0], [1, -1, -1])));
      return out;
    }) as [tf.Tensor1D, tf.Tensor2D, tf.Tensor3D | undefined];
    // Read outside tidy (a typed array returned from tidy is walked element by element).
    const m = margins.dataSync();
    const p = projected.dataSync();
    margins.dispose();
    projected.dispose();
    const values = alphas.map((_, r) => ({ margin: m[r]!, grad: Float64Array.from(p.subarray(r * width, (r + 1) * width)) }));
    return { values, baseline: baselineGrad ? { margin: m[zero]!, grad: baselineGrad } : undefined };
  }
}

/** Explains one text (an Explainer for one use). */
export function explain(clf: GPT2Classifier, text: string, options: Partial<ExplainOptions> & { maxTokens: number }): Explanation {
  const explainer = new Explainer(clf, options);
  try {
    return explainer.explain(text);
  } finally {
    explainer.dispose();
  }
}

function checkOptions(clf: GPT2Classifier, o: ExplainOptions): void {
  const classes = clf.options.numClasses;
  for (const [name, c] of [['positiveClass', o.positiveClass], ['negativeClass', o.negativeClass]] as const) {
    if (!Number.isInteger(c) || c < 0 || c >= classes) throw new Error(`explain: ${name} ${c} is not a class of this ${classes}-class model`);
  }
  if (o.positiveClass === o.negativeClass) throw new Error('explain: positiveClass and negativeClass must differ');
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1) throw new Error(`explain: maxTokens must be a positive integer, got ${o.maxTokens}`);
  if (Math.max(o.maxTokens, o.width ?? 0) > clf.config.nPositions) {
    throw new Error(`explain: ${Math.max(o.maxTokens, o.width ?? 0)} tokens exceed the model's context of ${clf.config.nPositions}`);
  }
  if (!(o.tolerance > 0) || !(o.absoluteTolerance > 0)) throw new Error('explain: tolerances must be positive');
  if (!(o.points in LOBATTO)) throw new Error(`explain: points must be 3, 4 or 5, got ${o.points}`);
  if (!Number.isInteger(o.initialSegments) || o.initialSegments < 1) throw new Error('explain: initialSegments must be a positive integer');
  const first = o.initialSegments * (o.points - 1) + 1;
  if (o.maxEvaluations < first) throw new Error(`explain: maxEvaluations ${o.maxEvaluations} is less than the ${first} nodes of the first pass`);
  if (o.rowsPerBatch !== undefined && !(Number.isInteger(o.rowsPerBatch) && o.rowsPerBatch >= 1)) throw new Error('explain: rowsPerBatch must be a positive integer');
}

/**
 * On wasm, refuses before allocating what cannot fit its 4 GiB heap (running out aborts or hangs the process):
 * the model, its packed copies, and the activations a batch of `tokens` keeps for its backward pass.
 */
function checkFitsWasm(cfg: GPT2Classifier['config'], tokens: number): void {
  if (tf.getBackend() !== 'wasm') return;
  const activations = tokens * cfg.nEmbd * cfg.nLayer * HEAP_BYTES_PER_ACTIVATION;
  const need = wasmBytesNeeded(cfg) + Math.max(0, activations - 0.6 * 1024 ** 3);
  if (need > WASM_HEAP_LIMIT) {
    throw new Error(
      `explaining ${tokens} tokens with this ${cfg.nLayer}-layer, ${cfg.nEmbd}-wide model needs about ${(need / 1024 ** 3).toFixed(1)} GiB ` +
        'on the wasm backend, more than its 4 GiB: use fewer tokens, a smaller GPT-2, or --backend node / gpu',
    );
  }
}

/** The tolerance on the summed segment errors: relative to F(e) − F(b), with an absolute floor. */
function allowedError(nodes: Map<number, NodeValue>, opts: ExplainOptions): number {
  return Math.max(opts.tolerance * Math.abs(nodes.get(1)!.margin - nodes.get(0)!.margin), opts.absoluteTolerance);
}

/** Σ |segment error|: bounds the error of the total, |Σ w − (F(e) − F(b))|, whatever the signs. */
function errorBound(segments: Segment[]): number {
  return segments.reduce((s, seg) => s + Math.abs(seg.error), 0);
}

/** The rule's nodes mapped to [a, b], ends exactly a and b (so neighbouring segments share them). */
function segmentNodes(nodes: number[], a: number, b: number): number[] {
  return nodes.map((x) => (x === -1 ? a : x === 1 ? b : a + ((b - a) * (1 + x)) / 2));
}

function integrateSegment(rule: { nodes: number[]; weights: number[] }, a: number, b: number, nodes: Map<number, NodeValue>, width: number): Segment {
  const integral = new Float64Array(width);
  segmentNodes(rule.nodes, a, b).forEach((alpha, k) => {
    const w = (rule.weights[k]! * (b - a)) / 2;
    const g = nodes.get(alpha)!.grad;
    for (let i = 0; i < width; i++) integral[i]! += w * g[i]!;
  });
  const sum = integral.reduce((s, v) => s + v, 0);
  return { a, b, integral, error: sum - (nodes.get(b)!.margin - nodes.get(a)!.margin) };
}

/** Σ_d e_d · g_d per position, for a kept baseline gradient g [1, width, E] and this text's embeddings e. */
function projectOnEmbeddings(grad: tf.Tensor3D, tok: tf.Tensor3D): Float64Array {
  const t = tf.tidy(() => tf.sum(tf.mul(grad, tok), -1));
  const data = Float64Array.from(t.dataSync());
  t.dispose();
  return data;
}
