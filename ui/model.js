// The model panel: current version and its held-out metrics, retraining with live progress, versions with
// promote/rollback, and the training curves (SVG charts rendered by the daemon with vega-lite).

const $ = (id) => document.getElementById(id);
const pct = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '—');
let shownCurvesRun = null;

function facts(el, status) {
  const m = status.model;
  const pairs = [
    ['Version', m ? `v${m.version}` : 'none yet (first training running)'],
    ['Base model', m ? m.base : '—'],
    ['Backend', status.backend],
    ['Held-out accuracy', pct(m?.metrics?.accuracy)],
    ['Corrections waiting', String(status.pendingCorrections)],
    ['Next scheduled run', status.nextRun ? new Date(status.nextRun).toLocaleString() : 'not scheduled'],
    ['Messages', `${status.counts.messages} (${status.counts.spam} spam, ${status.counts.uncertain} uncertain, ${status.counts.corrected} corrected)`],
  ];
  $('model-facts').replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  // One plain sentence per kind of message: what the held-out set shows, or why it is not judged.
  const kinds = status.verdicts ? Object.entries(status.verdicts.kinds) : [];
  $('verdict-kinds').replaceChildren(
    ...kinds.map(([kind, k]) => el('li', { class: k.trainedOn ? '' : 'untrained', dataset: { kind } }, el('strong', {}, `${KIND_NAMES[kind] ?? kind}: `), k.summary)),
  );
  if (status.verdicts) {
    $('verdict-target').textContent = `Spam thresholds are set for at most ${pct(status.verdicts.targetHamLoss)} of real mail flagged (${pct(status.verdicts.confidence)} confidence); below them, uncertain messages stay put and are listed for review.`;
  }
}

const KIND_NAMES = { email: 'E-mail', sms: 'Text messages', other: 'Other messages' };

let shownRoc = null;
async function roc(el, status, imageUrl) {
  const m = status.model;
  const box = $('roc');
  if (!m || !m.calibration) {
    box.replaceChildren();
    shownRoc = null;
    return;
  }
  if (shownRoc === m.version) return;
  shownRoc = m.version;
  const url = await imageUrl(`/api/models/${m.version}/roc.svg`);
  for (const img of box.querySelectorAll('img')) URL.revokeObjectURL(img.src);
  box.replaceChildren(url ? el('img', { src: url, alt: `Held-out ROC curve of model v${m.version} per kind of message, with the operating point marked` }) : '');
}

// Export files from the SMS watch folder that could not be imported, each with its reason (plain text).
function importFailures(el, status) {
  const failed = status.imports?.failed ?? [];
  const box = $('import-failures');
  box.hidden = failed.length === 0;
  box.replaceChildren(
    el('p', {}, `${failed.length} SMS export file${failed.length === 1 ? '' : 's'} could not be imported (each is tried again when it changes):`),
    el('ul', {}, ...failed.map((f) => el('li', {}, el('code', {}, f.file), `: ${f.error}`))),
  );
}

function training(status, runs) {
  const run = status.training ?? runs.runs[0] ?? null;
  const bar = $('train-progress');
  const text = $('train-state');
  $('retrain').disabled = Boolean(status.training);
  if (!run) {
    bar.hidden = true;
    text.textContent = '';
    return;
  }
  if (run.status === 'running') {
    const p = run.progress;
    bar.hidden = false;
    bar.max = p && p.totalSteps ? p.totalSteps : 1;
    bar.value = p && p.totalSteps ? p.step : 0;
    const eta = p && p.etaSeconds ? `, about ${Math.ceil(p.etaSeconds)} s left` : '';
    const loss = p && typeof p.loss === 'number' ? `, loss ${p.loss.toFixed(3)}` : '';
    text.textContent = `Training run ${run.id}: ${p ? p.phase : 'starting'}${p && p.epoch ? `, epoch ${p.epoch}` : ''}${p && p.totalSteps ? ` (${p.step}/${p.totalSteps})` : ''}${loss}${eta}`;
  } else {
    bar.hidden = true;
    const outcome = run.status === 'succeeded' ? `made v${run.modelVersion}${run.promoted ? ', promoted' : ', not better: kept the current model'}` : `${run.status}${run.error ? `: ${run.error}` : ''}`;
    text.textContent = `Last run ${run.id}: ${outcome}`;
  }
}

function versions(el, models, api, onError, onChange) {
  const rows = models.models.map((m) =>
    el(
      'tr',
      { class: m.current ? 'current' : '' },
      el('td', {}, `v${m.version}`),
      el('td', {}, m.base),
      el('td', {}, pct(m.metrics?.accuracy)),
      el('td', {}, m.comparedWith && m.comparedWith.version !== null ? `${pct(m.comparedWith.candidateAccuracy)} vs ${pct(m.comparedWith.currentAccuracy)} (v${m.comparedWith.version})` : '—'),
      el('td', {}, m.current ? 'current' : m.status),
      el(
        'td',
        {},
        m.current
          ? ''
          : el('button', {
              type: 'button',
              onclick: () => api('POST', `/api/models/${m.version}/promote`).then(onChange, onError),
            }, m.promoted ? 'Roll back to this' : 'Promote'),
      ),
    ),
  );
  $('versions').querySelector('tbody').replaceChildren(...rows);
}

async function curves(el, runs, imageUrl) {
  const run = runs.runs.find((r) => r.history && r.history.length);
  if (!run) return;
  const key = `${run.id}:${run.history.length}`;
  if (shownCurvesRun === key) return;
  shownCurvesRun = key;
  const [loss, acc] = await Promise.all([imageUrl(`/api/runs/${run.id}/curves/loss.svg`), imageUrl(`/api/runs/${run.id}/curves/accuracy.svg`)]);
  const box = $('curves');
  for (const img of box.querySelectorAll('img')) URL.revokeObjectURL(img.src);
  box.replaceChildren(
    el('p', {}, `Run ${run.id}`),
    loss ? el('img', { src: loss, alt: `Training and validation loss of run ${run.id}` }) : '',
    acc ? el('img', { src: acc, alt: `Training and validation accuracy of run ${run.id}` }) : '',
  );
}

export function renderModel({ status, models, runs, api, imageUrl, el, onError, onChange }) {
  facts(el, status);
  roc(el, status, imageUrl).catch(onError);
  importFailures(el, status);
  training(status, runs);
  versions(el, models, api, onError, onChange);
  curves(el, runs, imageUrl).catch(onError);
  const retrain = $('retrain');
  retrain.onclick = () => {
    retrain.disabled = true;
    api('POST', '/api/train').then(onChange, (err) => {
      retrain.disabled = false;
      onError(err);
    });
  };
}
