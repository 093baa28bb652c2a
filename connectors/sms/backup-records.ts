/**
 * Turns the attributes of SMS Backup & Restore elements into ParsedSms records: the app's conventions for
 * direction codes, "null" placeholders, MMS parts and addresses. No XML parsing here (see xml.ts).
 */
import { parseTimestamp } from './dates.ts';
import type { Direction, ParsedSms } from './types.ts';

export type Attributes = Record<string, string>;
/** Receives a problem with the record that starts at `line`; the record is still produced. */
export type IssueSink = (message: string, line: number) => void;

/** Address type of the sender in an MMS <addr> (PduHeaders.FROM); 151 TO, 130 CC, 129 BCC. */
const MMS_FROM = '137';
const MMS_RECIPIENTS = new Set(['151', '130', '129']);

/** Telephony.TextBasedSmsColumns.TYPE: 1 inbox, 2 sent, 3 draft, 4 outbox, 5 failed, 6 queued. */
function smsDirection(type: string | undefined): Direction {
  switch (type) {
    case '1': return 'incoming';
    case '2': case '4': case '5': case '6': return 'sent';
    case '3': return 'draft';
    default: return 'unknown';
  }
}

/** Telephony.BaseMmsColumns.MESSAGE_BOX: 1 inbox, 2 sent, 3 drafts, 4 outbox. */
function mmsDirection(box: string | undefined): Direction {
  switch (box) {
    case '1': return 'incoming';
    case '2': case '4': return 'sent';
    case '3': return 'draft';
    default: return 'unknown';
  }
}

/** The app writes "null" for absent values and "(Unknown)" for numbers not in the contacts. */
function present(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' || trimmed === 'null' || trimmed === '(Unknown)' ? undefined : value;
}

function dateOf(raw: string | undefined, element: string, line: number, onIssue: IssueSink): Date | undefined {
  if (present(raw) === undefined) {
    onIssue(`<${element}> has no date`, line);
    return undefined;
  }
  const date = parseTimestamp(raw ?? '');
  if (date === undefined) onIssue(`<${element}> has an unreadable date "${raw}"`, line);
  return date;
}

/** Sender for incoming messages, recipients for the owner's own, plus the optional descriptive fields. */
function fillParties(
  record: ParsedSms,
  parties: { from: string | undefined; to: string[] },
  a: Attributes,
  subject: string | undefined,
): void {
  if (record.direction === 'sent' || record.direction === 'draft') {
    if (parties.to.length > 0) record.recipients = parties.to;
  } else if (parties.from !== undefined) {
    record.sender = parties.from;
  }
  const contact = present(a.contact_name ?? a.name);
  if (contact !== undefined) record.contactName = contact;
  const presentSubject = present(subject);
  if (presentSubject !== undefined) record.subject = presentSubject;
}

/** A self-contained <sms .../> element. */
export function smsRecord(a: Attributes, line: number, onIssue: IssueSink): ParsedSms {
  const record: ParsedSms = {
    format: 'sms-backup-xml',
    kind: 'sms',
    direction: smsDirection(a.type),
    body: a.body ?? '',
    line,
    extra: { type: a.type },
  };
  const address = present(a.address);
  fillParties(record, { from: address, to: address === undefined ? [] : [address] }, a, a.subject);
  const date = dateOf(a.date, 'sms', line, onIssue);
  if (date !== undefined) record.date = date;
  if (a.type === undefined) onIssue('<sms> has no type attribute; direction unknown', line);
  return record;
}

interface Part { seq: number; contentType: string; text?: string }

/** An <mms> whose <part> and <addr> children are still being read. */
export interface OpenMms { attrs: Attributes; line: number; parts: Part[]; addrs: Array<{ address: string; type: string }> }

export function openMms(a: Attributes, line: number): OpenMms {
  return { attrs: a, line, parts: [], addrs: [] };
}

/** Keeps what the record needs from a <part> or <addr>; image data is dropped right away. */
export function addMmsChild(mms: OpenMms, name: string, a: Attributes): void {
  if (name === 'part') {
    const seq = Number(a.seq);
    const part: Part = { seq: Number.isFinite(seq) ? seq : 0, contentType: a.ct ?? '' };
    if (a.text !== undefined && !(a.text === 'null' && a.data !== undefined)) part.text = a.text;
    // Some app versions keep a text part only base64-encoded in "data".
    else if (a.data !== undefined && part.contentType.toLowerCase().startsWith('text/plain')) {
      part.text = Buffer.from(a.data, 'base64').toString('utf8');
    }
    mms.parts.push(part);
  } else if (name === 'addr' && a.address !== undefined) {
    mms.addrs.push({ address: a.address, type: a.type ?? '' });
  }
}

const isText = (p: Part): boolean => p.contentType.toLowerCase().startsWith('text/plain');

/** The finished <mms>: text parts in order form the body, other parts are listed as attachments. */
export function mmsRecord(m: OpenMms, onIssue: IssueSink): ParsedSms {
  const a = m.attrs;
  const body = m.parts.filter((p) => isText(p) && p.text !== undefined).sort((x, y) => x.seq - y.seq).map((p) => p.text).join('\n');
  const attachments = m.parts.filter((p) => !isText(p) && p.contentType !== 'application/smil').map((p) => p.contentType);
  const record: ParsedSms = {
    format: 'sms-backup-xml',
    kind: 'mms',
    direction: mmsDirection(a.msg_box),
    body,
    line: m.line,
    extra: { msgBox: a.msg_box, attachments },
  };
  const to = m.addrs.filter((x) => MMS_RECIPIENTS.has(x.type)).map((x) => x.address);
  fillParties(record, {
    from: present(m.addrs.find((x) => x.type === MMS_FROM)?.address) ?? present(a.address),
    // Group messages list all recipients in "address", separated by "~".
    to: to.length > 0 ? to : present(a.address)?.split('~') ?? [],
  }, a, a.sub);
  const date = dateOf(a.date, 'mms', m.line, onIssue);
  if (date !== undefined) record.date = date;
  return record;
}
