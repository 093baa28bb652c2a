/** Training-curve SVGs: well-formed, both series and both x-axes present, bad history refused clearly. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SaxesParser } from 'saxes';
import { renderRocSvg, renderTrainingCurvesSvg, type HistoryPoint } from '../../model/plot.ts';

const history: HistoryPoint[] = [1, 2, 3, 4, 5].map((epoch) => ({
  epoch,
  examplesSeen: epoch * 1045,
  trainLoss: 0.7 / epoch,
  valLoss: 0.75 / epoch,
  trainAcc: 0.8 + epoch * 0.03,
  valAcc: 0.78 + epoch * 0.03,
}));

/** Parse as XML (throws on malformed markup) and collect the root element and every <text> content. */
function parseSvg(svg: string): { root: string; texts: string[] } {
  const parser = new SaxesParser({ xmlns: false });
  const texts: string[] = [];
  let root = '';
  let inText = false;
  parser.on('opentag', (tag) => {
    root ||= tag.name;
    if (tag.name === 'text') inText = true;
  });
  parser.on('closetag', (tag) => {
    if (tag.name === 'text') inText = false;
  });
  parser.on('text', (t) => {
    if (inText) texts.push(t);
  });
  parser.write(svg).close();
  return { root, texts };
}

test('the loss plot is a well-formed SVG with both series, both x-axes and the y-axis title', async () => {
  const svg = await renderTrainingCurvesSvg(history, 'loss');
  const { root, texts } = parseSvg(svg);
  assert.equal(root, 'svg');
  for (const label of ['Training loss', 'Validation loss', 'Epochs', 'Examples seen', 'Loss', 'Training and validation loss']) {
    assert.ok(texts.includes(label), `missing "${label}" in ${JSON.stringify(texts)}`);
  }
  // One line per series in each of the two panels, the validation one dashed as in the book.
  assert.equal(svg.match(/class="mark-line role-mark/g)?.length, 4);
  assert.match(svg, /stroke-dasharray="4,2"/);
});

test('the accuracy plot uses only the points that carry accuracy', async () => {
  const mixed: HistoryPoint[] = [{ epoch: 0.5, examplesSeen: 500, trainLoss: 0.6, valLoss: 0.65 }, ...history];
  const { texts } = parseSvg(await renderTrainingCurvesSvg(mixed, 'accuracy'));
  for (const label of ['Training accuracy', 'Validation accuracy', 'Accuracy', 'Epochs', 'Examples seen']) {
    assert.ok(texts.includes(label), `missing "${label}"`);
  }
});

test('empty or unusable history is refused with a clear message', async () => {
  await assert.rejects(renderTrainingCurvesSvg([], 'loss'), /training history is empty/);
  const lossOnly = history.map(({ epoch, examplesSeen, trainLoss, valLoss }) => ({ epoch, examplesSeen, trainLoss, valLoss }));
  await assert.rejects(renderTrainingCurvesSvg(lossOnly, 'accuracy'), /no accuracy values \(trainAcc\/valAcc\)/);
  await assert.rejects(renderTrainingCurvesSvg([{ ...history[0]!, valLoss: Number.NaN }], 'loss'), /history\[0\]\.valLoss is not a finite number \(NaN\)/);
});

test('the ROC chart is a well-formed SVG with each series, the low ham-loss ticks and the axis titles; bad points are refused', async () => {
  const roc = Array.from({ length: 30 }, (_, i) => ({ hamLoss: (i / 29) ** 3, spamCaught: Math.sqrt(i / 29) }));
  const svg = await renderRocSvg([
    { name: 'e-mail', roc, at: { hamLoss: 0.002, spamCaught: 0.7 } },
    { name: 'text messages', roc },
  ]);
  const { root, texts } = parseSvg(svg);
  assert.equal(root, 'svg');
  for (const t of ['e-mail', 'text messages', 'Ham flagged as spam (%)', 'Spam caught (%)', '0.1', '0.5', '1']) assert.ok(texts.includes(t), `${t} in ${JSON.stringify(texts)}`);
  await assert.rejects(renderRocSvg([]), /no ROC points/);
  await assert.rejects(renderRocSvg([{ name: 'x', roc: [{ hamLoss: NaN, spamCaught: 0 }] }]), /ROC point of x is not finite/);
});
