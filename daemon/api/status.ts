/** The daemon's state at a glance: health (no token), and status with the verdicts in force per kind of message. */
import { MESSAGE_KINDS } from '../contract.ts';
import { appliedThresholds, describeKind, isTrainedOn, type ModelCalibration } from '../verdicts.ts';
import { modelView, runView } from '../views.ts';
import type { ApiContext } from './context.ts';

export function health(ctx: ApiContext) {
  return { status: 'ok', ready: ctx.host.ready, backend: ctx.backend, modelVersion: ctx.host.version, training: ctx.runner.running !== null };
}

export async function status(ctx: ApiContext) {
  const { store, host, runner, config } = ctx;
  const current = host.version;
  const model = current === null ? undefined : await store.models.get(current);
  const running = runner.running;
  return {
    backend: ctx.backend,
    ready: host.ready,
    model: model ? modelView(model, current) : null,
    pendingCorrections: await store.messages.correctionsSince(await store.runs.lastStart()),
    nextRun: ctx.nextRun()?.toISOString() ?? null,
    schedule: config.training.schedule,
    afterCorrections: config.training.afterCorrections,
    training: running ? runView(running) : null,
    verdicts: verdictStatus(ctx, model?.calibration ?? null),
    counts: await store.messages.counts(),
    imports: await importsView(ctx),
  };
}

/** Per kind: whether the current model judges it, the thresholds in force, and one plain sentence. */
function verdictStatus(ctx: ApiContext, calibration: ModelCalibration | null) {
  const v = ctx.config.verdicts;
  const kinds = Object.fromEntries(
    MESSAGE_KINDS.map((kind) => {
      const c = calibration?.kinds[kind];
      return [kind, { trainedOn: isTrainedOn(c), thresholds: appliedThresholds(c, v.thresholds[kind]), summary: describeKind(kind, c, v.targetHamLoss) }];
    }),
  );
  return { targetHamLoss: v.targetHamLoss, confidence: v.confidence, knownCorrespondents: v.knownCorrespondents, kinds };
}

/** Export files from the SMS watch folder: how many were handled, and which failed and why. */
async function importsView(ctx: ApiContext) {
  const { files, failed } = await ctx.store.importedFiles.summary();
  return { files, failed: failed.map((f) => ({ file: f.path, error: f.detail ?? 'failed', at: f.at })) };
}
