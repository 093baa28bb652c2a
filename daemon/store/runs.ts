/** Training runs: their progress, epoch history and log, and how they ended. */
import type { EpochPoint } from '../../model/train.ts';
import type { Database } from '../db.ts';
import { json, parseJson, str, type Row } from './sql.ts';

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface RunProgress {
  phase: string;
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number | null;
  etaSeconds: number | null;
}

/** An epoch of a run's history (runs recorded before `examplesSeen` was reported lack it). */
export type EpochRecord = Omit<EpochPoint, 'examplesSeen'> & Partial<Pick<EpochPoint, 'examplesSeen'>>;

export interface RunRecord {
  id: number;
  reason: string;
  status: RunStatus;
  startedAt: string;
  finishedAt: string | null;
  progress: RunProgress | null;
  history: EpochRecord[];
  log: string[];
  modelVersion: number | null;
  promoted: boolean | null;
  error: string | null;
}

function runFromRow(r: Row): RunRecord {
  return {
    id: Number(r.id),
    reason: String(r.reason),
    status: r.status as RunStatus,
    startedAt: String(r.started_at),
    finishedAt: str(r.finished_at),
    progress: parseJson(r.progress),
    history: parseJson<EpochRecord[]>(r.history) ?? [],
    log: parseJson<string[]>(r.log) ?? [],
    modelVersion: r.model_version === null ? null : Number(r.model_version),
    promoted: r.promoted === null ? null : Boolean(r.promoted),
    error: str(r.error),
  };
}

export class Runs {
  constructor(private readonly db: Database) {}

  async create(reason: string): Promise<RunRecord> {
    return this.db.write(async (tx) => {
      const { lastID } = await tx.run("INSERT INTO training_runs (reason, status, started_at) VALUES (?, 'running', ?)", [reason, new Date().toISOString()]);
      return runFromRow((await tx.get<Row>('SELECT * FROM training_runs WHERE id = ?', [lastID]))!);
    });
  }

  async update(id: number, change: { progress?: RunProgress; history?: EpochRecord[]; appendLog?: string[] }): Promise<void> {
    await this.db.write(async (tx) => {
      if (change.progress) await tx.run('UPDATE training_runs SET progress = ? WHERE id = ?', [json(change.progress), id]);
      if (change.history) await tx.run('UPDATE training_runs SET history = ? WHERE id = ?', [json(change.history), id]);
      if (change.appendLog?.length) {
        const r = await tx.get<Row>('SELECT log FROM training_runs WHERE id = ?', [id]);
        const log = [...(parseJson<string[]>(r?.log) ?? []), ...change.appendLog].slice(-500);
        await tx.run('UPDATE training_runs SET log = ? WHERE id = ?', [json(log), id]);
      }
    });
  }

  async finish(id: number, end: { status: RunStatus; modelVersion?: number | null; promoted?: boolean | null; error?: string | null }): Promise<void> {
    await this.db.write((tx) =>
      tx.run('UPDATE training_runs SET status = ?, finished_at = ?, model_version = ?, promoted = ?, error = ? WHERE id = ?', [
        end.status, new Date().toISOString(), end.modelVersion ?? null,
        end.promoted === undefined || end.promoted === null ? null : Number(end.promoted), end.error ?? null, id,
      ]),
    );
  }

  /** Runs left 'running' by a daemon that died: they are over. */
  async interruptUnfinished(): Promise<number> {
    const { changes } = await this.db.write((tx) =>
      tx.run("UPDATE training_runs SET status = 'interrupted', finished_at = ?, error = 'the daemon stopped during this run' WHERE status IN ('running', 'queued')", [
        new Date().toISOString(),
      ]),
    );
    return changes;
  }

  async list(limit = 50): Promise<RunRecord[]> {
    return (await this.db.all<Row>('SELECT * FROM training_runs ORDER BY id DESC LIMIT ?', [limit])).map(runFromRow);
  }

  async get(id: number): Promise<RunRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM training_runs WHERE id = ?', [id]);
    return r && runFromRow(r);
  }

  async lastStart(): Promise<string | null> {
    const r = await this.db.get<{ t: string | null }>("SELECT MAX(started_at) AS t FROM training_runs WHERE status IN ('running', 'succeeded')");
    return r?.t ?? null;
  }
}
