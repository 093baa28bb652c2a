/**
 * `npm run bench`: cost of fine-tuning and scoring GPT-2-124M-sized weights (random weights: the cost is the
 * same) on the chapter's balanced SMS split, naive recipe vs the cached + bucketed path. Prints one JSON line.
 *
 * The naive recipe (pad to 120, full forward of every block at every position each step, backward through the
 * whole last block) takes hours on a laptop CPU, so it is timed over `--naive-steps` steps and extrapolated to
 * 5 epochs; the cached path is timed for real on `--subset` training messages (default: all) and its parts
 * (trunk pass per message, training step) are reported so the full-job figure is explicit arithmetic. Then the
 * daemon's re-fine-tuning after 100 new corrections is run for real on the trained model, and a 128-token message
 * is explained (integrated gradients, test/bench/explain.ts).
 *
 * Options: --backend NAME  --naive-steps N (3)  --subset N (all)  --epochs N (5)  --score N (the test split after the 100 used as corrections)
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../model/adamw.ts';
import { initBackend, type BackendName } from '../../model/backend.ts';
import { GPT2Classifier, crossEntropy, toTokenBatch } from '../../model/classifier.ts';
import { GPT2_PRESETS } from '../../model/config.ts';
import { balanceByUndersampling, parseSmsCollection, shuffleSplit, toLabeled } from '../../model/dataset.ts';
import { CachedFeatures, DirectFeatures } from '../../model/features.ts';
import { causalMask } from '../../model/gpt2.ts';
import { BatchScorer } from '../../model/scorer.ts';
import { padBatch } from '../../model/tokenizer.ts';
import { TrunkCache } from '../../model/trunk-cache.ts';
import { encodeExamples, trainClassifier, withFeatures, type EncodedExample } from '../../model/train.ts';
import { initGPT2 } from '../../model/weights.ts';
import { refineSet } from '../../daemon/training/corpus.ts';
import { SHARED } from '../helpers/fixture.ts';
import { benchExplain } from './explain.ts';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    'naive-steps': { type: 'string', default: '3' },
    subset: { type: 'string' },
    epochs: { type: 'string', default: '5' },
    score: { type: 'string' },
  },
});

const MAX_TOKENS = 120;
const BATCH = 8;
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const secs = (t0: number) => (performance.now() - t0) / 1000;

const backend = await initBackend(args.backend as BackendName, { log });
const raw = parseSmsCollection(readFileSync(join(SHARED, 'data', 'SMSSpamCollection'), 'utf8'));
const split = shuffleSplit(toLabeled(balanceByUndersampling(raw, 123)), { train: 0.7, validation: 0.1 }, 123);
const train = encodeExamples(split.train, MAX_TOKENS);
const validation = encodeExamples(split.validation, MAX_TOKENS);
const testSet = encodeExamples(split.test, MAX_TOKENS);
const meanTokens = train.reduce((s, e) => s + e.ids.length, 0) / train.length;
log(`${train.length} train / ${validation.length} validation / ${testSet.length} test messages, ${meanTokens.toFixed(1)} tokens on average`);

const make = () => new GPT2Classifier(initGPT2(GPT2_PRESETS['124M'], 1), { layers: 'last_block', pooling: 'last_real' });

// 1. One forward pass, 8 × 120 tokens, every block at every position (the model's raw speed).
const clf = make();
const batch = (() => {
  const p = padBatch(train.slice(0, BATCH).map((e) => e.ids), MAX_TOKENS);
  return toTokenBatch(p.ids, p.rows, p.width, p.lengths);
})();
// Read outside tidy: a typed array returned from tidy is walked element by element (~0.5 s for this one).
const forward = () => {
  const h = tf.tidy(() => clf.gpt.hiddenStates(batch, 'causal'));
  h.dataSync();
  h.dispose();
};
forward(); // warm-up
let t0 = performance.now();
forward();
const forward8x120 = secs(t0);
log(`forward 8×120: ${forward8x120.toFixed(2)} s`);

// 2. The naive recipe: trunk + full last block every step, padded to 120, backward through the whole block.
const naiveStep = (opt: AdamW, ex: EncodedExample[]) => {
  const p = padBatch(ex.map((e) => e.ids), MAX_TOKENS);
  const b = toTokenBatch(p.ids, p.rows, p.width, p.lengths);
  const last = clf.config.nLayer - 1;
  const x = tf.tidy(() => clf.gpt.trunk(b, 'causal'));
  const vars = clf.trainableVariables();
  const { value, grads } = tf.variableGrads(() => {
    const h = clf.gpt.block(last, x, causalMask(MAX_TOKENS));
    const pooled = tf.reshape(tf.slice(h, [0, MAX_TOKENS - 1, 0], [-1, 1, -1]), [ex.length, -1]);
    const e = clf.config;
    const normed = tf.add(tf.mul(tf.div(tf.sub(pooled, tf.mean(pooled, -1, true)), tf.sqrt(tf.add(tf.moments(pooled, -1, true).variance, e.layerNormEpsilon))), clf.gpt.w('ln_f.weight')), clf.gpt.w('ln_f.bias'));
    return crossEntropy(tf.add(tf.matMul(normed, clf.headWeight), clf.headBias) as tf.Tensor2D, ex.map((q) => q.label));
  }, [...vars.values()]);
  value.dataSync();
  const byName = new Map([...vars].map(([n, v]) => [n, grads[v.name]!]));
  opt.apply(byName);
  tf.dispose([value, x, b.ids, ...Object.values(grads)]);
};
let naiveStepSeconds: number;
{
  const opt = new AdamW(clf.trainableVariables());
  naiveStep(opt, train.slice(0, BATCH)); // warm-up
  const n = Number(args['naive-steps']);
  t0 = performance.now();
  for (let s = 0; s < n; s++) naiveStep(opt, train.slice(s * BATCH, (s + 1) * BATCH));
  naiveStepSeconds = secs(t0) / n;
  opt.dispose();
}
const epochs = Number(args.epochs);
const stepsPerEpoch = Math.floor(train.length / BATCH);
const naiveFineTune = naiveStepSeconds * stepsPerEpoch * epochs;
log(`naive step: ${naiveStepSeconds.toFixed(2)} s → ${epochs} epochs ≈ ${(naiveFineTune / 60).toFixed(1)} min`);

// 3. The cached + bucketed path, for real: trunk once per message (length-sorted), then every epoch on the cache.
const subset = args.subset ? train.slice(0, Number(args.subset)) : train;
const fresh = make();
const cache = new TrunkCache({ memoryBytes: 4 * 1024 ** 3 });
const features = new CachedFeatures(fresh, cache);
t0 = performance.now();
features.warm([...subset, ...validation]);
const trunkSeconds = secs(t0);
const trunkPerMessage = trunkSeconds / (subset.length + validation.length);
t0 = performance.now();
const result = trainClassifier(fresh, subset, validation, { epochs, batchSize: BATCH, features, maxTokens: MAX_TOKENS });
const cachedTrainSeconds = secs(t0);
const cachedStep = cachedTrainSeconds / Math.max(1, result.steps);
const cachedFineTune = trunkSeconds + cachedTrainSeconds;
const cachedFullEstimate = trunkPerMessage * (train.length + validation.length) + cachedStep * stepsPerEpoch * epochs;
log(`cached: trunk ${trunkSeconds.toFixed(1)} s (${subset.length + validation.length} msgs), training ${cachedTrainSeconds.toFixed(1)} s (${result.steps} steps)`);

// Re-fine-tuning after 100 new corrections, as the daemon does it (daemon/training): their trunk pass, then
// `refine.epochs` epochs from the trained model over them plus 4x as many replayed training examples.
const corrections = testSet.slice(0, 100).map((e) => ({ ...e, fresh: true }));
t0 = performance.now();
features.warm(corrections);
const pool: Array<EncodedExample & { fresh?: boolean }> = [...train, ...corrections];
const refineSetup = refineSet(pool, 4, 'bench');
const refined = trainClassifier(fresh, refineSetup, validation, { epochs: 2, batchSize: BATCH, features, maxTokens: MAX_TOKENS });
const refineSeconds = secs(t0);
log(`refine after 100 corrections: ${refineSeconds.toFixed(1)} s (${refineSetup.length} examples, ${refined.steps} steps)`);

// 4. Scoring throughput on the test split (the refine's 100 corrections came from it, so score the rest): one at a time vs batched by length.
const scoreSet = testSet.slice(100, 100 + (args.score ? Number(args.score) : testSet.length));
const direct = new DirectFeatures(fresh);
t0 = performance.now();
for (const e of scoreSet) withFeatures(direct, [e], (f) => tf.tidy(() => fresh.logitsFromFeatures(f).dataSync()));
const oneAtATime = scoreSet.length / secs(t0);
const scorer = new BatchScorer(fresh, { maxTokens: MAX_TOKENS, batchSize: 16 });
t0 = performance.now();
await scorer.scoreMany(split.test.slice(100, 100 + scoreSet.length).map((r) => r.text));
const batched = scoreSet.length / secs(t0);
log(`scoring: ${oneAtATime.toFixed(1)} msg/s one at a time, ${batched.toFixed(1)} msg/s batched`);

// 5. "Why is this spam?": integrated gradients for a 128-token message on the fine-tuned model.
const explain = benchExplain(fresh, log);

console.log(JSON.stringify({
  backend: backend.name,
  backendDescription: backend.description,
  model: 'gpt2-124M architecture, random weights',
  data: { train: train.length, validation: validation.length, test: testSet.length, meanTokens: +meanTokens.toFixed(1) },
  forward_8x120_s: +forward8x120.toFixed(3),
  naive: { step_s: +naiveStepSeconds.toFixed(3), steps_timed: Number(args['naive-steps']), fine_tune_5_epochs_s_extrapolated: Math.round(naiveFineTune) },
  cached: {
    messages: subset.length,
    trunk_s: +trunkSeconds.toFixed(1),
    trunk_per_message_s: +trunkPerMessage.toFixed(4),
    train_s: +cachedTrainSeconds.toFixed(1),
    step_s: +cachedStep.toFixed(4),
    fine_tune_s: +cachedFineTune.toFixed(1),
    fine_tune_full_split_s_estimate: Math.round(cachedFullEstimate),
    speedup_vs_naive: +(naiveFineTune / cachedFullEstimate).toFixed(1),
    refine_after_100_corrections_s: +refineSeconds.toFixed(1),
  },
  scoring_msgs_per_s: { one_at_a_time: +oneAtATime.toFixed(1), batched: +batched.toFixed(1), messages: scoreSet.length },
  explain_128_tokens: explain,
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
}));
process.exit(0);
