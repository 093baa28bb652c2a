/** Model versions: what each training run produced, how it was judged, and which one scores now. */
import type { Database } from '../db.ts';
import type { ModelCalibration } from '../verdicts.ts';
import type { Settings } from './settings.ts';
import { json, parseJson, str, type Row } from './sql.ts';

export type ModelStatus = 'candidate' | 'promoted' | 'rejected';

export interface ModelRecord {
  version: number;
  createdAt: string;
  dir: string;
  base: string;
  baseHash: string;
  trainingSize: number;
  corrections: number;
  metrics: { accuracy: number; precision: number; recall: number; f1: number } | null;
  /** Thresholds and error rates per kind of message on the held-out set (null for models from before them). */
  calibration: ModelCalibration | null;
  compared: { version: number | null; candidateAccuracy: number; currentAccuracy: number | null } | null;
  status: ModelStatus;
  promotedAt: string | null;
  runId: number | null;
}

function modelFromRow(r: Row): ModelRecord {
  return {
    version: Number(r.version),
    createdAt: String(r.created_at),
    dir: String(r.dir),
    base: String(r.base),
    baseHash: String(r.base_hash),
    trainingSize: Number(r.training_size),
    corrections: Number(r.corrections),
    metrics: parseJson(r.metrics),
    calibration: parseJson(r.calibration),
    compared: parseJson(r.compared),
    status: r.status as ModelStatus,
    promotedAt: str(r.promoted_at),
    runId: r.run_id === null ? null : Number(r.run_id),
  };
}

export class Models {
  constructor(
    private readonly db: Database,
    private readonly settings: Settings,
  ) {}

  async nextVersion(): Promise<number> {
    const r = await this.db.get<{ v: number | null }>('SELECT MAX(version) AS v FROM model_versions');
    return (r?.v ?? 0) + 1;
  }

  async insert(m: Omit<ModelRecord, 'promotedAt'>): Promise<void> {
    await this.db.write((tx) =>
      tx.run(
        `INSERT INTO model_versions (version, created_at, dir, base, base_hash, training_size, corrections, metrics, calibration, compared, status, run_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [m.version, m.createdAt, m.dir, m.base, m.baseHash, m.trainingSize, m.corrections, json(m.metrics), json(m.calibration), json(m.compared), m.status, m.runId],
      ),
    );
  }

  async list(): Promise<ModelRecord[]> {
    return (await this.db.all<Row>('SELECT * FROM model_versions ORDER BY version DESC')).map(modelFromRow);
  }

  async get(version: number): Promise<ModelRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM model_versions WHERE version = ?', [version]);
    return r && modelFromRow(r);
  }

  /** Makes `version` the current model (recorded in settings) and marks it promoted, in one transaction. */
  async promote(version: number): Promise<void> {
    await this.db.write(async (tx) => {
      await tx.run("UPDATE model_versions SET status = 'promoted', promoted_at = COALESCE(promoted_at, ?) WHERE version = ?", [new Date().toISOString(), version]);
      await this.settings.set('current_model', String(version), tx);
    });
  }

  async currentVersion(): Promise<number | null> {
    const v = await this.settings.get('current_model');
    return v === undefined ? null : Number(v);
  }
}
