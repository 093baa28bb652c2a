import { createHash } from 'node:crypto';

const normalise = (text: string): string => text.trim().normalize('NFC');

/**
 * Stable id of an SMS: sha256 over (party, timestamp, body), trimmed and NFC-normalised, so the same message
 * found again in a later, larger export gets the same id and the daemon can skip it. JSON encoding keeps the
 * three fields from running into each other. `when` is epoch ms, or the raw date text when it was unreadable.
 */
export function smsExternalId(party: string, when: number | string | undefined, body: string): string {
  const key = JSON.stringify([normalise(party), typeof when === 'string' ? normalise(when) : when ?? null, normalise(body)]);
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
