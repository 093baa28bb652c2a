/**
 * A training run in its own process: `node worker.js JOB.json` (worker.ts through tsx in the repository). Training is long synchronous
 * tensor work; in a process of its own it can never stall the daemon's scoring, and killing it is a clean
 * cancel. Reports go to file descriptor 3 as JSON lines written synchronously, so they arrive while training
 * runs (asynchronous IPC would wait for the end of the synchronous training loop).
 */
import { writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { initBackend, initInference } from '../../model/backend.ts';
import { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from '../../model/checkpoint.ts';
import { GPT2Classifier, type TrainableLayers } from '../../model/classifier.ts';
import type { AttentionMode } from '../../model/gpt2.ts';
import { SCRATCH_SIZES, type GPT2Config } from '../../model/config.ts';
import { encodeExamples, labelId, LABEL_NAMES, spamLogOdds, type EncodedExample } from '../../model/examples.ts';
import { defaultFeatures } from '../../model/features.ts';
import { computeMetrics } from '../../model/metrics.ts';
import { evaluate, padWidthFor, trainClassifier } from '../../model/train.ts';
import { warmTrunk } from '../../model/native/trunk.ts';
import { TrunkCache } from '../../model/trunk-cache.ts';
import { initGPT2, loadGPT2 } from '../../model/weights.ts';
import { calibrate } from '../verdicts.ts';
import { countByKind, refineSet, smsCollection, spamAssassin, trainingSets, type LabelledMessage } from './corpus.ts';
import { readTrainJob, type HeldOutMetrics, type TrainJob, type WorkerReport } from './job.ts';

const REPORT_FD = 3;

function report(r: WorkerReport): void {
  writeSync(REPORT_FD, `${JSON.stringify(r)}\n`);
}
const log = (line: string) => report({ type: 'log', line });

/** Held-out metrics at the classifier's own decision boundary, and each example's log-odds of spam. */
function heldOutMetrics(clf: GPT2Classifier, set: EncodedExample[], batchSize: number, cache: TrunkCache, maxTokens: number): { metrics: HeldOutMetrics; logOdds: number[] } {
  const r = evaluate(clf, set, { batchSize, features: defaultFeatures(clf, maxTokens, cache) });
  const m = computeMetrics(set.map((e) => e.label), r.predictions, 2);
  return {
    metrics: { accuracy: m.accuracy, precision: m.precision, recall: m.recall, f1: m.f1, count: set.length },
    logOdds: r.logits.map(spamLogOdds),
  };
}

/**
 * The classifier a run trains: the current model, to refine it, when the job asks for that and the current model
 * was trained on this job's base weights with the same trainable layers; otherwise a fresh head on the base.
 */
async function startingPoint(job: TrainJob, shape: { layers: TrainableLayers; attention: AttentionMode }): Promise<{ classifier: GPT2Classifier; refinedFrom: number | null }> {
  const { layers, attention } = shape;
  if (job.refine && job.current) {
    const info = await readCheckpointInfo(job.current.dir).catch(() => null);
    const sameBase = info !== null && (job.base.kind === 'pretrained'
      ? info.base.scratchSeed === undefined && info.base.source === job.base.path
      : info.base.scratchSeed === job.base.seed && sameConfig(info.base.config, SCRATCH_SIZES[job.base.size]));
    // The checkpoint records the truncation length it trained with: the job's, capped by the model's context.
    // A changed sample size would put examples the current model trained on into the held-out set.
    const sameSample = info?.extra?.maxPerCorpus === job.corpora.maxPerCorpus;
    const sameShape = info?.options.layers === layers && info.options.attention === attention;
    if (info && sameBase && sameSample && sameShape && info.maxTokens === Math.min(job.maxTokens, info.base.config.nPositions)) {
      try {
        return { classifier: (await loadCheckpoint(job.current.dir)).classifier, refinedFrom: job.current.version };
      } catch (err) {
        log(`cannot continue from version ${job.current.version} (${(err as Error).message}): training from the base`);
      }
    } else {
      log(`version ${job.current.version} was trained on another base, layers, length or sample: training from the base`);
    }
  }
  const base = job.base.kind === 'pretrained' ? await loadGPT2(job.base.path) : initGPT2(SCRATCH_SIZES[job.base.size], job.base.seed);
  return { classifier: new GPT2Classifier(base, { layers, attention, numClasses: 2 }), refinedFrom: null };
}

function sameConfig(a: GPT2Config, b: GPT2Config): boolean {
  return (Object.keys(b) as (keyof GPT2Config)[]).every((k) => a[k] === b[k]);
}

async function run(job: TrainJob): Promise<void> {
  const started = performance.now();
  await initBackend(job.backend, { log });
  await initInference(job.inference, { log });

  report({ type: 'progress', phase: 'preparing data', step: 0, totalSteps: 0, epoch: 0, loss: null, etaSeconds: null });
  const corpora: LabelledMessage[] = [];
  if (job.corpora.smsFile) {
    const sms = await smsCollection(job.corpora.smsFile);
    log(`SMS Spam Collection: ${sms.length} messages`);
    corpora.push(...sms);
  }
  if (job.corpora.spamAssassin) {
    const mail = await spamAssassin(job.home, log);
    log(`SpamAssassin corpus: ${mail.length} e-mails`);
    corpora.push(...mail);
  }
  const split = trainingSets([...corpora, ...job.personal], job.corpora, job.heldOutFraction);
  const corrections = job.personal.length;
  const trained = countByKind(split.train);
  const counts = (set: LabelledMessage[]) =>
    Object.entries(countByKind(set)).filter(([, c]) => c.ham + c.spam > 0).map(([kind, c]) => `${kind} ${c.ham} ham/${c.spam} spam`).join(', ') || 'none';
  log(`training set: ${split.train.length} train (${counts(split.train)}), ${split.validation.length} validation, ${split.heldOut.length} held out (${counts(split.heldOut)}); ${corrections} labels from people`);
  if (split.train.length < job.batchSize) {
    throw new Error(`only ${split.train.length} training examples: install the SMS Spam Collection (gptspam data sms), enable the SpamAssassin corpus, or label more messages`);
  }

  // Random weights are no use frozen: a from-scratch model trains every layer. Nor is there a pretrained reason for
  // a causal mask: it reads the whole message at every layer (the chapter's "no causal mask" experiment), which
  // measured better on held-out mail and texts.
  const scratch = job.base.kind === 'scratch';
  const start = await startingPoint(job, { layers: scratch ? 'all' : job.layers, attention: scratch ? 'bidirectional' : 'causal' });
  const clf = start.classifier;
  const maxTokens = Math.min(job.maxTokens, clf.config.nPositions);
  const encode = (set: LabelledMessage[], tokens = maxTokens) => encodeExamples(set.map((e) => ({ text: e.text, label: labelId(e.label) })), tokens);
  const refining = start.refinedFrom === null ? null : job.refine;
  const trainTexts = refining ? refineSet(split.train, refining.replay, `refine:${job.version}`) : split.train;
  if (refining) {
    const fresh = trainTexts.filter((e) => e.fresh).length;
    log(`refining version ${start.refinedFrom}: ${fresh} new labels + ${trainTexts.length - fresh} replayed examples, ${refining.epochs} epochs`);
  }
  const train = encode(trainTexts);
  const validation = encode(split.validation);
  const heldOut = encode(split.heldOut);
  // Activations of the frozen trunk persist across runs on disk: re-fine-tuning only computes new messages'.
  const cache = new TrunkCache({ memoryBytes: 512 * 1024 ** 2, spillDir: join(job.home, 'cache', 'trunk') });
  const features = defaultFeatures(clf, padWidthFor(clf, train, maxTokens), cache);
  const filled = await warmTrunk(features, clf, [...train, ...validation, ...heldOut]);
  if (filled) log(`trunk pass: ${filled} messages on the native runtime`);

  let lastReport = 0;
  const result = trainClassifier(clf, train, validation, {
    epochs: refining?.epochs ?? job.epochs,
    batchSize: job.batchSize,
    maxTokens,
    features,
    evalEvery: Number.MAX_SAFE_INTEGER,
    optimizer: { lr: job.learningRate },
    averageDecay: job.averageDecay,
    onProgress: (p) => {
      const now = performance.now();
      if (now - lastReport < 250 && p.step !== p.totalSteps) return;
      lastReport = now;
      report({ type: 'progress', phase: 'training', step: p.step, totalSteps: p.totalSteps, epoch: p.epoch, loss: p.loss, etaSeconds: p.etaSeconds });
    },
    onEpoch: (e) => report({ type: 'epoch', epoch: e.epoch, examplesSeen: e.examplesSeen, trainLoss: e.trainLoss, valLoss: e.valLoss, trainAcc: e.trainAcc, valAcc: e.valAcc }),
  });
  log(`trained ${result.steps} steps in ${result.seconds.toFixed(1)} s; best epoch ${result.bestEpoch}`);

  report({ type: 'progress', phase: 'evaluating', step: result.steps, totalSteps: result.steps, epoch: result.bestEpoch, loss: null, etaSeconds: null });
  const { metrics: candidate, logOdds } = heldOutMetrics(clf, heldOut, job.batchSize, cache, maxTokens);
  const calibration = calibrate(split.heldOut.map((e, i) => ({ kind: e.kind, label: e.label, logOdds: logOdds[i]! })), trained, job.calibration);
  for (const [kind, c] of Object.entries(calibration.kinds)) {
    if (c.nHam + c.nSpam === 0) continue;
    const at = c.spamThreshold === null ? 'no spam threshold can be certified' : `threshold ${c.spamThreshold.toFixed(2)} (log-odds): ${c.hamFlagged}/${c.nHam} ham flagged, ${c.spamCaught}/${c.nSpam} spam caught`;
    log(`calibrated ${kind}: ${at}; 1-ROCA ${c.oneMinusRocaPercent.toFixed(3)}%`);
  }
  await rm(job.outDir, { recursive: true, force: true });
  await saveCheckpoint(job.outDir, clf, {
    maxTokens, labelNames: [...LABEL_NAMES],
    extra: { heldOut: candidate, history: result.epochs, calibration, maxPerCorpus: job.corpora.maxPerCorpus },
  });
  const baseHash = clf.base.hash;
  clf.dispose();

  let current: HeldOutMetrics | null = null;
  if (job.current) {
    try {
      const { classifier, info } = await loadCheckpoint(job.current.dir);
      current = heldOutMetrics(classifier, encode(split.heldOut, info.maxTokens), job.batchSize, cache, info.maxTokens).metrics;
      classifier.dispose();
    } catch (err) {
      log(`the current model (version ${job.current.version}) could not be evaluated: ${(err as Error).message}`);
    }
  }
  report({ type: 'done', baseHash, trainingSize: train.length, corrections, candidate, current, calibration, seconds: (performance.now() - started) / 1000 });
}

const jobPath = process.argv[2];
if (!jobPath) {
  console.error('usage: worker.ts JOB.json');
  process.exit(2);
}
try {
  await run(await readTrainJob(jobPath));
  process.exit(0);
} catch (err) {
  report({ type: 'error', message: (err as Error).message });
  process.exit(1);
}
