/** Classification metrics: accuracy, per-class precision / recall / F1 and the confusion matrix. */

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Metrics {
  count: number;
  accuracy: number;
  /** confusion[actual][predicted] */
  confusion: number[][];
  perClass: ClassMetrics[];
  /** For two classes: the metrics of class 1 (spam); otherwise the unweighted mean over classes. */
  precision: number;
  recall: number;
  f1: number;
}

export function computeMetrics(labels: number[], predictions: number[], numClasses: number): Metrics {
  if (labels.length !== predictions.length) throw new Error('labels and predictions differ in length');
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  labels.forEach((y, i) => confusion[y]![predictions[i]!]!++);
  const perClass = confusion.map((row, c) => {
    const tp = row[c]!;
    const predicted = confusion.reduce((s, r) => s + r[c]!, 0);
    const support = row.reduce((s, v) => s + v, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { precision, recall, f1, support };
  });
  const correct = confusion.reduce((s, row, c) => s + row[c]!, 0);
  const summary =
    numClasses === 2
      ? perClass[1]!
      : {
          precision: mean(perClass.map((m) => m.precision)),
          recall: mean(perClass.map((m) => m.recall)),
          f1: mean(perClass.map((m) => m.f1)),
        };
  return {
    count: labels.length,
    accuracy: labels.length ? correct / labels.length : 0,
    confusion,
    perClass,
    precision: summary.precision,
    recall: summary.recall,
    f1: summary.f1,
  };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** A confusion matrix as aligned text rows, for the terminal. */
export function formatConfusion(confusion: number[][], names: string[]): string {
  const width = Math.max(8, ...names.map((n) => n.length), ...confusion.flat().map((v) => String(v).length)) + 2;
  const pad = (s: string) => s.padStart(width);
  const header = pad('actual\\pred') + names.map(pad).join('');
  const rows = confusion.map((row, i) => pad(names[i] ?? String(i)) + row.map((v) => pad(String(v))).join(''));
  return [header, ...rows].join('\n');
}
