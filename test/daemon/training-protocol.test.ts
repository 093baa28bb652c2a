/**
 * The training process's protocol: the job file it reads and the report lines it writes are checked by schemas.
 * What the daemon and the worker really produce passes unchanged (NaN included); anything else is refused with an
 * error that says where and which field, and the worker turns a bad job file into an error report.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { parseWorkerReport, readTrainJob, type TrainJob, type WorkerReport } from '../../daemon/training/job.ts';
import { calibrate } from '../../daemon/verdicts.ts';
import { workerArgs } from '../../daemon/worker-process.ts';
import { REPO_ROOT } from '../helpers/fixture.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gptspam-protocol-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const job: TrainJob = {
  home: '/tmp/home', version: 3, outDir: '/tmp/home/models/versions/v3', backend: 'wasm', inference: 'auto',
  base: { kind: 'scratch', name: 'scratch-tiny', size: 'tiny', seed: 1 },
  layers: 'last_block', maxTokens: 64, epochs: 1, batchSize: 8, learningRate: 5e-4, averageDecay: 0.999,
  corpora: { smsFile: null, spamAssassin: false, maxPerCorpus: 1500, maxHeldOutPerCorpus: 3000 },
  heldOutFraction: 0.2,
  calibration: { targetHamLoss: 0.005, confidence: 0.95, reviewHamShare: 0.02 },
  personal: [
    { text: 'win a prize', label: 'spam', kind: 'sms', origin: 'correction', fresh: true },
    { text: 'see you at 6', label: 'ham', kind: 'email', origin: 'known' },
  ],
  current: { version: 2, dir: '/tmp/home/models/versions/v2' },
  refine: { epochs: 2, replay: 4 },
};

test('a job file as the daemon writes it reads back unchanged', async () => {
  const path = join(dir, 'job.json');
  writeFileSync(path, JSON.stringify(job));
  assert.deepEqual(await readTrainJob(path), job);
});

test('a malformed job file is refused with the file and each wrong field named', async () => {
  const path = join(dir, 'bad-job.json');
  writeFileSync(path, JSON.stringify({ ...job, backend: 'tpu', epochs: 0, personal: [{ ...job.personal[0], label: 'maybe' }], base: { kind: 'cloud' } }));
  await assert.rejects(readTrainJob(path), (e: Error) => {
    assert.ok(e.message.startsWith(`${path}: the training job is invalid: `), e.message);
    for (const field of ['backend', 'epochs', 'personal[0].label', 'base.kind']) assert.ok(e.message.includes(`${field}: `), `${field} in: ${e.message}`);
    return true;
  });
});

test('every kind of report the worker writes parses back as it was, NaN included', () => {
  // A real calibration: SMS with ham and spam, e-mail with ham only (NaN rates), nothing of the other kind.
  const heldOut = [
    ...Array.from({ length: 40 }, (_, i) => ({ kind: 'sms' as const, label: 'ham' as const, logOdds: -3 + i / 20 })),
    ...Array.from({ length: 10 }, (_, i) => ({ kind: 'sms' as const, label: 'spam' as const, logOdds: 1 + i })),
    ...Array.from({ length: 5 }, (_, i) => ({ kind: 'email' as const, label: 'ham' as const, logOdds: -i })),
  ];
  const trained = { email: { ham: 5, spam: 0 }, sms: { ham: 100, spam: 90 }, other: { ham: 0, spam: 0 } };
  const calibration = calibrate(heldOut, trained, job.calibration);
  assert.ok(Number.isNaN(calibration.kinds.email.spamMissed) && Number.isNaN(calibration.kinds.other.hamLoss), 'the example holds NaN');
  const reports: WorkerReport[] = [
    { type: 'log', line: 'SMS Spam Collection: 5574 messages' },
    { type: 'progress', phase: 'training', step: 3, totalSteps: 10, epoch: 1, loss: 0.7, etaSeconds: 12 },
    { type: 'progress', phase: 'preparing data', step: 0, totalSteps: 0, epoch: 0, loss: null, etaSeconds: null },
    { type: 'epoch', epoch: 1, examplesSeen: 80, trainLoss: 0.6, valLoss: NaN, trainAcc: 0.7, valAcc: NaN },
    {
      type: 'done', baseHash: 'scratch:1', trainingSize: 190, corrections: 2,
      candidate: { accuracy: 0.9, precision: 0.8, recall: 1, f1: 0.89, count: 55 },
      current: { accuracy: NaN, precision: NaN, recall: NaN, f1: NaN, count: 0 },
      calibration, seconds: 42.5,
    },
    { type: 'error', message: 'only 3 training examples' },
  ];
  for (const r of reports) assert.deepEqual(parseWorkerReport(JSON.stringify(r)), r);
});

test('a malformed report line is refused with what is wrong', () => {
  assert.throws(() => parseWorkerReport('{"type": "log", "line": "cut'), /^Error: a report from the training process is not JSON/);
  assert.throws(() => parseWorkerReport('{"type": "shout"}'), /^Error: a report from the training process is invalid: type: /);
  assert.throws(() => parseWorkerReport(JSON.stringify({ type: 'epoch', epoch: 1, examplesSeen: 8, trainLoss: '0.5', valLoss: 1, trainAcc: 1, valAcc: 1 })), /invalid: trainLoss: /);
  const done = { type: 'done', baseHash: 'h', trainingSize: 1, corrections: 0, candidate: { accuracy: 1, precision: 1, recall: 1, f1: 1, count: 1 }, current: null, seconds: 1 };
  assert.throws(() => parseWorkerReport(JSON.stringify(done)), /invalid: calibration: /);
});

test('the training process turns a malformed job file into an error report naming the file and the field', async () => {
  const path = join(dir, 'worker-job.json');
  writeFileSync(path, JSON.stringify({ ...job, layers: 'most' }));
  const child = spawn(process.execPath, [...workerArgs(pathToFileURL(join(REPO_ROOT, 'daemon', 'training', 'job.ts')).href, 'worker'), path], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  child.stderr!.resume();
  const lines: string[] = [];
  createInterface({ input: child.stdio[3] as NodeJS.ReadableStream }).on('line', (l) => lines.push(l));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 1);
  const reports = lines.map(parseWorkerReport);
  assert.deepEqual(reports.map((r) => r.type), ['error']);
  const message = (reports[0] as Extract<WorkerReport, { type: 'error' }>).message;
  assert.ok(message.startsWith(`${path}: the training job is invalid: layers: `), message);
});

test('every line a real (tiny) training run reports passes the schema, ending in done', async () => {
  const home = mkdtempSync(join(dir, 'home-'));
  const personal = Array.from({ length: 48 }, (_, i) => ({
    text: i % 2 ? `claim your free prize number ${i} now` : `lunch at ${i % 12} tomorrow?`,
    label: i % 2 ? ('spam' as const) : ('ham' as const), kind: 'sms' as const, origin: 'correction' as const,
  }));
  const tiny: TrainJob = {
    ...job, home, outDir: join(home, 'v1'), version: 1, inference: 'tfjs', maxTokens: 16, epochs: 1,
    personal, current: null, refine: null,
  };
  const path = join(home, 'job.json');
  writeFileSync(path, JSON.stringify(tiny));
  const child = spawn(process.execPath, [...workerArgs(pathToFileURL(join(REPO_ROOT, 'daemon', 'training', 'job.ts')).href, 'worker'), path], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: string[] = [];
  createInterface({ input: child.stdio[3] as NodeJS.ReadableStream }).on('line', (l) => lines.push(l));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  const reports = lines.map(parseWorkerReport);
  const types = new Set(reports.map((r) => r.type));
  for (const t of ['log', 'progress', 'epoch', 'done'] as const) assert.ok(types.has(t), `a ${t} report among ${[...types].join(', ')}`);
  assert.equal(reports.at(-1)!.type, 'done');
});
