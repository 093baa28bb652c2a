// "Why is this spam?": the message text with each word tinted by how much it pushed the model's verdict,
// towards spam (red) or towards ham (green), stronger push = stronger colour (GET /api/messages/:id/explanation,
// see daemon/API.md). Message content only ever becomes text nodes; the tint is a CSS custom property set through
// the CSSOM (allowed by the page's style-src 'self', unlike style attributes).

/** Words pushing less than this fraction of the strongest are left plain. */
const FAINTEST = 0.05;
/** While an explanation is being computed, ask again this often (the WebSocket event usually comes first). */
const POLL_MS = 10_000;

/**
 * @param {{ api: Function, el: Function, text: HTMLElement, box: HTMLElement }} parts
 *   text: where the message text is shown (highlighted in place); box: legend and status.
 */
export function explainView({ api, el, text, box }) {
  /** The message shown: { id, text }, or null. */
  let current = null;
  let poll;

  function status(line, isError = false) {
    box.replaceChildren(el('p', { class: isError ? 'explain-status error' : 'explain-status' }, line));
  }

  async function load(message) {
    clearTimeout(poll);
    try {
      const x = await api('GET', `/api/messages/${message.id}/explanation`);
      if (current !== message) return; // another message was opened meanwhile
      if (x.status === 'pending') {
        status(`Working out which words mattered to model v${x.modelVersion}…`);
        poll = setTimeout(() => current === message && load(message), POLL_MS);
        return;
      }
      render(message, x);
    } catch (err) {
      if (current === message) status(`No explanation: ${err.message}`, true);
    }
  }

  function render(message, x) {
    const strongest = Math.max(0, ...x.words.map((w) => Math.abs(w.weight)));
    const nodes = [];
    let at = 0;
    for (const w of x.words) {
      const strength = strongest > 0 ? Math.abs(w.weight) / strongest : 0;
      if (strength < FAINTEST) continue;
      if (w.start > at) nodes.push(document.createTextNode(x.text.slice(at, w.start)));
      const towards = w.weight > 0 ? 'spam' : 'ham';
      const span = el('span', { class: `xw ${towards}`, title: `towards ${towards}: ${w.weight > 0 ? '+' : '−'}${Math.abs(w.weight).toFixed(3)}` }, x.text.slice(w.start, w.end));
      span.style.setProperty('--w', strength.toFixed(3));
      nodes.push(span);
      at = w.end;
    }
    if (at < x.text.length) nodes.push(document.createTextNode(x.text.slice(at)));
    // The model reads a message's first tokens only: the rest is shown, dimmed, as not read.
    if (message.text.length > x.text.length && message.text.startsWith(x.text)) {
      nodes.push(el('span', { class: 'unread', title: 'not read by the model (beyond its token limit)' }, message.text.slice(x.text.length)));
    }
    text.replaceChildren(...nodes);

    const top = (sign) =>
      x.words
        .filter((w) => sign * w.weight > 0 && Math.abs(w.weight) >= FAINTEST * strongest)
        .sort((a, b) => sign * (b.weight - a.weight))
        .slice(0, 5)
        .map((w) => w.text);
    const list = (words) => (words.length ? words.join(', ') : '—');
    const margin = (v) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;
    box.replaceChildren(
      el(
        'p',
        { class: 'explain-legend' },
        el('span', { class: 'swatch spam' }), ' towards spam ',
        el('span', { class: 'swatch ham' }), ' towards ham · stronger colour, stronger push',
      ),
      el('p', { class: 'explain-top' }, el('strong', {}, 'Most spam-like: '), list(top(1)), el('br'), el('strong', {}, 'Most ham-like: '), list(top(-1))),
      el(
        'p',
        { class: 'explain-note' },
        `Model v${x.modelVersion}, integrated gradients: the word weights add up to the model's spam − ham margin ` +
          `${margin(x.margin)} minus ${margin(x.baselineMargin)} for an empty message of the same length ` +
          `(within ${(100 * x.relativeGap).toFixed(1)}%${x.converged ? '' : ', not within the 5 % tolerance'}).`,
      ),
    );
  }

  return {
    /** A message was opened (MessageDetail): explain it. */
    show(message) {
      current = message;
      status('Working out which words mattered…');
      load(message);
    },
    /** A WebSocket event: an explanation became ready (or failed). */
    onEvent(e) {
      if (!current || e.messageId !== current.id) return;
      if (e.error) status(`No explanation: ${e.error}`, true);
      else load(current);
    },
    /** The detail view was closed. */
    hide() {
      current = null;
      clearTimeout(poll);
    },
  };
}
