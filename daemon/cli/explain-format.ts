/**
 * `gptspam classify --explain` for people: the text the model read with its strongest words marked, [+word]
 * towards spam and [-word] towards ham, or coloured (red / green, bold for the strongest) on a terminal; then
 * one line with the margins and the completeness check.
 */
import type { Explanation } from '../../model/explain.ts';

export interface FormatOptions {
  /** ANSI colours instead of brackets (for a terminal). */
  color: boolean;
  /** Mark at most this many words (default 8). */
  maxMarks?: number;
}

/** Words weaker than this fraction of the strongest are never marked. */
const MARK_FRACTION = 0.15;

const ANSI = { spam: '\x1b[31m', ham: '\x1b[32m', bold: '\x1b[1m', reset: '\x1b[0m' };

/**
 * Message text is written by strangers: control characters (terminal escape sequences) never reach the
 * terminal, and whitespace runs become one space so each text stays on its line.
 */
export function printable(s: string): string {
  return s.replace(/\s+/gu, ' ').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/gu, '\uFFFD');
}

function signed(x: number, digits = 2): string {
  return `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(digits)}`;
}

/** The marked text and a summary line. */
export function formatExplanation(x: Explanation, opts: FormatOptions): string[] {
  const strongest = Math.max(0, ...x.words.map((w) => Math.abs(w.weight)));
  const marked = [...x.words]
    .filter((w) => strongest > 0 && Math.abs(w.weight) >= MARK_FRACTION * strongest)
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight))
    .slice(0, opts.maxMarks ?? 8);
  const rank = new Map(marked.map((w, i) => [w.start, i]));
  let out = '';
  let at = 0;
  for (const w of x.words) {
    const i = rank.get(w.start);
    if (i === undefined) continue;
    out += printable(x.text.slice(at, w.start));
    const word = printable(w.text);
    if (opts.color) out += `${w.weight > 0 ? ANSI.spam : ANSI.ham}${i < 3 ? ANSI.bold : ''}${word}${ANSI.reset}`;
    else out += `[${w.weight > 0 ? '+' : '-'}${word}]`;
    at = w.end;
  }
  out += printable(x.text.slice(at));
  if (x.truncated) out += ' […]';
  const delta = x.margin - x.baselineMargin;
  const sum = delta + x.completenessGap;
  const summary =
    `margin ${signed(x.margin)} (spam - ham logit; ${signed(x.baselineMargin)} for the empty baseline), weights sum to ${signed(sum)}: ` +
    `gap ${(100 * x.relativeGap).toFixed(1)}%${x.converged ? '' : ' (NOT within tolerance)'}; integrated gradients, ${x.quadrature.evaluations} evaluations`;
  const legend = opts.color ? `${ANSI.spam}red${ANSI.reset}: towards spam, ${ANSI.ham}green${ANSI.reset}: towards ham` : '[+word]: towards spam, [-word]: towards ham';
  return [`  ${out.trim()}`, `  ${summary}; ${legend}`];
}
