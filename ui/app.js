// The review page. Message content is written by attackers: it only ever reaches the page as text nodes
// (el() below), never as HTML.
import { api, imageUrl, setToken, token, Unauthorized } from './api.js';
import { explainView } from './explain.js';
import { connectLive } from './live.js';
import { renderModel } from './model.js';

const $ = (id) => document.getElementById(id);

/** Creates an element; string children become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return node;
}

const explanation = explainView({ api, el, text: $('detail-text'), box: $('detail-explain') });

const state = {
  filter: 'spam',
  q: '',
  messages: [], // MessageView, newest first, as shown
  nextBefore: null,
  cursor: 0,
  selected: new Set(),
  undo: null, // [{ id, label }] to restore
  status: null,
  live: null,
};

// ------------------------------------------------------------------ filters

function query(before) {
  const p = new URLSearchParams({ limit: '50' });
  if (state.filter === 'spam') p.set('label', 'spam');
  if (state.filter === 'uncertain') p.set('label', 'uncertain');
  if (state.filter === 'corrected') p.set('corrected', 'true');
  if (state.q) p.set('q', state.q);
  if (before) p.set('before', String(before));
  return `/api/messages?${p}`;
}

function matchesFilter(m) {
  if (state.filter === 'spam' && m.label !== 'spam') return false;
  if (state.filter === 'corrected' && !m.correction) return false;
  if (state.filter === 'uncertain' && m.label !== 'uncertain') return false;
  if (state.q) {
    const q = state.q.toLowerCase();
    if (![m.sender, m.subject, m.snippet].some((s) => s && s.toLowerCase().includes(q))) return false;
  }
  return true;
}

// ------------------------------------------------------------------ feed

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "97.3%" for a probability, "—" for none. */
const pct = (p) => (typeof p === 'number' ? `${(p * 100).toFixed(1)}%` : '—');

function row(m, index) {
  const v = m.verdict;
  const p = v ? v.spamProbability : null;
  // The meter's bands are the thresholds this verdict was made with.
  const low = v && v.thresholds.ham !== null ? v.thresholds.ham : 0.5;
  const high = v && v.thresholds.spam !== null ? v.thresholds.spam : 1;
  const bar = el('meter', { min: '0', max: '1', low: String(low), high: String(high), optimum: '0', value: p ?? 0, title: p === null ? 'not scored' : `spam probability ${pct(p)}: ${v.reasonText}` });
  const li = el(
    'li',
    {
      class: `msg ${m.label ?? ''}${index === state.cursor ? ' cursor' : ''}${state.selected.has(m.id) ? ' selected' : ''}`,
      dataset: { id: String(m.id) },
      tabindex: index === state.cursor ? '0' : '-1',
      'aria-selected': state.selected.has(m.id) ? 'true' : 'false',
    },
    el('input', { type: 'checkbox', 'aria-label': 'select', checked: state.selected.has(m.id), onchange: () => toggleSelect(m.id) }),
    el(
      'div',
      { class: 'who' },
      el('span', { class: 'sender' }, m.sender || '(no sender)'),
      el('span', { class: 'source' }, `${m.kind} · ${m.source} · ${m.account}`),
      el('time', { datetime: m.receivedAt || m.createdAt }, fmtTime(m.receivedAt || m.createdAt)),
    ),
    el('div', { class: 'what', onclick: () => openDetail(m.id) }, m.subject ? el('strong', {}, m.subject, ' ') : null, m.snippet),
    el(
      'div',
      { class: 'verdict' },
      bar,
      el('span', { class: `label ${m.label ?? ''}`, title: m.correction ? `labelled by ${m.correction.origin}` : v ? v.reasonText : '' }, (m.label ?? '?') + (m.correction ? ' ✓' : '')),
      el('span', { class: 'p' }, p === null ? '' : `${Math.round(p * 100)}%`),
    ),
    el(
      'div',
      { class: 'row-actions' },
      el('button', { type: 'button', class: 'ham', onclick: () => label([m.id], 'ham') }, 'Not spam'),
      el('button', { type: 'button', class: 'spam', onclick: () => label([m.id], 'spam') }, 'Spam'),
    ),
  );
  li.addEventListener('focus', () => {
    state.cursor = state.messages.findIndex((x) => x.id === m.id);
  });
  return li;
}

/** The rows on the page by message id, with what each was drawn from. */
const drawn = new Map();

/**
 * Draws the feed, rebuilding only rows whose message, cursor or selection changed: a verdict streaming in (an
 * import scores tens a second) adds its row and leaves the others, and the one being clicked, as they are.
 */
function renderFeed() {
  const feed = $('feed');
  const rows = state.messages.map((m, index) => {
    const key = JSON.stringify([m, index === state.cursor, state.selected.has(m.id)]);
    let d = drawn.get(m.id);
    if (d?.key !== key) {
      d = { li: row(m, index), key };
      drawn.set(m.id, d);
    }
    return d.li;
  });
  const shown = new Set(state.messages.map((m) => m.id));
  for (const id of drawn.keys()) if (!shown.has(id)) drawn.delete(id);
  rows.forEach((li, i) => {
    if (feed.children[i] !== li) feed.insertBefore(li, feed.children[i] ?? null);
  });
  while (feed.children.length > rows.length) feed.lastElementChild.remove();
  if (state.messages.length === 0) feed.append(el('li', { class: 'empty' }, 'Nothing here yet.'));
  $('more').hidden = state.nextBefore === null;
  $('selection-count').textContent = state.selected.size ? `${state.selected.size} selected` : '';
  $('undo').disabled = !state.undo;
}

/** Reloads asked for so far: only the latest one's answer is shown. */
let loads = 0;
/** Live changes that came while the latest reload was in flight: its answer may predate them. */
let changedDuringLoad = null;

async function loadMessages() {
  const load = ++loads;
  changedDuringLoad = [];
  try {
    const data = await api('GET', query());
    if (load !== loads) return; // a newer reload (another filter, a reconnect) is under way: its answer wins
    state.messages = data.messages;
    state.nextBefore = data.nextBefore;
    for (const [m, isNew] of changedDuringLoad) apply(m, isNew);
    state.cursor = Math.min(state.cursor, Math.max(0, state.messages.length - 1));
    renderFeed();
  } finally {
    if (load === loads) changedDuringLoad = null;
  }
}

async function loadMore() {
  if (state.nextBefore === null) return;
  const data = await api('GET', query(state.nextBefore));
  state.messages.push(...data.messages);
  state.nextBefore = data.nextBefore;
  renderFeed();
}

/** A message changed or arrived (WS event or our own action): update it in place, or add it on top. */
function upsert(m, isNew) {
  changedDuringLoad?.push([m, isNew]);
  apply(m, isNew);
  renderFeed();
}

function apply(m, isNew) {
  const i = state.messages.findIndex((x) => x.id === m.id);
  // A shown message stays in place even if it no longer matches the filter, so a label change does not make
  // the list jump under the user's cursor; the next reload applies the filter.
  if (i >= 0) state.messages[i] = m;
  else if (isNew && matchesFilter(m)) {
    state.messages.unshift(m);
    if (state.messages.length > 1) state.cursor++;
  }
}

// ------------------------------------------------------------------ selection, labels, undo

function toggleSelect(id) {
  if (state.selected.has(id)) state.selected.delete(id);
  else state.selected.add(id);
  renderFeed();
}

function targets() {
  if (state.selected.size) return [...state.selected];
  const m = state.messages[state.cursor];
  return m ? [m.id] : [];
}

async function label(ids, value, remember = true) {
  if (!ids.length) return;
  const before = ids.map((id) => {
    const m = state.messages.find((x) => x.id === id);
    return { id, label: m && m.correction ? m.correction.label : null };
  });
  try {
    const data = await api('POST', '/api/labels', { ids, label: value });
    for (const m of data.messages) upsert(m, false);
    if (remember) state.undo = before;
    state.selected.clear();
    renderFeed();
    notice(value === null ? 'Correction withdrawn.' : `Marked ${ids.length} as ${value === 'spam' ? 'spam' : 'not spam'}.`);
  } catch (err) {
    handle(err);
  }
}

async function undo() {
  const previous = state.undo;
  if (!previous) return;
  state.undo = null;
  // Each message goes back to what it had: its earlier correction, or none (null withdraws ours).
  for (const { id, label: l } of previous) await label([id], l, false);
  notice('Undone.');
}

// ------------------------------------------------------------------ detail

async function openDetail(id) {
  try {
    const m = await api('GET', `/api/messages/${id}`);
    $('detail').hidden = false;
    const v = m.verdict;
    const facts = [
      ['From', m.sender || '—'], ['Subject', m.subject || '—'], ['Source', `${m.kind} · ${m.source} · ${m.account}`],
      ['Received', fmtTime(m.receivedAt) || '—'],
      ['Verdict', v ? `${v.label}: ${v.reasonText}` : '—'],
      ['Score', v ? `spam probability ${pct(v.spamProbability)} (model v${v.modelVersion})` : '—'],
      ['Thresholds', v ? thresholdsText(v.thresholds) : '—'],
      ['Label', m.correction ? `${m.label} (by ${m.correction.origin})` : (m.label ?? '—')],
    ];
    $('detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    $('detail-text').textContent = m.text;
    explanation.show(m);
    $('detail-history').replaceChildren(
      ...m.corrections.map((c) => el('li', {}, `${fmtTime(c.at)}: ${c.label ?? 'correction withdrawn'} (was ${c.previous ?? '—'}, by ${c.origin})`)),
      ...m.verdicts.map((x) => el('li', {}, `${fmtTime(x.scoredAt)}: model v${x.modelVersion} said ${x.label} (${pct(x.spamProbability)})`)),
    );
    $('detail-close').focus();
  } catch (err) {
    handle(err);
  }
}

function thresholdsText(t) {
  if (t.origin === 'none') return 'none: this kind of message is not judged';
  const spam = t.spam === null ? 'no spam threshold' : `spam at ${pct(t.spam)} or more`;
  return `${spam}, ham below ${pct(t.ham)} (${t.origin})`;
}

// ------------------------------------------------------------------ status and model

async function loadStatus() {
  const [status, models, runs] = await Promise.all([api('GET', '/api/status'), api('GET', '/api/models'), api('GET', '/api/runs')]);
  state.status = status;
  renderModel({ status, models, runs, api, imageUrl, el, onError: handle, onChange: loadStatus });
}

// ------------------------------------------------------------------ live events

function onEvent(e) {
  if (e.type === 'verdict') upsert(e.message, true);
  else if (e.type === 'correction') upsert(e.message, false);
  else if (e.type === 'training' || e.type === 'model') loadStatus().catch(handle);
  else if (e.type === 'explanation') explanation.onEvent(e);
}

function onState(s) {
  const conn = $('conn');
  conn.textContent = s;
  conn.className = `conn ${s}`;
  // After (re)connecting, re-read the truth: whatever happened while we were away is in the store.
  if (s === 'live') Promise.all([loadMessages(), loadStatus()]).catch(handle);
}

// ------------------------------------------------------------------ keyboard

function moveCursor(delta) {
  if (!state.messages.length) return;
  state.cursor = Math.max(0, Math.min(state.messages.length - 1, state.cursor + delta));
  renderFeed();
  $('feed').querySelector('.cursor')?.focus();
}

function onKey(e) {
  if (e.target instanceof HTMLInputElement && e.target.type !== 'checkbox') {
    if (e.key === 'Escape') e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey || $('main').hidden) return;
  const m = state.messages[state.cursor];
  const actions = {
    j: () => moveCursor(1),
    k: () => moveCursor(-1),
    o: () => m && openDetail(m.id),
    Enter: () => m && openDetail(m.id),
    x: () => m && toggleSelect(m.id),
    s: () => label(targets(), 'spam'),
    h: () => label(targets(), 'ham'),
    u: () => undo(),
    '/': () => $('search').focus(),
    Escape: () => {
      $('detail').hidden = true;
    },
  };
  const action = actions[e.key];
  if (action) {
    e.preventDefault();
    action();
  }
}

// ------------------------------------------------------------------ start, login, errors

let noticeTimer;
function notice(text) {
  const s = $('train-state');
  if (!s) return;
  clearTimeout(noticeTimer);
  $('selection-count').textContent = text;
  noticeTimer = setTimeout(() => renderFeed(), 3000);
}

function handle(err) {
  if (err instanceof Unauthorized) return showLogin(err.message);
  notice(`Error: ${err.message}`);
}

function showLogin(message = '') {
  state.live?.close();
  state.live = null;
  $('main').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

async function start() {
  try {
    await api('GET', '/api/status');
  } catch (err) {
    if (err instanceof Unauthorized) return showLogin(token() ? err.message : '');
    return showLogin(`The daemon cannot be reached: ${err.message}`);
  }
  $('login').hidden = true;
  $('main').hidden = false;
  $('logout').hidden = false;
  state.live = connectLive({ token: token(), onEvent, onState });
}

function init() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setToken($('token').value.trim());
    $('token').value = '';
    start();
  });
  $('logout').addEventListener('click', () => {
    setToken(null);
    showLogin();
  });
  for (const b of document.querySelectorAll('[data-filter]')) {
    b.addEventListener('click', () => {
      state.filter = b.dataset.filter;
      for (const o of document.querySelectorAll('[data-filter]')) o.setAttribute('aria-selected', String(o === b));
      state.cursor = 0;
      loadMessages().catch(handle);
    });
  }
  let searchTimer;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = $('search').value.trim();
      loadMessages().catch(handle);
    }, 250);
  });
  $('mark-ham').addEventListener('click', () => label(targets(), 'ham'));
  $('mark-spam').addEventListener('click', () => label(targets(), 'spam'));
  $('undo').addEventListener('click', () => undo());
  $('more').addEventListener('click', () => loadMore().catch(handle));
  $('detail-close').addEventListener('click', () => {
    $('detail').hidden = true;
    explanation.hide();
  });
  document.addEventListener('keydown', onKey);
  if (token()) start();
  else showLogin();
}

init();
