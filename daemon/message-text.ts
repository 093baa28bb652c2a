/**
 * The text the classifier reads for a message. Training and scoring both call this one function, so what the
 * model learned from and what it is asked about are built the same way.
 *
 * E-mail (and messages of other kinds, which may carry a subject and sender too): the subject and sender matter as
 * much as the body (spam fakes both), so they lead, each on its own line. Text messages: the body alone, like the
 * SMS Spam Collection the model learns SMS from (a phone number says little and the training data has none).
 */
import type { MessageKind } from './contract.ts';

/** Characters kept; the tokenizer truncates further (to the model's maxTokens), this bounds the work first. */
export const MODEL_TEXT_CHARS = 4000;

export interface TextParts {
  kind: MessageKind;
  sender?: string | null;
  subject?: string | null;
  body: string;
}

/** Collapses runs of blank space (HTML-to-text leaves many) without joining paragraphs into one line. */
function tidy(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\f\v\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export function modelText(m: TextParts): string {
  const body = tidy(m.body.slice(0, MODEL_TEXT_CHARS * 2));
  let text: string;
  if (m.kind === 'sms') {
    text = body;
  } else {
    const head = [m.subject ? `Subject: ${tidy(m.subject)}` : '', m.sender ? `From: ${tidy(m.sender)}` : ''].filter(Boolean).join('\n');
    text = head ? `${head}\n\n${body}` : body;
  }
  return text.slice(0, MODEL_TEXT_CHARS);
}
