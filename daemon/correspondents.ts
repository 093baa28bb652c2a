/**
 * Known correspondents: addresses the user has written to (IMAP Sent mailbox, sent text messages) and phone contacts.
 * Their messages get a ham verdict whatever the score: a filter that junks a reply from someone you wrote to loses
 * the mail that matters most. (A forged sender address gets through this way, as with any allow list; the score is
 * still stored, so the review page shows where the model disagreed.)
 *
 * Addresses are matched on a normalised key: e-mail addresses in lower case without the display name; phone numbers
 * by their last nine digits, so "+44 7700 900123" and "07700 900123" are one number; alphanumeric sender ids in
 * lower case.
 */

const PHONE_DIGITS = 9;

/** The key an address is matched on, or null when there is nothing to match (empty, no letters or digits). */
export function correspondentKey(address: string | null | undefined): string | null {
  if (!address) return null;
  const trimmed = address.trim();
  const angle = /<([^<>]*@[^<>]*)>/.exec(trimmed);
  const mail = angle?.[1] ?? (/^[^\s@<>]+@[^\s@<>]+$/.test(trimmed) ? trimmed : undefined);
  if (mail !== undefined) return `mail:${mail.trim().toLowerCase()}`;
  if (/^[+\d\s().\-/]+$/.test(trimmed)) {
    const digits = trimmed.replace(/\D/g, '');
    if (digits.length === 0) return null;
    return `tel:${digits.length > PHONE_DIGITS ? digits.slice(-PHONE_DIGITS) : digits}`;
  }
  const id = trimmed.toLowerCase().replace(/\s+/g, ' ');
  return /[\p{L}\p{N}]/u.test(id) ? `id:${id}` : null;
}
