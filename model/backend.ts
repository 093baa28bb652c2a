// Run-time selection of the TensorFlow.js backend.
//
// All model code does `import * as tf from '@tensorflow/tfjs-core'`; every backend loaded here must
// register itself into that same tfjs-core (the node_modules/@tensorflow/tfjs-core 4.22.0 copy).
// tfjs-core keeps its engine and kernel registry in a process-global namespace, so even a second copy
// would share them, but tensors and kernels from two different tfjs-core versions are not compatible.
// Therefore the optional native/GPU backends must be exactly 4.22.0 too: @tensorflow/tfjs-node(-gpu)
// 4.22.0 requires the union package @tensorflow/tfjs 4.22.0 (not installed by us; npm installs it as
// their dependency), whose tfjs-core 4.22.0 npm then dedupes onto ours. initBackend() checks this.

import { Blob, resolveObjectURL } from 'node:buffer';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import workerThreads from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeRuntime, NativeMissingError, type NativeRuntime } from './native/runtime.ts';

/** The tfjs backends one can ask for: auto picks tfjs-node-gpu, then tfjs-node, then wasm (see `initBackend`). */
export const BACKEND_NAMES = ['auto', 'gpu', 'node', 'wasm', 'webgpu', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendInfo {
  /** The tfjs backend name actually in use: 'tensorflow', 'wasm', 'webgpu' or 'cpu'. */
  name: string;
  /** Where it computes. */
  device: 'cpu' | 'gpu';
  /** One human-readable line, the same one that was logged. */
  description: string;
}

export interface BackendOptions {
  /** wasm only: worker threads for XNNPACK (default: number of logical cores, at most 8). */
  threads?: number;
  /** Where the one-line "backend in use" message goes (default: console.error). */
  log?: (line: string) => void;
}

const require = createRequire(import.meta.url);
const TFJS_VERSION = '4.22.0';

/** Largest useful wasm thread count: the Emscripten pthread pool and XNNPACK both stop at 8. */
const WASM_MAX_THREADS = 8;

let current: BackendInfo | undefined;

/**
 * Selects and initialises the TensorFlow.js backend. Call it once, before any tf op (the first tf op
 * would otherwise initialise the highest-priority registered backend on its own).
 */
export async function initBackend(requested: BackendName = 'auto', opts: BackendOptions = {}): Promise<BackendInfo> {
  const log = opts.log ?? ((line: string) => console.error(line));
  if (current && (requested === 'auto' || nameOf(requested) === current.name)) return current;
  let info: BackendInfo;
  switch (requested) {
    case 'gpu':
    case 'node':
      info = await initNative(requested);
      break;
    case 'webgpu':
      info = await initWebgpu();
      break;
    case 'wasm':
      info = await initWasm(opts.threads, log);
      break;
    case 'cpu':
      info = await initCpu();
      break;
    case 'auto':
      info = await initAuto(opts.threads, log);
      break;
    default:
      throw new Error(`unknown backend "${String(requested)}" (expected auto, gpu, node, wasm, webgpu or cpu)`);
  }
  current = info;
  log(info.description);
  return info;
}

function nameOf(requested: BackendName): string {
  return requested === 'gpu' || requested === 'node' ? 'tensorflow' : requested;
}

async function initAuto(threads: number | undefined, log: (line: string) => void): Promise<BackendInfo> {
  for (const kind of ['gpu', 'node'] as const) {
    try {
      return await initNative(kind);
    } catch (e) {
      // Not installed is the normal case: say nothing. Installed but broken deserves a line.
      if (!(e instanceof MissingPackageError)) log(`backend "${kind}" skipped: ${(e as Error).message}`);
    }
  }
  return initWasm(threads, log);
}

// ---------------------------------------------------------------------------------------------
// Inference (everything that does not train): native ONNX Runtime or tfjs

/** What can run inference: auto picks native ONNX Runtime when it is installed and works, else tfjs (see `initInference`). */
export const INFERENCE_NAMES = ['auto', 'native', 'tfjs'] as const;
export type InferenceName = (typeof INFERENCE_NAMES)[number];

export interface InferenceInfo {
  name: 'native' | 'tfjs';
  /** One human-readable line, the same one that was logged. */
  description: string;
}

let inference: { info: InferenceInfo; runtime?: NativeRuntime } | undefined;

/**
 * Chooses what runs inference: scoring, the frozen-trunk pass that fills the activation cache, evaluation.
 * `auto` takes the native runtime (onnxruntime-node, an optional dependency) when it is installed and passes its
 * self-test, unless tfjs runs on a GPU; `native` insists on it; `tfjs` uses the tfjs backend as training does.
 * `int8Trunk` (native only, off by default: not exact) multiplies the frozen trunk by int8 weights.
 * Call after initBackend. Training always runs on tfjs.
 */
export async function initInference(
  requested: InferenceName = 'auto',
  opts: { log?: (line: string) => void; threads?: number; int8Trunk?: boolean } = {},
): Promise<InferenceInfo> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const int8Trunk = opts.int8Trunk ?? false;
  if (inference && (requested === 'auto' || requested === inference.info.name) && (inference.runtime?.int8Trunk ?? false) === int8Trunk) return inference.info;
  const tfjsInfo = (): InferenceInfo => ({ name: 'tfjs', description: `inference backend: tfjs (${current?.description.replace(/^tfjs backend: /, '') ?? tf.getBackend()})` });
  let runtime: NativeRuntime | undefined;
  switch (requested) {
    case 'tfjs':
      break;
    case 'native':
      try {
        runtime = await loadNativeRuntime(opts.threads, int8Trunk);
      } catch (e) {
        throw new Error(`inference "native": ${(e as Error).message}`);
      }
      break;
    case 'auto':
      if (current?.device === 'gpu') break;
      try {
        runtime = await loadNativeRuntime(opts.threads, int8Trunk);
      } catch (e) {
        if (!(e instanceof NativeMissingError)) log(`native inference skipped: ${(e as Error).message}`);
      }
      break;
    default:
      throw new Error(`unknown inference backend "${String(requested)}" (expected auto, native or tfjs)`);
  }
  const info: InferenceInfo = runtime ? { name: 'native', description: runtime.description } : tfjsInfo();
  inference = { info, ...(runtime ? { runtime } : {}) };
  log(info.description);
  return info;
}

/** The native runtime when initInference chose it; undefined means inference runs on tfjs. */
export function nativeRuntime(): NativeRuntime | undefined {
  return inference?.runtime;
}

// ---------------------------------------------------------------------------------------------
// Optional packages

class MissingPackageError extends Error {}

const NATIVE = {
  gpu: {
    pkg: '@tensorflow/tfjs-node-gpu',
    hint: 'Linux x86-64 with CUDA 11.8/cuDNN 8',
    what: 'libtensorflow with CUDA',
  },
  node: {
    pkg: '@tensorflow/tfjs-node',
    hint: 'Linux/macOS/Windows x86-64 or arm64 macOS; downloads libtensorflow',
    what: 'libtensorflow on the CPU',
  },
} as const;

/**
 * import() optional packages. A package that is not installed becomes a MissingPackageError (auto mode
 * skips it quietly); one that is installed but fails to load (a missing dependency, no libtensorflow or
 * CUDA library) becomes a plain Error. Either way the message is one line with the install hint.
 */
async function importOptional(backend: BackendName, pkgs: string[], hint: string): Promise<unknown[]> {
  const versions = pkgs.map((p) => `${p}@${p === 'webgpu' ? 'latest' : TFJS_VERSION}`);
  const needs = `backend "${backend}" needs ${pkgs.join(' + ')}: run "npm install ${versions.join(' ')}" (${hint})`;
  const mods: unknown[] = [];
  for (const pkg of pkgs) {
    const specifier: string = pkg; // a plain string keeps tsc from resolving the (absent) package
    try {
      mods.push(await import(specifier));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const firstLine = String(err.message).split('\n')[0] ?? '';
      const notFound = err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND';
      const missing = notFound ? /['"]([^'"]+)['"]/.exec(firstLine)?.[1] : undefined;
      if (missing === pkg) throw new MissingPackageError(needs);
      throw new Error(`${needs}; ${pkg} is installed but failed to load: ${firstLine}`);
    }
  }
  return mods;
}

async function initNative(kind: 'gpu' | 'node'): Promise<BackendInfo> {
  const { pkg, hint, what } = NATIVE[kind];
  await importOptional(kind, [pkg], hint);
  // The package registers 'tensorflow' into its tfjs-core; check that it is ours (see top of file).
  const pkgJson = require(`${pkg}/package.json`) as { version: string };
  if (pkgJson.version !== tf.version_core) {
    throw new Error(`backend "${kind}": ${pkg}@${pkgJson.version} does not match @tensorflow/tfjs-core@${tf.version_core}; install ${pkg}@${tf.version_core}`);
  }
  await useBackend('tensorflow', kind);
  return { name: 'tensorflow', device: kind === 'gpu' ? 'gpu' : 'cpu', description: `tfjs backend: ${kind} (${pkg} ${pkgJson.version}, ${what})` };
}

async function initWebgpu(): Promise<BackendInfo> {
  // Dawn for Node provides navigator.gpu; tfjs-backend-webgpu registers 'webgpu' on import.
  const [dawn] = (await importOptional('webgpu', ['webgpu', '@tensorflow/tfjs-backend-webgpu'], 'Dawn for Node: Linux/macOS/Windows x86-64')) as [
    { create: (flags: string[]) => unknown; globals: object },
  ];
  Object.assign(globalThis, dawn.globals);
  if (!('navigator' in globalThis) || !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn.create([]) }, configurable: true, writable: true });
  }
  await useBackend('webgpu', 'webgpu');
  return { name: 'webgpu', device: 'gpu', description: 'tfjs backend: webgpu (Dawn via the "webgpu" package)' };
}

async function initCpu(): Promise<BackendInfo> {
  await import('@tensorflow/tfjs-backend-cpu');
  await useBackend('cpu', 'cpu');
  return { name: 'cpu', device: 'cpu', description: 'tfjs backend: cpu (pure JavaScript, ~50x slower than wasm: for debugging only)' };
}

async function useBackend(name: string, requested: BackendName): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`backend "${requested}": tfjs backend "${name}" failed to initialise`);
  await tf.ready();
}

// ---------------------------------------------------------------------------------------------
// wasm (SIMD, multi-threaded)

async function initWasm(threads: number | undefined, log: (line: string) => void): Promise<BackendInfo> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const want = Math.max(1, Math.min(WASM_MAX_THREADS, Math.floor(threads ?? os.availableParallelism())));
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  if (tf.findBackend('wasm') == null) {
    // The threaded build needs SIMD; with 1 thread the plain SIMD build avoids starting 8 idle workers.
    const threaded = want > 1 && simd;
    const listeners = emscriptenListeners();
    try {
      if (threaded && !(await initThreadedWasm(wasm, want))) {
        log('wasm: the multi-threaded build failed to start (see the warning above); falling back to 1 thread');
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      }
      await useBackend('wasm', 'wasm'); // no-op if the threaded build is up
    } finally {
      listeners.removeAdded();
    }
  } else {
    await useBackend('wasm', 'wasm'); // already initialised (by an earlier call or a premature tf op)
  }
  const got = wasm.getThreadsCount();
  const simdText = simd ? 'SIMD' : 'no SIMD';
  return {
    name: 'wasm',
    device: 'cpu',
    description: `tfjs backend: wasm (${simdText}, ${got} thread${got === 1 ? '' : 's'}${got !== want ? `, ${want} requested` : ''})`,
  };
}

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');

async function initThreadedWasm(wasm: WasmModule, threads: number): Promise<boolean> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const restore = patchForWasmThreads(threads);
  try {
    if (!(await tf.setBackend('wasm'))) return false;
  } finally {
    restore();
  }
  // Emscripten pre-starts a pool of 8 workers (PTHREAD_POOL_SIZE); XNNPACK took threads - 1 of them
  // (the main thread is the pool's thread 0). The idle rest cost ~9 MB each: stop them. Should a
  // pthread ever be created later, Emscripten starts a fresh worker through the same patched class.
  const pthreads = (tf.backend() as unknown as { wasm?: { PThread?: { unusedWorkers: workerThreads.Worker[] } } }).wasm?.PThread;
  for (const worker of pthreads?.unusedWorkers.splice(0) ?? []) void worker.terminate();
  return true;
}

/**
 * The Emscripten glue adds process 'uncaughtException'/'unhandledRejection' listeners that rethrow
 * (only to swallow its own ExitStatus, which tfjs never raises). A rethrow from a listener makes Node
 * print the whole minified glue line instead of the real error's stack, so remove them again.
 */
function emscriptenListeners(): { removeAdded: () => void } {
  const events = ['uncaughtException', 'unhandledRejection'];
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(events.map((ev) => [ev, new Set(emitter.listeners(ev))]));
  return {
    removeAdded() {
      for (const ev of events) {
        for (const fn of emitter.listeners(ev)) {
          if (!before.get(ev)!.has(fn) && /ExitStatus|throw reason/.test(String(fn))) emitter.removeListener(ev, fn as (...a: unknown[]) => void);
        }
      }
    },
  };
}

/**
 * tfjs-backend-wasm 4.22 cannot run its threaded build in Node unaided. Three things stop it, and this
 * patch, active only while the backend initialises, fixes each of them for tfjs's own workers:
 *
 * 1. Emscripten starts each pthread worker from a `blob:nodedata:` URL (the worker script,
 *    tfjs's `wasmWorkerContents`), which `worker_threads.Worker` rejects (ERR_WORKER_PATH). The glue
 *    picks up `require('worker_threads').Worker` when the factory runs, so a subclass installed there
 *    starts those workers from the same source text with `{eval: true}`; it then rewrites the worker's
 *    'load' message, whose `urlOrBlob` (the glue as a Blob, read with a synchronous importScripts that
 *    cannot read blobs) becomes the path of the identical glue file on disk, wasm-out/*-threaded-simd.js.
 *
 * 2. Why the thread pool still had 1 thread: backend.cc computes
 *    `num_cores = emscripten_num_logical_cores() / 2` (it assumes hyper-threading) in a static
 *    constructor and caps the XNNPACK pool at `min(max(setThreadsCount(), 1), 8, num_cores)`.
 *    In Node `emscripten_num_logical_cores()` is `require('os').cpus().length`, so a 2-core machine gets
 *    num_cores = 1 and exactly 1 thread whatever setThreadsCount() says. While the module instantiates,
 *    os.cpus() reports 2 x threads entries, so num_cores = threads and setThreadsCount(threads) wins.
 *
 * 3. Emscripten ref()s a worker while it runs a pthread; XNNPACK's pool threads run (parked on a futex)
 *    forever, which would keep the event loop alive after the work is done. Our workers ignore ref(),
 *    so the process exits normally (Node terminates them at exit). Nothing async waits on them: every
 *    kernel runs synchronously on the main thread, which joins the pool threads before returning.
 */
function patchForWasmThreads(threads: number): () => void {
  const wasmOut = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js'));
  const gluePath = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // Exactly the text tfjs puts in its worker blob (it escapes newlines the same way).
  const workerSource = wasmWorkerContents.replace(/\n/g, '\\n');
  const workerSourceSize = new Blob([workerSource]).size;

  const OriginalWorker = workerThreads.Worker;
  class TfjsWasmWorker extends OriginalWorker {
    constructor(filename: string | URL, options?: workerThreads.WorkerOptions) {
      const url = String(filename);
      const isTfjsBlob = url.startsWith('blob:') && resolveObjectURL(url)?.size === workerSourceSize;
      // execArgv: [] — the worker must not inherit e.g. --input-type=module (the script is CommonJS)
      // or --import hooks (loading tsx into every worker only costs time).
      super(isTfjsBlob ? workerSource : filename, isTfjsBlob ? { ...options, eval: true, execArgv: [] } : options);
    }
    override postMessage(value: unknown, transferList?: readonly workerThreads.TransferListItem[]): void {
      const msg = value as { cmd?: unknown; urlOrBlob?: unknown } | null;
      if (msg && msg.cmd === 'load' && msg.urlOrBlob instanceof Blob) value = { ...msg, urlOrBlob: gluePath };
      super.postMessage(value, transferList);
    }
    override ref(): void {}
  }

  const originalCpus = os.cpus;
  const fakeCpus = (): os.CpuInfo[] => {
    const real = originalCpus();
    return Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]!);
  };
  (workerThreads as { Worker: typeof workerThreads.Worker }).Worker = TfjsWasmWorker;
  os.cpus = fakeCpus;
  return () => {
    (workerThreads as { Worker: typeof workerThreads.Worker }).Worker = OriginalWorker;
    if (os.cpus === fakeCpus) os.cpus = originalCpus;
  };
}
