/**
 * ONNX Runtime (the optional npm package `onnxruntime-node`, whose CPU build ships inside the package) as the
 * native inference runtime: loading it, checking that it works, and running sessions of graphs built in memory.
 *
 * tfjs on wasm is bounded by 128-bit SIMD (≈ 48 GFLOP/s for a plain matMul on 2 cores); ONNX Runtime's MLAS
 * kernels use the CPU's full vector width (AVX2 / AVX-512), several times faster for everything that does not
 * train. Training stays on tfjs, which has the gradients.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { DataType, OnnxGraph } from './onnx-graph.ts';

const require = createRequire(import.meta.url);

export interface NativeRuntime {
  ort: typeof Ort;
  version: string;
  threads: number;
  /** Default for NativeClassifier: int8 weights in the frozen trunk (faster, not exact; off unless asked for). */
  int8Trunk: boolean;
  /** One line for the log. */
  description: string;
}

/** onnxruntime-node is not installed (an optional dependency: absent on platforms it does not support). */
export class NativeMissingError extends Error {}

const PACKAGE = 'onnxruntime-node';

let loaded: Promise<NativeRuntime> | undefined;

/**
 * Loads onnxruntime-node and runs a one-node graph through it, so "available" means "works here", not merely
 * "installed". Rejects with NativeMissingError when the package is absent, with a plain Error when it is present
 * but broken (e.g. its binary does not load on this system). Cached: the first call decides.
 */
export async function loadNativeRuntime(threads = defaultThreads(), int8Trunk = false): Promise<NativeRuntime> {
  loaded ??= load(threads);
  const rt = await loaded;
  const description = `inference backend: native (ONNX Runtime ${rt.version}, CPU, ${rt.threads} thread${rt.threads === 1 ? '' : 's'}${int8Trunk ? ', int8 trunk' : ''})`;
  return { ...rt, int8Trunk, description };
}

function defaultThreads(): number {
  return Math.max(1, Math.min(16, os.availableParallelism()));
}

async function load(threads: number): Promise<NativeRuntime> {
  let ort: typeof Ort;
  try {
    const specifier: string = PACKAGE;
    const mod = (await import(specifier)) as typeof Ort & { default?: typeof Ort };
    ort = mod.default ?? mod;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const first = String(err.message).split('\n')[0] ?? '';
    if ((err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && first.includes(`'${PACKAGE}'`)) {
      throw new NativeMissingError(`${PACKAGE} is not installed (npm install ${PACKAGE})`);
    }
    throw new Error(`${PACKAGE} is installed but failed to load: ${first}`);
  }
  const version = (require(`${PACKAGE}/package.json`) as { version: string }).version;
  const runtime: NativeRuntime = { ort, version, threads, int8Trunk: false, description: '' };
  await selfTest(runtime);
  return runtime;
}

/** y = x · 2 on a tiny graph: proves the binary loads, builds a session and computes. */
async function selfTest(rt: NativeRuntime): Promise<void> {
  const g = new OnnxGraph('self_test');
  const x = g.input('x', DataType.FLOAT, [2]);
  g.output('y', g.node('Mul', [x, g.constant([2], DataType.FLOAT, [])]), DataType.FLOAT, [2]);
  const session = await NativeSession.create(rt, await g.encode(() => Promise.reject(new Error('no file weights'))));
  try {
    const out = await session.run({ x: { type: 'float32', data: Float32Array.from([1.5, -2]), dims: [2] } });
    const y = out.get('y')?.data;
    if (!y || y[0] !== 3 || y[1] !== -4) throw new Error(`${PACKAGE} self-test computed ${y ? Array.from(y) : 'nothing'} instead of [3, -4]`);
  } finally {
    await session.dispose();
  }
}

export interface FeedTensor {
  type: 'float32' | 'int32' | 'int64';
  data: Float32Array | Int32Array | BigInt64Array;
  dims: number[];
}

export interface OutputTensor {
  data: Float32Array;
  dims: number[];
}

/** One ONNX Runtime session of a model built in memory. */
export class NativeSession {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
  ) {}

  static async create(rt: NativeRuntime, model: { bytes: Uint8Array; externalFolder?: string }): Promise<NativeSession> {
    const options: Ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: rt.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      logSeverityLevel: 3,
      extra: {
        session: {
          // Weights stored as regions of a safetensors file are read from there (see onnx-graph.ts).
          ...(model.externalFolder ? { model_external_initializers_file_folder_path: model.externalFolder } : {}),
        },
      },
    };
    const session = await rt.ort.InferenceSession.create(model.bytes, options);
    return new NativeSession(rt.ort, session);
  }

  /** Runs the graph; returns the float32 outputs by name (all of them unless `outputs` names some). */
  async run(feeds: Record<string, FeedTensor>, outputs?: string[]): Promise<Map<string, OutputTensor>> {
    const input: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) input[name] = new this.ort.Tensor(t.type, t.data, t.dims);
    const result = outputs ? await this.session.run(input, outputs) : await this.session.run(input);
    const out = new Map<string, OutputTensor>();
    for (const [name, t] of Object.entries(result)) {
      if (t.type !== 'float32') throw new Error(`native output ${name} is ${t.type}, expected float32`);
      out.set(name, { data: t.data as Float32Array, dims: [...t.dims] });
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
