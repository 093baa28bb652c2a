/**
 * Explanations in their own process: `node --import tsx worker.ts BACKEND INFERENCE`, driven over the IPC channel (one
 * request at a time, see protocol.ts). Integrated gradients is seconds of tensor work per message (synchronous on
 * tfjs); in a process of its own it never holds up the daemon's event loop (scoring, the API), its memory (on tfjs
 * a wasm heap of up to ~2 GB for GPT-2-124M, which never shrinks) is returned to the system when it exits, and a crash costs
 * an explanation, not the daemon. It keeps the last model version it loaded. With native inference the gradients
 * come from ONNX Runtime straight from the checkpoint's files (no tfjs copy of the model); a model the native
 * graph cannot run is explained on tfjs.
 */
import { loadCheckpoint, type CheckpointInfo } from '../../model/checkpoint.ts';
import type { Pooling } from '../../model/classifier.ts';
import { BACKEND_NAMES, initBackend, initInference, nativeRuntime, type BackendName } from '../../model/backend.ts';
import { classIdIn } from '../../model/examples.ts';
import { Explainer } from '../../model/explain.ts';
import { NativePathGradients } from '../../model/native/gradients.ts';
import { checkpointWeights } from '../../model/native/weights.ts';
import type { ExplainReply, ExplainRequest } from './protocol.ts';

interface Loaded {
  version: number;
  explainer: Explainer;
  release: () => void;
}

let loaded: Loaded | undefined;
const queue: ExplainRequest[] = [];
let busy = false;
let backendReady: Promise<unknown> = Promise.resolve();

function send(reply: ExplainReply): void {
  process.send!(reply);
}

async function model(req: ExplainRequest): Promise<Loaded> {
  if (loaded?.version === req.version) return loaded;
  if (loaded) {
    await loaded.explainer.dispose();
    loaded.release();
    loaded = undefined;
  }
  const options = (info: CheckpointInfo, pooling: Pooling) => ({
    maxTokens: info.maxTokens,
    // As the scorer: only `last` pooling pads, to the training length.
    width: pooling === 'last' ? info.maxTokens : undefined,
    positiveClass: classIdIn(info.labelNames, 'spam'),
    negativeClass: classIdIn(info.labelNames, 'ham'),
  });
  const rt = nativeRuntime();
  if (rt) {
    try {
      const weights = await checkpointWeights(req.modelDir, 'logits');
      const explainer = new Explainer(await NativePathGradients.create(rt, weights), options(weights.info, weights.options.pooling));
      loaded = { version: req.version, explainer, release: () => undefined };
      return loaded;
    } catch (err) {
      console.error(`model version ${req.version} is explained on tfjs: native gradients failed (${(err as Error).message})`);
    }
  }
  const { classifier, info } = await loadCheckpoint(req.modelDir);
  const explainer = Explainer.onTfjs(classifier, options(info, classifier.options.pooling));
  loaded = { version: req.version, explainer, release: () => classifier.dispose() };
  return loaded;
}

async function drain(): Promise<void> {
  if (busy) return;
  busy = true;
  await backendReady;
  while (queue.length) {
    const req = queue.shift()!;
    try {
      const m = await model(req);
      send({ type: 'done', id: req.id, explanation: await m.explainer.explain(req.text) });
    } catch (err) {
      send({ type: 'error', id: req.id, message: (err as Error).message });
    }
    // Let the reply go out and new requests come in before the next synchronous stretch.
    await new Promise((resolve) => setImmediate(resolve));
  }
  busy = false;
}

if (!process.send) {
  console.error('usage: worker.ts BACKEND INFERENCE, started by the daemon with an IPC channel');
  process.exit(2);
}
// Listen first: a request sent while the backend starts would otherwise be dropped.
process.on('message', (msg: ExplainRequest) => {
  queue.push(msg);
  void drain();
});
// The daemon going away closes the channel: nothing left to explain for.
process.on('disconnect', () => process.exit(0));
const backend = process.argv[2] ?? 'auto';
if (!(BACKEND_NAMES as readonly string[]).includes(backend)) {
  console.error(`explanation process: unknown backend "${backend}" (expected one of ${BACKEND_NAMES.join(', ')})`);
  process.exit(2);
}
// Native as the daemon's inference is (auto: a runtime that fails to load here leaves tfjs, not an error).
const inference = process.argv[3] === 'native' ? 'auto' : 'tfjs';
const log = (line: string) => console.error(line);
backendReady = initBackend(backend as BackendName, { log })
  .then(() => initInference(inference, { log }))
  .catch((err: unknown) => {
    console.error(`explanation process: ${(err as Error).message}`);
    process.exit(1);
  });
