/**
 * Where an explanation's weights sit in the text: which characters each GPT-2 token stands for, and words as
 * sums of their tokens (so they keep integrated gradients' completeness). Text bookkeeping only, no model.
 */
import { decode } from './tokenizer.ts';

export interface TokenAttribution {
  id: number;
  /** The token's text; '' for a token holding only the first bytes of a character (the next token shows it). */
  text: string;
  /** Its place in `Explanation.text`, [start, end) in UTF-16 units. */
  start: number;
  end: number;
  weight: number;
}

export interface WordAttribution {
  /** A run of non-whitespace characters of `Explanation.text`, [start, end). */
  text: string;
  start: number;
  end: number;
  /** The sum of its tokens' weights. */
  weight: number;
  /** Its tokens: indices [first, last] into `tokens`. */
  tokens: [number, number];
}

/**
 * The text each token stands for. GPT-2's tokens are byte sequences, and a character of several bytes can be
 * split between tokens, so tokens are not decoded one by one: token i covers what decoding the first i+1 tokens
 * adds to the settled part of the text (the part that matches the whole decoded text). A token ending in the
 * first bytes of a character does not show them (`continues`: the token that completes the character shows it);
 * a token holding nothing else gets ''.
 */
export function tokenSpans(ids: number[]): { text: string; spans: Array<[number, number]>; continues: boolean[] } {
  const text = decode(ids);
  const spans: Array<[number, number]> = [];
  const continues: boolean[] = [];
  let settled = 0;
  for (let i = 0; i < ids.length; i++) {
    const prefix = i === ids.length - 1 ? text : decode(ids.slice(0, i + 1));
    let k = settled;
    const limit = Math.min(prefix.length, text.length);
    while (k < limit && prefix.charCodeAt(k) === text.charCodeAt(k)) k++;
    spans.push([settled, k]);
    continues.push(prefix.length > k);
    settled = k;
  }
  return { text, spans, continues };
}

/**
 * Words (runs of non-whitespace) with the summed weights of their tokens. A token belongs to the word holding
 * its first non-whitespace character, or, if it shows none but begins a character (`continues`), to that
 * character's word; whitespace-only tokens belong to no word.
 */
export function mergeWords(text: string, tokens: TokenAttribution[], continues: boolean[] = []): WordAttribution[] {
  const words: WordAttribution[] = [];
  const wordAt = new Int32Array(text.length).fill(-1);
  for (const m of text.matchAll(/\S+/gu)) {
    const start = m.index;
    const end = start + m[0].length;
    for (let c = start; c < end; c++) wordAt[c] = words.length;
    words.push({ text: m[0], start, end, weight: 0, tokens: [-1, -1] });
  }
  tokens.forEach((t, i) => {
    let anchor = t.start;
    while (anchor < t.end && wordAt[anchor] === -1) anchor++;
    if (anchor === t.end && !continues[i]) return; // whitespace only
    const w = anchor < text.length && wordAt[anchor]! >= 0 ? words[wordAt[anchor]!] : undefined;
    if (!w) return;
    w.weight += t.weight;
    if (w.tokens[0] === -1) w.tokens[0] = i;
    w.tokens[1] = i;
  });
  return words.filter((w) => w.tokens[0] !== -1);
}
