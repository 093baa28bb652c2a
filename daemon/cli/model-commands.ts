/** `gptspam train | eval | classify | model check`: the classifier as a command-line tool. */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_NAMES, INFERENCE_NAMES, initBackend, initInference, nativeRuntime, type BackendName, type InferenceName } from '../../model/backend.ts';
import { loadCheckpoint, saveCheckpoint, type CheckpointInfo } from '../../model/checkpoint.ts';
import { GPT2Classifier, readHead, POOLINGS, toTokenBatch, TRAINABLE_LAYERS, type ClassifierOptions, type Pooling, type TrainableLayers } from '../../model/classifier.ts';
import { SCRATCH_SIZE_NAMES, SCRATCH_SIZES, type ScratchSize } from '../../model/config.ts';
import { readLabeledCsv } from '../../model/dataset.ts';
import { classIdIn, encodeExamples, labelId, LABEL_NAMES, spamLogOdds } from '../../model/examples.ts';
import { defaultFeatures } from '../../model/features.ts';
import { errorRates, logOdds, probability } from '../../model/calibration.ts';
import { computeMetrics, formatConfusion } from '../../model/metrics.ts';
import { MESSAGE_KINDS, type MessageKind } from '../contract.ts';
import { modelText } from '../message-text.ts';
import { decide, modelCalibrationSchema, type ModelCalibration } from '../verdicts.ts';
import { renderTrainingCurvesSvg } from '../../model/plot.ts';
import { parseWith } from '../../model/schema.ts';
import { decode, encode } from '../../model/tokenizer.ts';
import { NativeClassifier } from '../../model/native/classifier.ts';
import { warmTrunk } from '../../model/native/trunk.ts';
import { checkpointWeights, classifierWeights } from '../../model/native/weights.ts';
import { BatchScorer, TfjsLogits, type LogitsSource } from '../../model/scorer.ts';
import { evaluate, padWidthFor, trainClassifier } from '../../model/train.ts';
import { Explainer, type ExplainOptions } from '../../model/explain.ts';
import { NativePathGradients } from '../../model/native/gradients.ts';
import { formatExplanation, printable } from './explain-format.ts';
import { initGPT2, loadGPT2 } from '../../model/weights.ts';
import { ensurePrivateHome, gptspamHome } from '../home.ts';

function int(name: string, min = 1) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}
function positive(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

const backendOption = () =>
  new Option('--backend <name>', 'tensor backend').choices(BACKEND_NAMES).default('auto');
const inferenceOption = () =>
  new Option('--inference <name>', 'what scores and runs the frozen trunk: native ONNX Runtime or tfjs').choices(INFERENCE_NAMES).default('auto');

function defaultWeights(): string {
  return join(gptspamHome(), 'models', 'gpt2-124M', 'model.safetensors');
}

function labelNames(numClasses: number): string[] {
  return numClasses === 2 ? [...LABEL_NAMES] : Array.from({ length: numClasses }, (_, i) => `class ${i}`);
}

function addClassifierOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--pooling <kind>', 'position the head reads').choices(POOLINGS).default('last_real'))
    .option('--no-causal-mask', 'bidirectional attention (padding keys masked): the chapter\'s experiment');
}

export function registerModelCommands(program: Command, modelCommand: Command): void {
  addClassifierOptions(
    program
      .command('train')
      .description('fine-tune GPT-2 as a classifier on train/validation/test CSV files (columns Label, Text)')
      .option('--data <dir>', 'folder with train.csv, validation.csv, test.csv (from `gptspam data sms`)')
      .option('--weights <file>', 'pretrained GPT-2 model.safetensors (default: the one `gptspam model fetch` installed)')
      .option('--scratch', 'train the GPT-2 architecture from random weights, all layers (no pretrained weights needed)')
      .addOption(new Option('--size <size>', 'architecture for --scratch').choices(SCRATCH_SIZE_NAMES).default('tiny'))
      .addOption(new Option('--layers <which>', 'what is trained').choices(TRAINABLE_LAYERS).default('last_block'))
      .option('--lora-rank <n>', 'LoRA rank', int('--lora-rank'), 16)
      .option('--lora-alpha <x>', 'LoRA alpha (update = alpha · x·A·B, as the book)', positive('--lora-alpha'), 16)
      .option('--epochs <n>', 'epochs', int('--epochs'), 5)
      .option('--batch-size <n>', 'batch size', int('--batch-size'), 8)
      .option('--lr <x>', 'AdamW learning rate', positive('--lr'), 5e-5)
      .option('--weight-decay <x>', 'AdamW weight decay', Number, 0.1)
      .option('--max-tokens <n>', 'truncate texts to this many tokens (default: the longest training text)', int('--max-tokens'))
      .option('--eval-every <n>', 'evaluate losses every n steps', int('--eval-every'), 50)
      .option('--seed <n>', 'random seed', int('--seed', 0), 123)
      .option('--out <dir>', 'output folder (default: <home>/runs/<time>)')
      .addOption(backendOption())
      .addOption(inferenceOption()),
  ).action(train);

  program
    .command('eval')
    .description('error rates as spam filters report them (ham flagged, spam missed, 1-ROCA%) and accuracy, precision, recall, F1, confusion matrix of a fine-tuned model on a CSV')
    .requiredOption('--model <dir>', 'fine-tuned model folder (from `gptspam train`, or a daemon version in <home>/models/versions)')
    .requiredOption('--data <file>', 'CSV with columns Label, Text')
    .addOption(new Option('--kind <kind>', 'whose calibrated thresholds apply, for a daemon model').choices(MESSAGE_KINDS).default('sms'))
    .option('--threshold <p>', 'spam at or above this probability, for a model without calibrated thresholds', Number, 0.5)
    .option('--base <file>', 'base model.safetensors, if it moved since training')
    .option('--batch-size <n>', 'batch size', int('--batch-size'), 8)
    .option('--json', 'machine-readable output')
    .addOption(backendOption())
    .addOption(inferenceOption())
    .action(evalCommand);

  addClassifierOptions(
    program
      .command('classify')
      .description('label texts given as arguments, or one per line on stdin')
      .argument('[texts...]')
      .option('--model <dir>', 'fine-tuned model folder (from `gptspam train`)')
      .option('--weights <file>', 'a base GPT-2 model.safetensors instead of a fine-tuned model')
      .option('--head <file>', 'with --weights: a classification head (PyTorch nn.Linear layout: weight [classes, emb], bias [classes])')
      .option('--max-tokens <n>', 'with --weights: truncation length', int('--max-tokens'))
      .option('--threshold <p>', 'spam when the spam probability is at least this (default: a daemon model\'s calibrated thresholds for --kind, else 0.5)', Number)
      .addOption(new Option('--kind <kind>', 'what the texts are, for a daemon model\'s calibrated thresholds (ham, uncertain, spam)').choices(['email', 'sms', 'other']).default('sms'))
      .option('--json', 'one JSON object per text, with raw logits')
      .option('--explain', 'which words pushed towards spam or ham (integrated gradients; seconds per text on a CPU)')
      .addOption(backendOption())
      .addOption(inferenceOption()),
  ).action(classify);

  modelCommand
    .command('check')
    .description('sanity check: load GPT-2 and print a greedy continuation of a prompt')
    .option('--weights <file>', 'model.safetensors', undefined)
    .option('--prompt <text>', 'prompt', 'Every effort moves you')
    .option('--tokens <n>', 'tokens to generate', int('--tokens'), 15)
    .addOption(backendOption())
    .action(check);
}

async function useBackend(name: BackendName, inference?: InferenceName): Promise<void> {
  await initBackend(name);
  if (inference) await initInference(inference);
}

interface TrainFlags {
  data?: string; weights?: string; scratch?: boolean; size: ScratchSize; layers: TrainableLayers;
  loraRank: number; loraAlpha: number; epochs: number; batchSize: number; lr: number; weightDecay: number;
  maxTokens?: number; evalEvery: number; seed: number; out?: string; backend: BackendName; inference: InferenceName; pooling: Pooling; causalMask: boolean;
}

async function train(flags: TrainFlags): Promise<void> {
  await useBackend(flags.backend, flags.inference);
  const dataDir = resolve(flags.data ?? join(gptspamHome(), 'data', 'sms'));
  const [trainRows, valRows, testRows] = await Promise.all(
    ['train.csv', 'validation.csv', 'test.csv'].map((f) => readLabeledCsv(join(dataDir, f))),
  );
  const numClasses = Math.max(2, ...[...trainRows!, ...valRows!, ...testRows!].map((r) => r.label + 1));
  let layers = flags.layers;
  let base;
  if (flags.scratch) {
    if (layers !== 'all') console.error(`--scratch trains every layer (random weights are no use frozen): using --layers all`);
    layers = 'all';
    base = initGPT2(SCRATCH_SIZES[flags.size], flags.seed);
  } else {
    const weights = resolve(flags.weights ?? defaultWeights());
    if (!existsSync(weights)) {
      throw new Error(`no GPT-2 weights at ${weights}: run "gptspam model fetch --size 124M", pass --weights, or train from random weights with --scratch`);
    }
    base = await loadGPT2(weights);
  }
  const options: Partial<ClassifierOptions> = {
    numClasses, layers, pooling: flags.pooling, attention: flags.causalMask ? 'causal' : 'bidirectional',
    loraRank: flags.loraRank, loraAlpha: flags.loraAlpha, seed: flags.seed,
  };
  const clf = new GPT2Classifier(base, options);
  const maxTokens = Math.min(flags.maxTokens ?? clf.config.nPositions, clf.config.nPositions);
  const trainSet = encodeExamples(trainRows!, maxTokens);
  const valSet = encodeExamples(valRows!, maxTokens);
  const testSet = encodeExamples(testRows!, maxTokens);
  if (flags.out === undefined) await ensurePrivateHome(gptspamHome());
  const out = resolve(flags.out ?? join(gptspamHome(), 'runs', new Date().toISOString().replace(/[:.]/g, '-')));
  await mkdir(out, { recursive: true });
  console.error(`training ${layers} of GPT-2 (${base.source}) on ${trainSet.length} examples, ${flags.epochs} epochs → ${out}`);

  const bar = new cliProgress.SingleBar(
    { format: 'epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | ETA {eta_formatted}', stream: process.stderr, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.floor(trainSet.length / flags.batchSize) * flags.epochs, 0, { epoch: 1, loss: '-' });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  const features = defaultFeatures(clf, padWidthFor(clf, trainSet, maxTokens));
  const filled = await warmTrunk(features, clf, [...trainSet, ...valSet, ...testSet]);
  if (filled) console.error(`trunk pass: ${filled} messages on the native runtime`);
  const result = trainClassifier(clf, trainSet, valSet, {
    features,
    epochs: flags.epochs, batchSize: flags.batchSize, maxTokens, seed: flags.seed, evalEvery: flags.evalEvery,
    optimizer: { lr: flags.lr, weightDecay: flags.weightDecay },
    signal: abort.signal,
    onProgress: (p) => bar.update(p.step, { epoch: p.epoch, loss: p.loss.toFixed(3) }),
  });
  process.off('SIGINT', onSignal);
  bar.stop();

  const evalOpts = { batchSize: flags.batchSize, features };
  const split = (set: typeof trainSet) => {
    const r = evaluate(clf, set, evalOpts);
    return { loss: r.loss, ...computeMetrics(set.map((e) => e.label), r.predictions, numClasses) };
  };
  const metrics = {
    backend: tf.getBackend(),
    base: { source: base.source, hash: base.hash },
    options: clf.options,
    training: { epochs: flags.epochs, batchSize: flags.batchSize, lr: flags.lr, weightDecay: flags.weightDecay, seed: flags.seed, maxTokens: result.maxTokens },
    seconds: result.seconds,
    steps: result.steps,
    stopped: result.stopped,
    bestEpoch: result.bestEpoch,
    train: split(trainSet),
    validation: split(valSet),
    test: split(testSet),
    history: { evals: result.evals, epochs: result.epochs },
  };
  await writeFile(join(out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  if (result.epochs.length) {
    const history = result.epochs.map((e) => ({ ...e }));
    await writeFile(join(out, 'loss.svg'), await renderTrainingCurvesSvg(history, 'loss'));
    await writeFile(join(out, 'accuracy.svg'), await renderTrainingCurvesSvg(history, 'accuracy'));
  }
  await saveCheckpoint(out, clf, { maxTokens: result.maxTokens, labelNames: labelNames(numClasses), extra: { test: metrics.test } });
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log(`best epoch ${result.bestEpoch} of ${result.epochs.length}; ${result.steps} steps in ${result.seconds.toFixed(1)} s on ${tf.getBackend()}`);
  console.log(`accuracy: train ${pct(metrics.train.accuracy)}, validation ${pct(metrics.validation.accuracy)}, test ${pct(metrics.test.accuracy)}`);
  console.log(`model, metrics.json and curves written to ${out}`);
  clf.dispose();
}

interface EvalFlags {
  model: string; data: string; base?: string; batchSize: number; json?: boolean;
  backend: BackendName; inference: InferenceName; kind: MessageKind; threshold: number;
}

async function evalCommand(flags: EvalFlags): Promise<void> {
  await useBackend(flags.backend, flags.inference);
  const dir = resolve(flags.model);
  const { classifier: clf, info } = await loadCheckpoint(dir, { basePath: flags.base });
  const calibration = calibrationOf(info, dir);
  // A daemon model read its training texts through the daemon's model-text function: so do these.
  const rows = (await readLabeledCsv(resolve(flags.data))).map((r) => (calibration ? { ...r, text: modelText({ kind: flags.kind, body: r.text }) } : r));
  const set = encodeExamples(rows, info.maxTokens);
  const features = defaultFeatures(clf, info.maxTokens);
  await warmTrunk(features, clf, set);
  const r = evaluate(clf, set, { batchSize: flags.batchSize, features });
  const m = computeMetrics(set.map((e) => e.label), r.predictions, clf.options.numClasses);
  clf.dispose();
  if (clf.options.numClasses !== 2) {
    if (flags.json) console.log(JSON.stringify({ loss: r.loss, ...m }));
    else printMetrics(m, info.labelNames);
    return;
  }
  // The model's own thresholds for that kind when the daemon calibrated it, else --threshold (no uncertain band).
  const scored = r.logits.map((logits, i) => ({ score: spamLogOdds(logits), spam: set[i]!.label === labelId('spam') }));
  const calibrated = calibration?.kinds[flags.kind];
  const thresholds = calibrated
    ? { spam: calibrated.spamThreshold, ham: calibrated.hamThreshold, origin: `calibrated for ${flags.kind}` }
    : { spam: logOdds(flags.threshold), ham: logOdds(flags.threshold), origin: '--threshold' };
  const rates = errorRates(scored, thresholds.spam, thresholds.ham);
  const report = {
    thresholds: { spam: thresholds.spam === null ? null : probability(thresholds.spam), ham: probability(thresholds.ham), origin: thresholds.origin },
    ...rates,
    hamLossPercent: 100 * rates.hamLoss,
    spamMissedPercent: 100 * rates.spamMissed,
  };
  if (flags.json) {
    console.log(JSON.stringify({ errorRates: report, loss: r.loss, ...m }));
    return;
  }
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a');
  const t = report.thresholds;
  console.log(`${m.count} examples: ${rates.nHam} ham, ${rates.nSpam} spam; thresholds (${t.origin}): spam ${t.spam === null ? 'none' : pct(t.spam)}, ham below ${pct(t.ham)}`);
  console.log(`ham flagged (hm%)  ${pct(rates.hamLoss)}  (${rates.hamFlagged} of ${rates.nHam}; ${rates.hamUncertain} uncertain)`);
  console.log(`spam missed (sm%)  ${pct(rates.spamMissed)}  (caught ${rates.spamCaught} of ${rates.nSpam}; ${rates.spamUncertain} uncertain)`);
  console.log(`1-ROCA%            ${Number.isFinite(rates.oneMinusRocaPercent) ? rates.oneMinusRocaPercent.toFixed(3) : 'n/a'}`);
  printMetrics(m, info.labelNames);
}

function printMetrics(m: ReturnType<typeof computeMetrics>, names: string[]): void {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log(`${m.count} examples at the classifier's own boundary (p = 0.5)`);
  console.log(`accuracy  ${pct(m.accuracy)}\nprecision ${pct(m.precision)}\nrecall    ${pct(m.recall)}\nF1        ${pct(m.f1)}`);
  console.log(formatConfusion(m.confusion, names));
}

async function readStdinLines(): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/).filter((l) => l.length > 0);
}

async function classify(
  texts: string[],
  flags: {
    model?: string; weights?: string; head?: string; maxTokens?: number; threshold?: number; json?: boolean; explain?: boolean;
    kind: MessageKind; backend: BackendName; inference: InferenceName; pooling: Pooling; causalMask: boolean;
  },
): Promise<void> {
  await useBackend(flags.backend, flags.inference);
  const inputs = texts.length ? texts : await readStdinLines();
  const rt = nativeRuntime();
  let source: LogitsSource;
  let maxTokens: number;
  let names: string[] = [...LABEL_NAMES];
  let release: () => Promise<void> | void;
  /** Explanations: on the native gradient graph from the same weights when native inference runs, else on tfjs. */
  let newExplainer: (options: ExplainerOptions) => Promise<Explainer>;
  let pooling: Pooling;
  /** A daemon model's thresholds per kind of message (its checkpoint carries them). */
  let calibration: ModelCalibration | null = null;
  if (flags.weights) {
    const head = flags.head ? await readHead(resolve(flags.head)) : undefined;
    const base = await loadGPT2(resolve(flags.weights));
    const numClasses = head ? head.bias.length : 2;
    const clf = new GPT2Classifier(base, { numClasses, pooling: flags.pooling, attention: flags.causalMask ? 'causal' : 'bidirectional' }, head);
    maxTokens = Math.min(flags.maxTokens ?? clf.config.nPositions, clf.config.nPositions);
    names = labelNames(numClasses);
    const weights = rt ? await classifierWeights(clf, 'logits') : undefined;
    source = rt && weights ? await NativeClassifier.create(rt, weights, 'logits') : new TfjsLogits(clf);
    pooling = clf.options.pooling;
    newExplainer = async (o) => (rt && weights ? new Explainer(await NativePathGradients.create(rt, weights), o) : Explainer.onTfjs(clf, o));
    release = async () => {
      if (source instanceof NativeClassifier) await source.dispose();
      clf.dispose();
    };
  } else {
    const dir = resolve(flags.model ?? join(gptspamHome(), 'model'));
    if (rt) {
      // Straight from the checkpoint's files: no tfjs copy of the weights.
      const weights = await checkpointWeights(dir, 'logits');
      const native = await NativeClassifier.create(rt, weights, 'logits');
      const { info } = weights;
      calibration = calibrationOf(info, dir);
      source = native;
      maxTokens = info.maxTokens;
      names = info.labelNames;
      pooling = weights.options.pooling;
      newExplainer = async (o) => new Explainer(await NativePathGradients.create(rt, weights), o);
      release = () => native.dispose();
    } else {
      const loaded = await loadCheckpoint(dir);
      calibration = calibrationOf(loaded.info, dir);
      source = new TfjsLogits(loaded.classifier);
      maxTokens = loaded.info.maxTokens;
      names = loaded.info.labelNames;
      pooling = loaded.classifier.options.pooling;
      newExplainer = async (o) => Explainer.onTfjs(loaded.classifier, o);
      release = () => loaded.classifier.dispose();
    }
  }
  // Batched by length (BatchScorer); each text's logits are what it gets alone (only `last` pooling pads, to
  // the training width, as the chapter).
  const scorer = new BatchScorer(source, { maxTokens, batchSize: 16 });
  // A daemon model read its training texts through the daemon's model-text function: so do these.
  const modelTexts = calibration ? inputs.map((body) => modelText({ kind: flags.kind, body })) : inputs;
  const all = await scorer.scoreMany(modelTexts);
  // The daemon's verdict: its calibrated thresholds for the kind, unless --threshold fixes one (0.5 for a model
  // without calibration, the chapter's decision).
  const fixed = flags.threshold !== undefined || !calibration ? { spam: flags.threshold ?? 0.5, ham: flags.threshold ?? 0.5 } : undefined;
  const spamClassifier = names.length === 2 && names[0] === 'ham' && names[1] === 'spam';
  const explainer = flags.explain ? await newExplainer(explainOptions(pooling, maxTokens, names)) : undefined;
  for (const [i, logits] of all.entries()) {
    const probs = softmax(logits);
    const spam = names.length === 2 ? probs[1]! : NaN;
    const verdict = spamClassifier ? decide(spamLogOdds(logits), flags.kind, calibration, { fixed }) : undefined;
    const label = verdict?.label ?? (names.length === 2 ? (spam >= (flags.threshold ?? 0.5) ? names[1]! : names[0]!) : names[probs.indexOf(Math.max(...probs))]!);
    const tokens = encode(modelTexts[i]!, maxTokens).length;
    const explanation = await explainer?.explain(modelTexts[i]!);
    if (flags.json) {
      const reason = verdict ? { reason: verdict.reason, thresholds: verdict.thresholds } : {};
      console.log(JSON.stringify({ index: i, label, ...reason, spamProbability: spam, probabilities: probs, logits, tokens, ...(explanation ? { explanation } : {}) }));
    }
    else {
      console.log(`${label}\t${Number.isNaN(spam) ? '' : spam.toFixed(4)}\t${oneLine(inputs[i]!)}`);
      if (explanation) console.log(formatExplanation(explanation, { color: process.stdout.isTTY === true && !process.env.NO_COLOR }).join('\n'));
    }
  }
  await explainer?.dispose();
  await release();
}

/** A daemon model's calibration from its checkpoint, checked (null for a model without one). */
function calibrationOf(info: CheckpointInfo, dir: string): ModelCalibration | null {
  return parseWith(modelCalibrationSchema.optional(), info.extra?.calibration, `${join(dir, 'classifier.json')}: extra.calibration is invalid`) ?? null;
}

type ExplainerOptions = Partial<ExplainOptions> & { maxTokens: number };

/** Explains spam minus ham (by label name; the spam classifier's class ids for models without those names). */
function explainOptions(pooling: Pooling, maxTokens: number, names: string[]): ExplainerOptions {
  return {
    maxTokens,
    // As the scorer: only `last` pooling pads, to the training width.
    width: pooling === 'last' ? maxTokens : undefined,
    positiveClass: classIdIn(names, 'spam'),
    negativeClass: classIdIn(names, 'ham'),
  };
}

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function oneLine(s: string): string {
  const flat = printable(s);
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

async function check(flags: { weights?: string; prompt: string; tokens: number; backend: BackendName }): Promise<void> {
  await useBackend(flags.backend);
  const path = resolve(flags.weights ?? defaultWeights());
  const base = await loadGPT2(path);
  const clf = new GPT2Classifier(base, { layers: 'last_layer' });
  const ids = encode(flags.prompt);
  if (ids.length === 0) throw new Error('--prompt must not be empty');
  const c = base.config;
  console.error(`loaded ${path}: ${c.nLayer} layers, ${c.nHead} heads, width ${c.nEmbd}, context ${c.nPositions}, vocabulary ${c.vocabSize}`);
  for (let i = 0; i < flags.tokens && ids.length < c.nPositions; i++) {
    const next = tf.tidy(() => {
      const b = toTokenBatch(Int32Array.from(ids), 1, ids.length, [ids.length]);
      const h = clf.gpt.finalHiddenAt(clf.gpt.trunk(b, 'causal'), [ids.length - 1], [ids.length], 'causal');
      return tf.argMax(clf.gpt.lmLogits(h), -1).dataSync()[0]!;
    });
    ids.push(next);
  }
  console.log(decode(ids));
  clf.dispose();
}

