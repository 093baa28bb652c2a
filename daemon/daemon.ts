/**
 * The long-running process: opens the store, loads (or first trains) the model, serves the API, schedules
 * re-fine-tuning and runs the connectors. `stop()` is the orderly shutdown SIGTERM/SIGINT trigger.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { initBackend, initInference } from '../model/backend.ts';
import type { DaemonConfig } from './config.ts';
import { ensurePrivateHome } from './home.ts';
import { Explanations } from './explain/service.ts';
import { ModelHost } from './model-host.ts';
import { Scoring } from './scoring.ts';
import { ApiServer } from './server.ts';
import { Store, type MessageRecord } from './store/index.ts';
import { TrainingBusyError, TrainingRunner } from './training/runner.ts';
import type { Connector, ConnectorServices, ConnectorState, CorrectionEvent, ImportLedger, ScoringService } from './contract.ts';
import { messageView, modelView, runView } from './views.ts';

export interface DaemonOptions {
  home: string;
  config: DaemonConfig;
  logger: Logger;
  /** Builds the connectors (IMAP accounts, SMS folder) once the daemon's services exist. */
  connectors?: (services: ConnectorServices) => Connector[];
  /** Called once with the access token when it is first created (to show it to the user). */
  onNewToken?: (token: string, path: string) => void;
}

/** The access token: `<home>/token`, created (mode 0600) at first start. */
async function accessToken(home: string, onNew?: (token: string, path: string) => void): Promise<string> {
  const path = join(home, 'token');
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length >= 16) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${path}: ${(err as Error).message}`);
  }
  const token = randomBytes(24).toString('base64url');
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  onNew?.(token, path);
  return token;
}

export class Daemon {
  private connectors: Connector[] = [];
  private schedule: ScheduledTask | undefined;
  private stopping: Promise<void> | undefined;
  address = { host: '', port: 0 };

  private constructor(
    readonly opts: DaemonOptions,
    readonly store: Store,
    readonly host: ModelHost,
    readonly scoring: Scoring,
    readonly runner: TrainingRunner,
    readonly server: ApiServer,
    readonly explanations: Explanations,
  ) {}

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { home, config, logger } = opts;
    if (await ensurePrivateHome(home)) logger.warn({ home }, 'the home was readable by other users: made it private (0700)');
    const token = await accessToken(home, opts.onNewToken);
    const store = await Store.open(join(home, 'gptspam.db'));
    try {
      const interrupted = await store.runs.interruptUnfinished();
      if (interrupted) logger.warn({ runs: interrupted }, 'training runs left unfinished by the last shutdown were marked interrupted');
      const backend = await initBackend(config.backend, { log: (line) => logger.info(line) });
      const inference = await initInference(config.inference, { log: (line) => logger.info(line), int8Trunk: config.inferenceInt8Trunk });
      const host = new ModelHost((line) => logger.warn(line));
      const scoring = new Scoring(store, host, config.verdicts);
      const runner = new TrainingRunner(store, host, config, home, logger);
      const explanations = new Explanations(store, logger, { backend: config.backend, inference: inference.name });
      let daemon: Daemon | undefined;
      const server = new ApiServer({
        store, scoring, runner, host, explanations, config, token, logger,
        backend: `${backend.description}; ${inference.description}`,
        nextRun: () => daemon?.schedule?.getNextRun() ?? null,
      });
      daemon = new Daemon(opts, store, host, scoring, runner, server, explanations);
      daemon.wireEvents();
      await daemon.loadOrTrainModel();
      daemon.address = await server.listen(config.server.host, config.server.port);
      logger.info({ url: `http://${daemon.address.host}:${daemon.address.port}/`, backend: backend.description, inference: inference.name }, 'gptspam is listening');
      daemon.startSchedule();
      void daemon.startConnectorsWhenReady();
      return daemon;
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  private wireEvents(): void {
    const { server, scoring, runner, host } = this;
    scoring.on('verdict', (record: MessageRecord) => server.broadcast({ type: 'verdict', message: messageView(record) }));
    scoring.on('correction', ({ record, event }: { record: MessageRecord; event: CorrectionEvent }) => {
      server.broadcast({ type: 'correction', message: messageView(record) });
      void this.routeCorrection(event);
      void this.maybeTrainAfterCorrections();
    });
    runner.on('run', (run) => server.broadcast({ type: 'training', run: runView(run) }));
    runner.on('model', (model) => server.broadcast({ type: 'model', current: host.version, model: modelView(model, host.version) }));
    this.explanations.on('explanation', (e: Record<string, unknown>) => server.broadcast({ type: 'explanation', ...e }));
  }

  /** A correction made elsewhere (UI, CLI) is applied at its source, e.g. the IMAP message moves to match. */
  private async routeCorrection(event: CorrectionEvent): Promise<void> {
    if (event.origin === 'imap-move') return; // the user did it at the source already
    const connector = this.connectors.find((c) => c.source === event.source && c.account === event.account);
    if (!connector?.applyCorrection) return;
    try {
      await connector.applyCorrection(event);
    } catch (err) {
      this.opts.logger.warn({ message: event.messageId, err: (err as Error).message }, 'could not apply the correction at the message source');
    }
  }

  private async maybeTrainAfterCorrections(): Promise<void> {
    const n = this.opts.config.training.afterCorrections;
    if (n === 0 || this.runner.running || this.stopping) return;
    const pending = await this.store.messages.correctionsSince(await this.store.runs.lastStart());
    if (pending >= n) await this.startRun('corrections');
  }

  private async startRun(reason: string): Promise<void> {
    try {
      await this.runner.start(reason);
    } catch (err) {
      if (!(err instanceof TrainingBusyError)) this.opts.logger.error({ err: (err as Error).message }, 'could not start a training run');
    }
  }

  /** Loads the current model version; with none (first start) or an unusable one, trains one. */
  private async loadOrTrainModel(): Promise<void> {
    const { store, host, opts } = this;
    const version = await store.models.currentVersion();
    const model = version === null ? undefined : await store.models.get(version);
    if (model) {
      try {
        await host.load(model.version, model.dir, model.calibration);
        opts.logger.info({ version: model.version, base: model.base }, 'model loaded');
        return;
      } catch (err) {
        opts.logger.error({ version: model.version, err: (err as Error).message }, 'the current model cannot be loaded: training a new one');
      }
    } else {
      opts.logger.info('no model yet: training the first one (scoring starts when it is ready)');
    }
    await this.startRun(model ? 'model-unusable' : 'first-start');
  }

  private startSchedule(): void {
    const expr = this.opts.config.training.schedule;
    if (!expr) return;
    this.schedule = cron.schedule(expr, () => this.startRun('schedule'), { name: 'gptspam-retrain', noOverlap: true });
  }

  private async startConnectorsWhenReady(): Promise<void> {
    const { opts } = this;
    if (!opts.connectors) return;
    await this.host.whenReady();
    if (this.stopping) return;
    this.connectors = opts.connectors({
      scoring: this.scoring,
      state: (prefix) => this.store.settings.connectorState(prefix),
      importLedger: this.store.importedFiles,
      logger: opts.logger,
    });
    for (const c of this.connectors) {
      // Connection state changes are what a user looks for in the log ("is it connected to my mailbox?").
      const who = { source: c.source, account: c.account };
      c.on?.('connected', () => opts.logger.info(who, 'connector connected'));
      c.on?.('disconnected', () => opts.logger.info(who, 'connector disconnected'));
      c.on?.('error', (err) => opts.logger.warn({ ...who, err: err.message }, 'connector error'));
      c.start().catch((err: unknown) => opts.logger.error({ source: c.source, account: c.account, err: (err as Error).message }, 'connector failed to start'));
    }
  }

  /** Orderly shutdown: stop accepting, stop connectors and training, close the database. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { logger } = this.opts;
      logger.info('shutting down');
      await this.schedule?.stop();
      const closing = this.server.close();
      await Promise.allSettled(this.connectors.map((c) => c.stop()));
      await Promise.all([this.runner.stop(), this.explanations.stop()]);
      await closing;
      this.host.dispose();
      await this.store.close();
      logger.info('stopped');
    })();
    return this.stopping;
  }
}
