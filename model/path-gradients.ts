/**
 * The integrand of integrated gradients (model/explain.ts): the classifier's logit margin F = logit[positive] −
 * logit[negative] at points α·e of the straight path from the zero baseline to a text's token embeddings e, and
 * its gradient with respect to α·e. Two sources compute it: tfjs (here; differentiates the model, the training
 * backend) and ONNX Runtime (model/native/gradients.ts; the backward pass written out as a graph, several times
 * faster on a CPU). Either gives the other's numbers to float32 rounding.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Classifier } from './classifier.ts';
import type { GPT2Config } from './config.ts';
import type { GPT2 } from './gpt2.ts';
import { wasmBytesNeeded } from './weights.ts';

export interface PathPoints {
  /** F at each α, [rows]. */
  margins: Float32Array;
  /** ∂F/∂(α·e) at each α, [rows, width, E]. */
  grads: Float32Array;
  /** e = wte[ids], [width, E]. */
  tok: Float32Array;
}

export interface PathGradients {
  readonly config: GPT2Config;
  readonly numClasses: number;
  /** Path points per forward/backward pass for a text of `width` tokens. */
  rowsPerBatch(width: number): number;
  /**
   * For the token ids `input` (padded to its length; `length` of them real), F and ∂F/∂(α·e) at each α, with
   * F = logit[positiveClass] − logit[negativeClass].
   */
  alongPath(input: number[], length: number, alphas: number[], classes: { positive: number; negative: number }): Promise<PathPoints>;
  dispose(): Promise<void> | void;
}

/**
 * Rows × tokens × width × layers per batch: one 128-token row of GPT-2-124M. Its backward pass grows the wasm
 * heap by about 1 GB (tfjs keeps every intermediate gradient until the pass ends); two such rows reach 3.2 GB of
 * a 4 GB heap, four abort it.
 */
const BATCH_ACTIVATIONS = 128 * 768 * 12;

/** wasm heap growth per unit of BATCH_ACTIVATIONS (measured: ~1 GB for one 128-token row of GPT-2-124M). */
const HEAP_BYTES_PER_ACTIVATION = 900;
const WASM_HEAP_LIMIT = 4 * 1024 ** 3;

/**
 * On tfjs: the model's own forward pass from token embeddings, differentiated by tfjs through a view whose
 * projections treat their weights as constants (input gradients only: no weight gradient, no transposed matMul).
 */
export class TfjsPathGradients implements PathGradients {
  private readonly view: GPT2;
  readonly config: GPT2Config;
  readonly numClasses: number;

  /** `widest`: the most tokens a text will have; `rows`: path points per pass (default: the activation budget's). */
  constructor(
    private readonly classifier: GPT2Classifier,
    widest: number,
    private readonly rows?: number,
  ) {
    this.config = classifier.config;
    this.numClasses = classifier.options.numClasses;
    const perRow = this.config.nEmbd * this.config.nLayer;
    checkFitsWasm(this.config, rows ? rows * widest : Math.max(widest, Math.floor(BATCH_ACTIVATIONS / perRow)));
    this.view = classifier.gpt.withConstantWeights();
  }

  rowsPerBatch(width: number): number {
    return this.rows ?? Math.max(1, Math.floor(BATCH_ACTIVATIONS / (width * this.config.nEmbd * this.config.nLayer)));
  }

  /**
   * One batch: row r reads α_r · e. Rows are independent (per-row attention, normalisation and pooling), so the
   * gradient of the summed margins with respect to the batch holds each row's own gradient.
   */
  alongPath(input: number[], length: number, alphas: number[], classes: { positive: number; negative: number }): Promise<PathPoints> {
    const rows = alphas.length;
    const width = input.length;
    const [tok, margins, grads] = tf.tidy(() => {
      const tok = this.view.tokenEmbeddings(tf.tensor2d(input, [1, width], 'int32'));
      const path = tf.mul(tf.tensor3d(alphas, [rows, 1, 1]), tok) as tf.Tensor3D;
      const lengths = Array<number>(rows).fill(length);
      const { value, grad } = tf.valueAndGrad((e: tf.Tensor3D) => {
        const logits = this.classifier.logitsFromTokenEmbeddings(e, lengths, this.view);
        // Slices, not gather: gather's gradient needs a kernel the wasm backend lacks.
        return tf.reshape(tf.sub(tf.slice(logits, [0, classes.positive], [-1, 1]), tf.slice(logits, [0, classes.negative], [-1, 1])), [rows]);
      })(path);
      return [tok, value, grad];
    });
    // Read outside tidy (a typed array returned from tidy is walked element by element).
    const out = { tok: tok.dataSync() as Float32Array, margins: margins.dataSync() as Float32Array, grads: grads.dataSync() as Float32Array };
    tf.dispose([tok, margins, grads]);
    return Promise.resolve(out);
  }

  dispose(): void {
    this.view.releaseConstants();
  }
}

/**
 * On wasm, refuses before allocating what cannot fit its 4 GiB heap (running out aborts or hangs the process):
 * the model, its packed copies, and the activations a batch of `tokens` keeps for its backward pass.
 */
function checkFitsWasm(cfg: GPT2Config, tokens: number): void {
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
