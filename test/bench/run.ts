/**
 * `npm run bench`: cost of fine-tuning and scoring GPT-2-124M-sized weights (random weights: the cost is the
 * same) on the chapter's balanced SMS split, naive recipe vs the cached + bucketed path. Prints one JSON line.
 *
 * The naive recipe (pad to 120, full forward of every block at every position each step, backward through the
 * whole last block) takes hours on a laptop CPU, so it is timed over `--naive-steps` steps and extrapolated to
 * 5 epochs; the cached path is timed for real on `--subset` training messages (default: all) and its parts
 * (trunk pass per message, training step) are reported so the full-job figure is explicit arithmetic. Then the
 * daemon's re-fine-tuning after 100 new corrections is run for real on the trained model, and a 128-token message
 * is explained (integrated gradients, test/bench/explain.ts), on tfjs and on the native gradient graph.
 *
 * The trunk pass and scoring are then run again on the native inference runtime (ONNX Runtime, when installed)
 * from the same weights, with the speed-up over tfjs, and a process that only scores (what the daemon's model host
 * holds) is started on each path to report its peak RSS.
 *
 * Options: --backend NAME  --inference auto|native|tfjs  --naive-steps N (3)  --subset N (all)  --epochs N (5)
 *          --score N (the test split after the 100 used as corrections)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../../model/adamw.ts';
import { initBackend, initInference, nativeRuntime, type BackendName, type InferenceName } from '../../model/backend.ts';
import { GPT2Classifier, crossEntropy, toTokenBatch } from '../../model/classifier.ts';
import { balanceByUndersampling, parseSmsCollection, shuffleSplit, toLabeled } from '../../model/dataset.ts';
import { batches, encodeExamples, type EncodedExample } from '../../model/examples.ts';
import { CachedFeatures, DirectFeatures, withFeatures } from '../../model/features.ts';
import { causalMask } from '../../model/gpt2.ts';
import { BatchScorer } from '../../model/scorer.ts';
import { padBatch } from '../../model/tokenizer.ts';
import { TrunkCache } from '../../model/trunk-cache.ts';
import { trainClassifier } from '../../model/train.ts';
import { saveCheckpoint } from '../../model/checkpoint.ts';
import { NativeClassifier } from '../../model/native/classifier.ts';
import { checkpointWeights, classifierWeights } from '../../model/native/weights.ts';
import { writeSafetensors } from '../../model/safetensors.ts';
import { disposeWeights, loadGPT2 } from '../../model/weights.ts';
import { refineSet } from '../../daemon/training/corpus.ts';
import { SHARED } from '../helpers/fixture.ts';
import { benchExplain, EXPLAIN_TOKENS } from './explain.ts';
import { gpt2LikeWeights } from './weights.ts';
import { NativePathGradients } from '../../model/native/gradients.ts';
import { TfjsPathGradients } from '../../model/path-gradients.ts';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    'naive-steps': { type: 'string', default: '3' },
    subset: { type: 'string' },
    epochs: { type: 'string', default: '5' },
    score: { type: 'string' },
    inference: { type: 'string', default: 'auto' },
  },
});

const MAX_TOKENS = 120;
const BATCH = 8;
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const run = promisify(execFile);
const maxAbsDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
const secs = (t0: number) => (performance.now() - t0) / 1000;

const backend = await initBackend(args.backend as BackendName, { log });
// The tfjs figures are measured on tfjs whatever is chosen; the native ones when the runtime is there.
const inference = await initInference(args.inference as InferenceName, { log });
const rt = nativeRuntime();
const raw = parseSmsCollection(readFileSync(join(SHARED, 'data', 'SMSSpamCollection'), 'utf8'));
const split = shuffleSplit(toLabeled(balanceByUndersampling(raw, 123)), { train: 0.7, validation: 0.1 }, 123);
const train = encodeExamples(split.train, MAX_TOKENS);
const validation = encodeExamples(split.validation, MAX_TOKENS);
const testSet = encodeExamples(split.test, MAX_TOKENS);
const meanTokens = train.reduce((s, e) => s + e.ids.length, 0) / train.length;
log(`${train.length} train / ${validation.length} validation / ${testSet.length} test messages, ${meanTokens.toFixed(1)} tokens on average`);

// Random 124M-sized weights initialised as GPT-2's, written once as a float32 safetensors file like a downloaded
// GPT-2: both paths load that file (the native one reads it as ONNX external data, as the daemon does).
const work = mkdtempSync(join(tmpdir(), 'gptspam-bench-'));
const basePath = join(work, 'model.safetensors');
{
  const w = gpt2LikeWeights(1);
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of w.tensors) tensors[name] = { shape: t.shape, data: t.dataSync() as Float32Array };
  await writeSafetensors(basePath, tensors, { format: 'pt' });
  disposeWeights(w.tensors);
}
const make = async () => new GPT2Classifier(await loadGPT2(basePath), { layers: 'last_block', pooling: 'last_real' });

// 1. One forward pass, 8 × 120 tokens, every block at every position (the model's raw speed).
const clf = await make();
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
const fresh = await make();
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

// 3b. The same trunk pass on the native runtime, into a fresh cache (same messages, same batches of 16).
const native = rt ? await nativeTrunkPass() : undefined;
async function nativeTrunkPass() {
  let t = performance.now();
  const trunk = await NativeClassifier.create(rt!, await classifierWeights(fresh, 'trunk'), 'trunk');
  const sessionSeconds = secs(t);
  const nativeFeatures = new CachedFeatures(fresh, new TrunkCache({ memoryBytes: 4 * 1024 ** 3 }));
  t = performance.now();
  await nativeFeatures.warmWith(trunk, [...subset, ...validation]);
  const seconds = secs(t);
  await trunk.dispose();
  // Sanity: the natively cached activations give the logits tfjs's cache gives.
  const probe = validation.slice(0, 16);
  const diff = maxAbsDiff(
    withFeatures(nativeFeatures, probe, (f) => tf.tidy(() => Array.from(fresh.logitsFromFeatures(f).dataSync()))),
    withFeatures(features, probe, (f) => tf.tidy(() => Array.from(fresh.logitsFromFeatures(f).dataSync()))),
  );
  log(`native trunk: ${seconds.toFixed(1)} s (session ${sessionSeconds.toFixed(1)} s), ${(trunkSeconds / seconds).toFixed(1)}x; logits from its cache differ by ${diff.toExponential(1)}`);

  // Optional int8 trunk weights (off by default): the same pass, and what it changes in the validation logits.
  const int8 = await NativeClassifier.create(rt!, await classifierWeights(fresh, 'trunk'), 'trunk', { int8Trunk: true });
  const int8Features = new CachedFeatures(fresh, new TrunkCache({ memoryBytes: 4 * 1024 ** 3 }));
  t = performance.now();
  await int8Features.warmWith(int8, [...subset, ...validation]);
  const int8Seconds = secs(t);
  await int8.dispose();
  const logitsOf = (p: CachedFeatures) => batches(validation, 16, false).flatMap((b) =>
    withFeatures(p, b, (f) => tf.tidy(() => fresh.logitsFromFeatures(f).arraySync() as number[][])));
  const exact = logitsOf(nativeFeatures);
  const approx = logitsOf(int8Features);
  const int8Diff = maxAbsDiff(approx.flat(), exact.flat());
  const argmax = (r: number[]) => (r[1]! > r[0]! ? 1 : 0);
  const agree = exact.filter((r, i) => argmax(r) === argmax(approx[i]!)).length / exact.length;
  log(`native int8 trunk: ${int8Seconds.toFixed(1)} s; validation logits differ by up to ${int8Diff.toExponential(1)}, same label for ${(100 * agree).toFixed(1)}%`);
  return { sessionSeconds, seconds, diff, int8: { seconds: int8Seconds, diff: int8Diff, agree } };
}

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
const scoreTexts = split.test.slice(100, 100 + scoreSet.length).map((r) => r.text);
const scorer = new BatchScorer(fresh, { maxTokens: MAX_TOKENS, batchSize: 16 });
t0 = performance.now();
const tfjsLogits = await scorer.scoreMany(scoreTexts);
const batched = scoreSet.length / secs(t0);
log(`scoring: ${oneAtATime.toFixed(1)} msg/s one at a time, ${batched.toFixed(1)} msg/s batched`);

// 4b. The same scoring on the native runtime, from the trained model's checkpoint files as the daemon loads it.
const ckpt = join(work, 'model');
await saveCheckpoint(ckpt, fresh, { maxTokens: MAX_TOKENS, labelNames: ['ham', 'spam'] });
const nativeScoring = rt ? await nativeScore() : undefined;
async function nativeScore() {
  const model = await NativeClassifier.create(rt!, await checkpointWeights(ckpt, 'logits'), 'logits');
  await model.batchLogits([scoreSet[0]!.ids]); // warm-up, as tfjs's first call above
  let t = performance.now();
  for (const e of scoreSet) await model.batchLogits([e.ids]);
  const one = scoreSet.length / secs(t);
  t = performance.now();
  const logits = await new BatchScorer(model, { maxTokens: MAX_TOKENS, batchSize: 16 }).scoreMany(scoreTexts);
  const many = scoreSet.length / secs(t);
  await model.dispose();
  const diff = maxAbsDiff(logits.flat(), tfjsLogits.flat());
  log(`native scoring: ${one.toFixed(1)} msg/s one at a time, ${many.toFixed(1)} msg/s batched; logits differ from tfjs's by ${diff.toExponential(1)}`);
  return { one, many, diff };
}

// 5. What a scoring process holds (the daemon's model host, nothing else loaded): peak RSS on each path.
const textsPath = join(work, 'texts.json');
writeFileSync(textsPath, JSON.stringify(scoreTexts));
const scoringProcess = async (path: 'native' | 'tfjs') => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'scoring-process.ts');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, ckpt, path, textsPath], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as { peak_rss_mb: number; msgs_per_s: number };
};
const processes = { tfjs: await scoringProcess('tfjs'), ...(rt ? { native: await scoringProcess('native') } : {}) };
log(`scoring process peak RSS: ${Object.entries(processes).map(([k, v]) => `${k} ${v.peak_rss_mb} MB`).join(', ')}`);
rmSync(work, { recursive: true, force: true });
// 6. "Why is this spam?": integrated gradients for a 128-token message on the fine-tuned model, on each path.
const explainTfjs = await benchExplain(new TfjsPathGradients(fresh, EXPLAIN_TOKENS), 'tfjs', log);
const explainNative = rt ? await benchExplain(await NativePathGradients.create(rt, await classifierWeights(fresh, 'logits')), 'native', log) : undefined;
const explainDiff = explainNative
  ? maxAbsDiff(explainNative.first.tokens.map((t) => t.weight), explainTfjs.first.tokens.map((t) => t.weight)) / Math.max(Number.MIN_VALUE, ...explainTfjs.first.tokens.map((t) => Math.abs(t.weight)))
  : undefined;
if (explainDiff !== undefined) log(`explain: native token weights differ from tfjs's by ${explainDiff.toExponential(1)} of the largest weight`);

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
  explain_128_tokens: explainTfjs.bench,
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  inference: inference.description,
  native: native && nativeScoring ? {
    trunk_s: +native.seconds.toFixed(1),
    trunk_per_message_s: +(native.seconds / (subset.length + validation.length)).toFixed(4),
    session_s: +native.sessionSeconds.toFixed(1),
    scoring_msgs_per_s: { one_at_a_time: +nativeScoring.one.toFixed(1), batched: +nativeScoring.many.toFixed(1) },
    speedup_vs_tfjs: {
      trunk: +(trunkSeconds / native.seconds).toFixed(2),
      scoring_one_at_a_time: +(nativeScoring.one / oneAtATime).toFixed(2),
      scoring_batched: +(nativeScoring.many / batched).toFixed(2),
    },
    max_abs_logit_diff_vs_tfjs: { scoring: +nativeScoring.diff.toExponential(1), cached_trunk: +native.diff.toExponential(1) },
    explain_128_tokens: explainNative ? { ...explainNative.bench, speedup_vs_tfjs: +(explainTfjs.bench.per_evaluation_s / explainNative.bench.per_evaluation_s).toFixed(2), max_weight_diff_vs_tfjs_relative: +explainDiff!.toExponential(1) } : null,
    int8_trunk: {
      trunk_s: +native.int8.seconds.toFixed(1),
      speedup_vs_float32: +(native.seconds / native.int8.seconds).toFixed(2),
      max_abs_validation_logit_diff: +native.int8.diff.toExponential(1),
      same_label_share: +native.int8.agree.toFixed(4),
    },
  } : null,
  scoring_process_peak_rss_mb: Object.fromEntries(Object.entries(processes).map(([k, v]) => [k, v.peak_rss_mb])),
}));
process.exit(0);
