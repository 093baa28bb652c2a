/** Routes of model versions and training runs: the list, promotion and rollback, ROC and training curves. */
import { renderRocSvg, renderTrainingCurvesSvg, type CurveMetric } from '../../model/plot.ts';
import { TrainingBusyError } from '../training/runner.ts';
import { MESSAGE_KINDS } from '../contract.ts';
import { KIND_NAMES } from '../verdicts.ts';
import { modelView, runView } from '../views.ts';
import type { ApiContext } from './context.ts';
import { HttpError } from './http.ts';

export async function models(ctx: ApiContext) {
  const current = ctx.host.version;
  return { current, models: (await ctx.store.models.list()).map((m) => modelView(m, current)) };
}

async function model(ctx: ApiContext, version: number) {
  const m = await ctx.store.models.get(version);
  if (!m) throw new HttpError(404, `there is no model version ${version}`);
  return m;
}

/** Makes a version the one that scores (also a rollback). */
export async function promote(ctx: ApiContext, version: number) {
  await model(ctx, version);
  await ctx.runner.promote(version);
  return { current: version };
}

/** The held-out ROC curve of each kind the version was judged on, with its operating point. */
export async function rocSvg(ctx: ApiContext, version: number): Promise<string> {
  const m = await model(ctx, version);
  const cal = m.calibration;
  if (!cal) throw new HttpError(404, `model version ${version} has no held-out calibration`);
  const series = MESSAGE_KINDS.filter((k) => cal.kinds[k].nHam > 0 && cal.kinds[k].nSpam > 0).map((k) => {
    const c = cal.kinds[k];
    return { name: KIND_NAMES[k], roc: c.roc, ...(c.spamThreshold === null ? {} : { at: { hamLoss: c.hamLoss, spamCaught: c.spamCaught / c.nSpam } }) };
  });
  if (series.length === 0) throw new HttpError(404, `model version ${version} has no held-out ham and spam to draw`);
  return renderRocSvg(series);
}

export async function startTraining(ctx: ApiContext) {
  try {
    return { run: runView(await ctx.runner.start('api')) };
  } catch (err) {
    if (err instanceof TrainingBusyError) throw new HttpError(409, err.message);
    throw err;
  }
}

export async function runs(ctx: ApiContext) {
  return { runs: (await ctx.store.runs.list()).map(runView) };
}

async function run(ctx: ApiContext, id: number) {
  const r = await ctx.store.runs.get(id);
  if (!r) throw new HttpError(404, `there is no training run ${id}`);
  return r;
}

export async function runDetail(ctx: ApiContext, id: number) {
  const r = await run(ctx, id);
  return { ...runView(r), log: r.log };
}

export async function curvesSvg(ctx: ApiContext, id: number, metric: CurveMetric): Promise<string> {
  const r = await run(ctx, id);
  if (r.history.length === 0) throw new HttpError(404, `run ${r.id} has no finished epoch yet`);
  return renderTrainingCurvesSvg(r.history.map((h) => ({ ...h, examplesSeen: h.examplesSeen ?? h.epoch })), metric);
}
