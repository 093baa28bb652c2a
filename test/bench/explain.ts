/**
 * Cost of an explanation (integrated gradients, model/explain.ts) of a 128-token message: the first one of its
 * length (which also computes the baseline end, then reused for every message of that length) and the next,
 * with the evaluations each took and the completeness gap. `benchExplain` is part of `npm run bench`
 * (test/bench/run.ts, on its fine-tuned 124M-sized model); run alone, this file times GPT-2-124M-sized random
 * weights initialised as GPT-2's (the same cost as real ones) on the inference path chosen as the daemon would (native when ONNX Runtime
 * is installed) and prints one JSON line: `node --import tsx test/bench/explain.ts [BACKEND [auto|native|tfjs]]`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend, initInference, nativeRuntime, type BackendName, type InferenceName } from '../../model/backend.ts';
import { GPT2Classifier } from '../../model/classifier.ts';
import { parseSmsCollection } from '../../model/dataset.ts';
import { Explainer, type Explanation } from '../../model/explain.ts';
import { NativePathGradients } from '../../model/native/gradients.ts';
import { classifierWeights } from '../../model/native/weights.ts';
import { TfjsPathGradients, type PathGradients } from '../../model/path-gradients.ts';
import { encode } from '../../model/tokenizer.ts';
import { SHARED } from '../helpers/fixture.ts';
import { gpt2LikeWeights } from './weights.ts';

export const EXPLAIN_TOKENS = 128;

/** Two different spam texts of at least `tokens` tokens, from the SMS collection's spam messages. */
function messages(tokens: number): [string, string] {
  const spam = parseSmsCollection(readFileSync(join(SHARED, 'data', 'SMSSpamCollection'), 'utf8')).filter((m) => m.label === 'spam').map((m) => m.text);
  const build = (from: number) => {
    let text = '';
    for (let i = from; encode(text).length < tokens; i++) text += `${spam[i % spam.length]} `;
    return text;
  };
  return [build(0), build(40)];
}

export interface ExplainBench {
  /** A shorter message explained first, as the first request after a model loads (the runtime's first allocations). */
  warmup_s: number;
  tokens: number;
  /** The first message of its length: baseline end computed too. */
  first_s: number;
  first_evaluations: number;
  /** Another message of the same length: the baseline end reused. */
  next_s: number;
  next_evaluations: number;
  /** One gradient evaluation (a forward and backward pass of the 128 tokens), averaged. */
  per_evaluation_s: number;
  /** CPU seconds (all threads) of the two: unlike wall time, hardly changed by other processes on the machine. */
  cpu_s: number;
  relative_gaps: number[];
  converged: boolean;
}

/** Explains two 128-token messages with `gradients` (tfjs or native, named by `path` in the log); `first` is the first explanation. */
export async function benchExplain(gradients: PathGradients, path: string, log: (s: string) => void = () => undefined): Promise<{ bench: ExplainBench; first: Explanation }> {
  const [a, b] = messages(EXPLAIN_TOKENS);
  const explainer = new Explainer(gradients, { maxTokens: EXPLAIN_TOKENS });
  try {
    const warmup = await explainer.explain(messages(32)[0]);
    log(`explain (${path}), first after loading (${warmup.tokens.length} tokens): ${warmup.seconds.toFixed(2)} s`);
    const cpu0 = process.cpuUsage();
    const first = await explainer.explain(a);
    log(`explain (${path}), first of its length: ${first.seconds.toFixed(2)} s, ${first.quadrature.evaluations} evaluations, gap ${(100 * first.relativeGap).toFixed(2)}%`);
    const next = await explainer.explain(b);
    const cpu = process.cpuUsage(cpu0);
    log(`explain (${path}), next: ${next.seconds.toFixed(2)} s, ${next.quadrature.evaluations} evaluations, gap ${(100 * next.relativeGap).toFixed(2)}%`);
    const bench = {
      warmup_s: +warmup.seconds.toFixed(2),
      tokens: first.tokens.length,
      first_s: +first.seconds.toFixed(2),
      first_evaluations: first.quadrature.evaluations,
      next_s: +next.seconds.toFixed(2),
      next_evaluations: next.quadrature.evaluations,
      per_evaluation_s: +((first.seconds + next.seconds) / (first.quadrature.evaluations + next.quadrature.evaluations)).toFixed(3),
      cpu_s: +((cpu.user + cpu.system) / 1e6).toFixed(1),
      relative_gaps: [first.relativeGap, next.relativeGap].map((g) => +g.toFixed(4)),
      converged: first.converged && next.converged,
    };
    return { bench, first };
  } finally {
    await explainer.dispose();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
  const backend = await initBackend((process.argv[2] ?? 'auto') as BackendName, { log });
  const inference = await initInference((process.argv[3] ?? 'auto') as InferenceName, { log });
  const clf = new GPT2Classifier(gpt2LikeWeights(1), { layers: 'last_block' });
  const rt = nativeRuntime();
  const gradients = rt ? await NativePathGradients.create(rt, await classifierWeights(clf, 'logits')) : new TfjsPathGradients(clf, EXPLAIN_TOKENS);
  const { bench } = await benchExplain(gradients, inference.name, log);
  console.log(JSON.stringify({ backend: backend.description, inference: inference.description, model: 'gpt2-124M architecture, random weights', explain: bench, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));
  process.exit(0);
}
