/** What the API's routes work with: the daemon's services, its configuration and a description of its backends. */
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config.ts';
import type { Explanations } from '../explain/service.ts';
import type { ModelHost } from '../model-host.ts';
import type { Scoring } from '../scoring.ts';
import type { Store } from '../store/index.ts';
import type { TrainingRunner } from '../training/runner.ts';

export interface ApiContext {
  store: Store;
  scoring: Scoring;
  runner: TrainingRunner;
  host: ModelHost;
  explanations: Explanations;
  config: DaemonConfig;
  backend: string;
  token: string;
  logger: Logger;
  /** When the scheduled re-fine-tuning next runs, or null when unscheduled. */
  nextRun(): Date | null;
}
