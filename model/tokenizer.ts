/** GPT-2's byte-level BPE (js-tiktoken, encoding "gpt2") with truncation and right padding. */
import { getEncoding, type Tiktoken } from 'js-tiktoken';

/** `<|endoftext|>`, GPT-2's only special token; also used as the padding token, as in the chapter. */
export const PAD_TOKEN_ID = 50256;

let encoding: Tiktoken | undefined;
function gpt2(): Tiktoken {
  encoding ??= getEncoding('gpt2');
  return encoding;
}

/**
 * BPE cost grows quickly with the length of one unbroken word, so text far beyond what can be kept is cut
 * before encoding. No real token spans more than a few dozen characters, so this budget never changes the
 * first `maxTokens` tokens of real text.
 */
function charBudget(maxTokens: number): number {
  return maxTokens * 32 + 1024;
}

/**
 * Encodes text to at most `maxTokens` ids (the first ones are kept: that is where a message says what it wants).
 * Special-token text such as "<|endoftext|>" in a message is encoded as ordinary text, never as the special
 * token: message content is written by strangers.
 */
export function encode(text: string, maxTokens?: number): number[] {
  let input = text;
  if (maxTokens !== undefined && input.length > charBudget(maxTokens)) {
    input = input.slice(0, charBudget(maxTokens));
  }
  const ids = gpt2().encode(input, [], []);
  return maxTokens !== undefined && ids.length > maxTokens ? ids.slice(0, maxTokens) : ids;
}

export function decode(ids: number[]): string {
  return gpt2().decode(ids);
}

export interface PaddedBatch {
  /** Row-major [rows, width] token ids, right-padded with PAD_TOKEN_ID. */
  ids: Int32Array;
  rows: number;
  width: number;
  /** Number of real tokens per row (at least 1: an empty text is given one pad token to read). */
  lengths: number[];
}

/** Right-pads token sequences to `width` (default: the longest). Longer sequences are truncated. */
export function padBatch(seqs: number[][], width?: number): PaddedBatch {
  const w = Math.max(1, width ?? Math.max(1, ...seqs.map((s) => s.length)));
  const ids = new Int32Array(seqs.length * w).fill(PAD_TOKEN_ID);
  const lengths: number[] = [];
  seqs.forEach((s, r) => {
    const n = Math.min(s.length, w);
    for (let i = 0; i < n; i++) ids[r * w + i] = s[i]!;
    lengths.push(Math.max(1, n));
  });
  return { ids, rows: seqs.length, width: w, lengths };
}
