/**
 * Runs re-fine-tuning, one run at a time, in a child process (worker.ts); records its progress in the store;
 * decides whether the new version replaces the current one (held-out accuracy not worse, both numbers kept)
 * and hot-swaps it in.
 *
 * Events: 'run' (RunRecord, whenever it changes), 'model' (ModelRecord, when a version is created, promoted
 * or rejected).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config.ts';
import type { ModelHost } from '../model-host.ts';
import type { EpochRecord, ModelRecord, RunRecord, Store } from '../store/index.ts';
import { resolveBaseModel } from './base-model.ts';
import { resolveSmsCollection } from './sms-corpus.ts';
import type { LabelledMessage } from './corpus.ts';
import { parseWorkerReport, type TrainJob, type WorkerReport } from './job.ts';
import { workerArgs } from '../worker-process.ts';

const WORKER = workerArgs(import.meta.url, 'worker');

export class TrainingBusyError extends Error {}

interface Active {
  run: RunRecord;
  child?: ChildProcess;
  stopping: boolean;
  done: Promise<void>;
}

export class TrainingRunner extends EventEmitter {
  private active: Active | undefined;

  constructor(
    private readonly store: Store,
    private readonly host: ModelHost,
    private readonly config: DaemonConfig,
    private readonly home: string,
    private readonly logger: Logger,
  ) {
    super();
  }

  get running(): RunRecord | null {
    return this.active?.run ?? null;
  }

  /** Starts a run now; throws TrainingBusyError when one is running. Resolves once it has started. */
  async start(reason: string): Promise<RunRecord> {
    if (this.active) throw new TrainingBusyError(`training run ${this.active.run.id} is already running`);
    const placeholder: Active = { run: undefined as unknown as RunRecord, stopping: false, done: Promise.resolve() };
    this.active = placeholder; // claims the slot before the first await, so two calls cannot both start
    try {
      placeholder.run = await this.store.runs.create(reason);
    } catch (err) {
      this.active = undefined;
      throw err;
    }
    this.logger.info({ run: placeholder.run.id, reason }, 'training run started');
    this.emit('run', placeholder.run);
    placeholder.done = this.execute(placeholder).finally(() => {
      if (this.active === placeholder) this.active = undefined;
    });
    return placeholder.run;
  }

  /** Waits for the current run (if any) to end. */
  async idle(): Promise<void> {
    await this.active?.done;
  }

  /** Stops the current run: the child is killed, the run recorded as interrupted. */
  async stop(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.stopping = true;
    a.child?.kill('SIGTERM');
    await a.done;
  }

  private async refresh(a: Active): Promise<void> {
    a.run = (await this.store.runs.get(a.run.id)) ?? a.run;
    this.emit('run', a.run);
  }

  private async execute(a: Active): Promise<void> {
    const runId = a.run.id;
    try {
      const currentVersion = this.host.version;
      const base = await resolveBaseModel(this.config, this.home, this.logger, { tryDownload: currentVersion === null });
      const version = await this.store.models.nextVersion();
      const outDir = join(this.home, 'models', 'versions', `v${version}`);
      const current = currentVersion === null ? null : await this.store.models.get(currentVersion);
      // Labels given after the current model's run began are new to it: a refining run trains on them.
      const currentRun = current?.runId != null ? await this.store.runs.get(current.runId) : undefined;
      const seenUntil = current ? (currentRun?.startedAt ?? current.createdAt) : null;
      const personal: LabelledMessage[] = (await this.store.messages.labelledExamples()).map((e) => ({
        text: e.text, label: e.label, kind: e.kind, origin: e.origin, fresh: seenUntil !== null && e.labelledAt > seenUntil,
      }));
      const smsFile = await resolveSmsCollection(this.config, this.home, this.logger);
      const fresh = personal.filter((e) => e.fresh).length;
      const refine = this.config.training.refine;
      const m = this.config.model;
      const v = this.config.verdicts;
      const job: TrainJob = {
        home: this.home, version, outDir, backend: this.config.backend, inference: this.config.inference, base,
        layers: m.layers, maxTokens: m.maxTokens, epochs: m.epochs, batchSize: m.batchSize,
        learningRate: base.kind === 'scratch' ? m.scratchLearningRate : m.learningRate,
        averageDecay: m.averageDecay,
        corpora: {
          smsFile, spamAssassin: this.config.training.spamAssassin,
          maxPerCorpus: this.config.training.maxPerCorpus, maxHeldOutPerCorpus: this.config.training.maxHeldOutPerCorpus,
        },
        heldOutFraction: this.config.training.heldOutFraction,
        calibration: { targetHamLoss: v.targetHamLoss, confidence: v.confidence, reviewHamShare: v.reviewHamShare },
        personal,
        current: current ? { version: current.version, dir: current.dir } : null,
        refine: current && fresh > 0 && refine.epochs > 0 ? { epochs: refine.epochs, replay: refine.replay } : null,
      };
      await this.store.runs.update(runId, {
        appendLog: [
          `base model: ${base.name}; ${personal.length} labels from people, ${fresh} new since the current model; ` +
            `SMS Spam Collection: ${smsFile ?? 'not available (text messages stay uncertain until it is installed)'}`,
        ],
      });
      const done = await this.runWorker(a, job);
      if (a.stopping) {
        await this.store.runs.finish(runId, { status: 'interrupted', error: 'stopped' });
        return;
      }
      const currentAcc = done.current?.accuracy ?? null;
      const candidateAcc = done.candidate.accuracy;
      // NaN (an empty held-out set) can prove nothing: then only a first model is promoted.
      const better =
        currentVersion === null ||
        (Number.isFinite(candidateAcc) && (currentAcc === null || !Number.isFinite(currentAcc) || candidateAcc >= currentAcc - this.config.training.promoteTolerance));
      const model: Omit<ModelRecord, 'promotedAt'> = {
        version, createdAt: new Date().toISOString(), dir: outDir, base: base.name, baseHash: done.baseHash,
        trainingSize: done.trainingSize, corrections: done.corrections,
        metrics: { accuracy: candidateAcc, precision: done.candidate.precision, recall: done.candidate.recall, f1: done.candidate.f1 },
        calibration: done.calibration,
        compared: { version: currentVersion, candidateAccuracy: candidateAcc, currentAccuracy: currentAcc },
        status: better ? 'candidate' : 'rejected',
        runId,
      };
      await this.store.models.insert(model);
      const verdictLine = `held-out accuracy: new ${fmt(candidateAcc)}, current ${currentAcc === null ? 'none' : fmt(currentAcc)} → ${better ? 'promoted' : 'kept the current model'}`;
      await this.store.runs.update(runId, { appendLog: [verdictLine] });
      this.logger.info({ run: runId, version, candidate: candidateAcc, current: currentAcc, promoted: better }, 'training run finished');
      if (better) await this.promote(version);
      else this.emit('model', await this.store.models.get(version));
      await this.store.runs.finish(runId, { status: 'succeeded', modelVersion: version, promoted: better });
    } catch (err) {
      const message = (err as Error).message;
      this.logger.error({ run: runId, err: message }, 'training run failed');
      await this.store.runs.finish(runId, { status: a.stopping ? 'interrupted' : 'failed', error: message }).catch(() => undefined);
    }
    await this.refresh(a);
  }

  /** Loads `version` into the host (so scoring switches over) and records it as current. */
  async promote(version: number): Promise<ModelRecord> {
    const model = await this.store.models.get(version);
    if (!model) throw new Error(`there is no model version ${version}`);
    await this.host.load(version, model.dir, model.calibration);
    await this.store.models.promote(version);
    const promoted = (await this.store.models.get(version))!;
    this.logger.info({ version }, 'model promoted');
    this.emit('model', promoted);
    return promoted;
  }

  private async runWorker(a: Active, job: TrainJob): Promise<Extract<WorkerReport, { type: 'done' }>> {
    const jobDir = join(this.home, 'runs', String(a.run.id));
    await mkdir(jobDir, { recursive: true });
    const jobFile = join(jobDir, 'job.json');
    await writeFile(jobFile, JSON.stringify(job));
    const child = spawn(process.execPath, [...WORKER, jobFile], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: process.env,
    });
    a.child = child;
    const stderrTail: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      this.logger.debug({ run: a.run.id, line }, 'training process');
    });
    child.stdout!.resume();
    let done: Extract<WorkerReport, { type: 'done' }> | undefined;
    let failure: string | undefined;
    const history: EpochRecord[] = [];
    let lastWrite = Promise.resolve();
    const reports = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
    reports.on('line', (line) => {
      let r: WorkerReport;
      try {
        r = parseWorkerReport(line);
      } catch (err) {
        this.logger.warn({ run: a.run.id, err: (err as Error).message }, 'skipped a malformed report from the training process');
        return;
      }
      if (r.type === 'done') done = r;
      else if (r.type === 'error') failure = r.message;
      // Writes are chained so progress lands in the store in order, then the run is re-read and broadcast.
      lastWrite = lastWrite.then(async () => {
        if (r.type === 'log') await this.store.runs.update(a.run.id, { appendLog: [r.line] });
        else if (r.type === 'progress') {
          const { type: _t, ...progress } = r;
          await this.store.runs.update(a.run.id, { progress });
        } else if (r.type === 'epoch') {
          const { type: _t, ...epoch } = r;
          history.push(epoch);
          await this.store.runs.update(a.run.id, { history });
        } else if (r.type === 'error') await this.store.runs.update(a.run.id, { appendLog: [`error: ${r.message}`] });
        else return;
        await this.refresh(a);
      }).catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'could not record training progress'));
    });
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    await lastWrite;
    if (done) return done;
    if (a.stopping) throw new Error('stopped');
    throw new Error(failure ?? `the training process ended (${exit.signal ?? `exit code ${exit.code}`}): ${stderrTail.slice(-5).join(' | ')}`);
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a';
}
