/**
 * Explanations in their own process: `node --import tsx worker.ts BACKEND`, driven over the IPC channel (one
 * request at a time, see protocol.ts). Integrated gradients is seconds of synchronous tensor work per message; in
 * a process of its own it never holds up the daemon's event loop (scoring, the API), its wasm heap (up to ~2 GB
 * for GPT-2-124M, which a wasm heap never gives back) is returned to the system when it exits, and a crash costs
 * an explanation, not the daemon. It keeps the last model version it loaded.
 */
import { loadCheckpoint, type CheckpointInfo } from '../../model/checkpoint.ts';
import type { GPT2Classifier } from '../../model/classifier.ts';
import { BACKEND_NAMES, initBackend, type BackendName } from '../../model/backend.ts';
import { classIdIn } from '../../model/examples.ts';
import { Explainer } from '../../model/explain.ts';
import type { ExplainReply, ExplainRequest } from './protocol.ts';

interface Loaded {
  version: number;
  classifier: GPT2Classifier;
  info: CheckpointInfo;
  explainer: Explainer;
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
    loaded.explainer.dispose();
    loaded.classifier.dispose();
    loaded = undefined;
  }
  const { classifier, info } = await loadCheckpoint(req.modelDir);
  const explainer = new Explainer(classifier, {
    maxTokens: info.maxTokens,
    // As the scorer: only `last` pooling pads, to the training length.
    width: classifier.options.pooling === 'last' ? info.maxTokens : undefined,
    positiveClass: classIdIn(info.labelNames, 'spam'),
    negativeClass: classIdIn(info.labelNames, 'ham'),
  });
  loaded = { version: req.version, classifier, info, explainer };
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
      send({ type: 'done', id: req.id, explanation: m.explainer.explain(req.text) });
    } catch (err) {
      send({ type: 'error', id: req.id, message: (err as Error).message });
    }
    // Let the reply go out and new requests come in before the next synchronous stretch.
    await new Promise((resolve) => setImmediate(resolve));
  }
  busy = false;
}

if (!process.send) {
  console.error('usage: worker.ts BACKEND, started by the daemon with an IPC channel');
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
backendReady = initBackend(backend as BackendName, { log: (line) => console.error(line) }).catch((err: unknown) => {
  console.error(`explanation process: ${(err as Error).message}`);
  process.exit(1);
});
