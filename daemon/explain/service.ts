/**
 * "Why is this spam?" for the daemon: explanations (model/explain.ts) computed on demand in a child process
 * (worker.ts), cached in SQLite per message and model version, announced when ready.
 *
 * Why a child process rather than a worker thread: the training runs already live in one (the same proven way
 * of running tfjs beside the daemon); the wasm backend's own pthreads would be nested inside a worker thread; a
 * wasm heap never shrinks, so the ~2 GB an explanation of GPT-2-124M needs on tfjs is given back only when the
 * process ends (it ends after `idleMs` without work); it runs at a lower CPU priority than the daemon's scoring; and a
 * crash or out-of-memory costs one explanation, not the daemon.
 *
 * Events: 'explanation' ({ messageId, modelVersion } when one is stored, plus `error` when it failed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { BackendName } from '../../model/backend.ts';
import type { Explanation } from '../../model/explain.ts';
import type { Store } from '../store/index.ts';
import type { ExplainReply, ExplainRequest } from './protocol.ts';
import { workerArgs } from '../worker-process.ts';

const WORKER = workerArgs(import.meta.url, 'worker');

/** Niceness of the explanation process: scoring (niceness 0) gets the CPU first. */
const NICENESS = 10;
/** A failed explanation is answered as failed for this long before a new request retries it. */
const FAILURE_MEMORY_MS = 60_000;

export type ExplanationView = Explanation & { messageId: number; modelVersion: number; createdAt: string };

export type ExplanationAnswer = { status: 'ready'; explanation: ExplanationView } | { status: 'pending' } | { status: 'failed'; error: string };

export class ExplanationQueueFullError extends Error {}

export interface ExplanationsOptions {
  backend: BackendName;
  /** What the daemon's inference runs on: explanations use the same (native: ONNX Runtime's gradient graph). */
  inference: 'native' | 'tfjs';
  /** The process ends after this long without work (default 5 minutes). */
  idleMs?: number;
  /** At most this many explanations waiting or running (default 50). */
  maxQueued?: number;
}

interface Job {
  key: string;
  messageId: number;
  version: number;
}

export class Explanations extends EventEmitter {
  private child: ChildProcess | undefined;
  private readonly jobs = new Map<number, Job>();
  private readonly pending = new Set<string>();
  private readonly failures = new Map<string, { error: string; at: number }>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly opts: ExplanationsOptions,
  ) {
    super();
  }

  /** The cached explanation of a message by a model version, or starts computing it. */
  async request(messageId: number, model: { version: number; dir: string }): Promise<ExplanationAnswer> {
    const cached = await this.cached(messageId, model.version);
    if (cached) return { status: 'ready', explanation: cached };
    const key = `${messageId}:${model.version}`;
    if (this.pending.has(key)) return { status: 'pending' };
    const failed = this.failures.get(key);
    if (failed && Date.now() - failed.at < FAILURE_MEMORY_MS) return { status: 'failed', error: failed.error };
    if (this.stopped) throw new Error('the daemon is shutting down');
    if (this.pending.size >= (this.opts.maxQueued ?? 50)) {
      throw new ExplanationQueueFullError(`${this.pending.size} explanations are already waiting: try again later`);
    }
    const text = await this.store.messages.text(messageId);
    if (text === undefined) throw new Error(`there is no message ${messageId}`);
    const id = this.nextId++;
    this.pending.add(key);
    this.jobs.set(id, { key, messageId, version: model.version });
    const request: ExplainRequest = { id, version: model.version, modelDir: model.dir, text };
    clearTimeout(this.idleTimer);
    this.ensureChild().send(request, (err) => {
      if (!err || !this.jobs.delete(id)) return;
      this.fail({ key, messageId, version: model.version }, `could not reach the explanation process: ${err.message}`);
    });
    return { status: 'pending' };
  }

  async cached(messageId: number, version: number): Promise<ExplanationView | undefined> {
    const row = await this.store.explanations.get(messageId, version);
    if (!row) return undefined;
    return { messageId, modelVersion: version, createdAt: row.createdAt, ...(JSON.parse(row.json) as Explanation) };
  }

  /** Ends the process; explanations in progress are dropped (a later request starts them again). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }

  private ensureChild(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(process.execPath, [...WORKER, this.opts.backend, this.opts.inference], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: process.env,
    });
    this.child = child;
    try {
      if (child.pid !== undefined) setPriority(child.pid, NICENESS);
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'could not lower the explanation process priority');
    }
    const stderrTail: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 10) stderrTail.shift();
      this.logger.debug({ line }, 'explanation process');
    });
    child.on('message', (reply: ExplainReply) => void this.onReply(reply));
    const failAll = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const [id, job] of this.jobs) {
        this.jobs.delete(id);
        this.fail(job, why);
      }
    };
    child.on('error', (err) => failAll(`the explanation process failed: ${err.message}`));
    child.on('exit', (code, signal) =>
      failAll(`the explanation process ended (${signal ?? `exit code ${code}`})${stderrTail.length ? `: ${stderrTail.slice(-3).join(' | ')}` : ''}`),
    );
    this.logger.info({ pid: child.pid }, 'explanation process started');
    return child;
  }

  private async onReply(reply: ExplainReply): Promise<void> {
    const job = this.jobs.get(reply.id);
    if (!job) return;
    this.jobs.delete(reply.id);
    if (reply.type === 'error') this.fail(job, reply.message);
    else {
      const x = reply.explanation;
      try {
        await this.store.explanations.put(job.messageId, job.version, JSON.stringify(x));
        this.pending.delete(job.key);
        this.failures.delete(job.key);
        this.logger.info(
          { message: job.messageId, version: job.version, seconds: +x.seconds.toFixed(2), evaluations: x.quadrature.evaluations, relativeGap: +x.relativeGap.toFixed(4), converged: x.converged },
          'explanation computed',
        );
        this.emit('explanation', { messageId: job.messageId, modelVersion: job.version });
      } catch (err) {
        this.fail(job, `could not store the explanation: ${(err as Error).message}`);
      }
    }
    if (this.jobs.size === 0) this.startIdleTimer();
  }

  private fail(job: Job, error: string): void {
    this.pending.delete(job.key);
    const now = Date.now();
    for (const [key, f] of this.failures) if (now - f.at >= FAILURE_MEMORY_MS) this.failures.delete(key);
    this.failures.set(job.key, { error, at: now });
    this.logger.warn({ message: job.messageId, version: job.version, err: error }, 'explanation failed');
    this.emit('explanation', { messageId: job.messageId, modelVersion: job.version, error });
  }

  private startIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const child = this.child;
      if (this.jobs.size === 0 && child) {
        this.logger.info('explanation process idle: stopping it to free its memory');
        this.child = undefined; // a request from now on starts a fresh one
        child.kill('SIGTERM');
      }
    }, this.opts.idleMs ?? 5 * 60_000);
    this.idleTimer.unref();
  }
}
