/**
 * Charts as SVG: the training curves, like the chapter's plots (training vs validation per epoch, and against the
 * number of examples seen), and ROC curves with their operating points. Rendered headless (vega-lite → vega,
 * `renderer: 'none'`), so no browser or canvas is involved.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { RocPoint } from './calibration.ts';
import type { EpochPoint } from './train.ts';

/** A point of a training curve: an epoch's point, or a loss measured between epochs (without accuracies). */
export type HistoryPoint = Omit<EpochPoint, 'trainAcc' | 'valAcc'> & Partial<Pick<EpochPoint, 'trainAcc' | 'valAcc'>>;

export type CurveMetric = 'loss' | 'accuracy';

interface Sample {
  epoch: number;
  examplesSeen: number;
  series: string;
  value: number;
}

const NAMES: Record<CurveMetric, { heading: string; title: string; train: string; val: string }> = {
  loss: { heading: 'Training and validation loss', title: 'Loss', train: 'Training loss', val: 'Validation loss' },
  accuracy: { heading: 'Training and validation accuracy', title: 'Accuracy', train: 'Training accuracy', val: 'Validation accuracy' },
};

/** Render `metric` from `history` as an SVG document with two panels (over epochs, over examples seen). */
export async function renderTrainingCurvesSvg(history: readonly HistoryPoint[], metric: CurveMetric): Promise<string> {
  const names = NAMES[metric];
  if (names === undefined) throw new Error(`unknown metric "${String(metric)}"; expected "loss" or "accuracy"`);
  const values = toSamples(history, metric);

  const panel = (field: 'epoch' | 'examplesSeen', title: string) => ({
    width: 320,
    height: 220,
    mark: { type: 'line' as const, point: true },
    encoding: {
      x: { field, type: 'quantitative' as const, title },
      y: { field: 'value', type: 'quantitative' as const, title: names.title, scale: { zero: false } },
      color: { field: 'series', type: 'nominal' as const, title: null, sort: [names.train, names.val] },
      // Validation dashed as in the book's figures; the colour legend alone names the series (points would not merge).
      strokeDash: { field: 'series', type: 'nominal' as const, sort: [names.train, names.val], legend: null },
    },
  });
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: names.heading,
    data: { values },
    hconcat: [panel('epoch', 'Epochs'), panel('examplesSeen', 'Examples seen')],
    config: { background: 'white' },
  };

  return renderSvg(spec);
}

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface RocSeries {
  name: string;
  roc: readonly RocPoint[];
  /** The operating point to mark, if any. */
  at?: RocPoint;
}

/**
 * ROC curves (spam caught against ham flagged, both in %) with their operating points marked. Ham loss is drawn on a
 * symmetric-log axis: the operating points of a spam filter sit below 1%, where a linear axis shows nothing.
 */
export async function renderRocSvg(series: readonly RocSeries[]): Promise<string> {
  const curve = series.flatMap((s) => s.roc.map((p) => ({ series: s.name, hamLoss: 100 * p.hamLoss, spamCaught: 100 * p.spamCaught })));
  const marks = series.flatMap((s) => (s.at ? [{ series: s.name, hamLoss: 100 * s.at.hamLoss, spamCaught: 100 * s.at.spamCaught }] : []));
  if (curve.length === 0) throw new Error('no ROC points to plot');
  for (const p of [...curve, ...marks]) {
    if (!Number.isFinite(p.hamLoss) || !Number.isFinite(p.spamCaught)) throw new Error(`ROC point of ${p.series} is not finite`);
  }
  // Symmetric log with a small constant: 0 stays on the axis, and 0.1% to 1% get as much room as 10% to 100%.
  const x = {
    field: 'hamLoss', type: 'quantitative' as const, title: 'Ham flagged as spam (%)',
    scale: { type: 'symlog' as const, constant: 0.01, domain: [0, 100] },
    axis: { values: [0, 0.1, 0.5, 1, 5, 20, 100], format: '~r' },
  };
  const y = { field: 'spamCaught', type: 'quantitative' as const, title: 'Spam caught (%)', scale: { domain: [0, 100] } };
  const color = { field: 'series', type: 'nominal' as const, title: null };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Held-out ROC curve and operating point',
    width: 360,
    height: 260,
    layer: [
      { data: { values: curve }, mark: { type: 'line', interpolate: 'step-after' }, encoding: { x, y, color } },
      { data: { values: marks }, mark: { type: 'point', filled: true, size: 90, shape: 'diamond' }, encoding: { x, y, color } },
    ],
    config: { background: 'white' },
  };
  return renderSvg(spec);
}

/** Long-form rows (one per point and series) after checking every value the plot will use. */
function toSamples(history: readonly HistoryPoint[], metric: CurveMetric): Sample[] {
  if (!Array.isArray(history) || history.length === 0) throw new Error('training history is empty: nothing to plot');
  const names = NAMES[metric];
  const [trainKey, valKey] = metric === 'loss' ? (['trainLoss', 'valLoss'] as const) : (['trainAcc', 'valAcc'] as const);
  const samples: Sample[] = [];
  history.forEach((p, i) => {
    const train = p[trainKey];
    const val = p[valKey];
    // Accuracy is often measured only at epoch ends while loss is measured more often: skip points without it.
    if (metric === 'accuracy' && (train === undefined || val === undefined)) return;
    for (const key of ['epoch', 'examplesSeen', trainKey, valKey] as const) {
      const v = p[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`training history[${i}].${key} is not a finite number (${String(v)})`);
    }
    samples.push({ epoch: p.epoch, examplesSeen: p.examplesSeen, series: names.train, value: train! });
    samples.push({ epoch: p.epoch, examplesSeen: p.examplesSeen, series: names.val, value: val! });
  });
  if (samples.length === 0) throw new Error(`training history has no ${metric} values (${trainKey}/${valKey}) to plot`);
  return samples;
}
