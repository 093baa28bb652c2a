/**
 * SMS Backup & Restore writes characters outside the Basic Multilingual Plane (emoji) as two numeric
 * character references, one per UTF-16 surrogate: "&#55357;&#56832;" for 😀. XML forbids references to
 * surrogates, so a conforming parser rejects both halves. This rewrites every such pair into one reference
 * to the real code point, zero-padded to the pair's exact length ("&#0000000128512;") so that line and column
 * numbers the XML parser reports later still point at the right place in the file.
 *
 * Unpaired surrogate references are left alone: the XML parser reports them with their position and keeps
 * them literally. The rewrite also applies inside comments/CDATA, which the SMS parser ignores.
 */

const REF = /&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,24}));/y;
/** References longer than this are not looked for across a chunk boundary (only absurd zero padding is). */
const MAX_REF_CHARS = 32;

const isHigh = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;

function refAt(text: string, index: number): { code: number; end: number } | undefined {
  REF.lastIndex = index;
  const match = REF.exec(text);
  if (match === null) return undefined;
  const code = match[1] !== undefined ? parseInt(match[1], 16) : parseInt(match[2] ?? '', 10);
  return { code, end: REF.lastIndex };
}

/** Joins the surrogate-pair references in `text` (which must not end inside a reference). */
export function joinSurrogateRefs(text: string): string {
  let out = '';
  let copied = 0;
  let i = text.indexOf('&#');
  while (i !== -1) {
    const high = refAt(text, i);
    if (high === undefined) {
      i = text.indexOf('&#', i + 2);
      continue;
    }
    const low = isHigh(high.code) ? refAt(text, high.end) : undefined;
    if (low !== undefined && isLow(low.code)) {
      const codePoint = 0x10000 + ((high.code - 0xd800) << 10) + (low.code - 0xdc00);
      const width = low.end - i;
      out += text.slice(copied, i) + '&#' + String(codePoint).padStart(width - 3, '0') + ';';
      copied = low.end;
      i = text.indexOf('&#', low.end);
    } else {
      i = text.indexOf('&#', high.end);
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** Where to cut `text` so that no reference, and no high-surrogate reference awaiting its partner, is split. */
function safeCut(text: string): number {
  const amp = text.lastIndexOf('&');
  if (amp === -1 || text.length - amp > MAX_REF_CHARS) return text.length;
  // A complete high-surrogate reference right before the held-back tail must wait with it.
  const prev = text.lastIndexOf('&', amp - 1);
  if (prev !== -1 && amp - prev <= MAX_REF_CHARS) {
    const ref = refAt(text, prev);
    if (ref !== undefined && ref.end === amp && isHigh(ref.code)) return prev;
  }
  return amp;
}

/** Streaming version: feed chunks in order, then call end() once. */
export class SurrogateRefJoiner {
  private carry = '';

  push(chunk: string): string {
    const text = this.carry + chunk;
    const cut = safeCut(text);
    this.carry = text.slice(cut);
    return joinSurrogateRefs(text.slice(0, cut));
  }

  end(): string {
    const rest = joinSurrogateRefs(this.carry);
    this.carry = '';
    return rest;
  }
}
