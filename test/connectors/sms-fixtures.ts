/**
 * Builders for realistic SMS export files, filled with the real UCI SMS Spam Collection
 * (../shared/data/SMSSpamCollection beside the repository; never copied into it).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Label } from '../../daemon/contract.ts';

export const UCI_PATH = fileURLToPath(new URL('../../../shared/data/SMSSpamCollection', import.meta.url));

export interface UciRow { label: Label; text: string }

let uciCache: UciRow[] | undefined;

/** The collection's rows, parsed independently of the code under test. */
export function loadUci(): UciRow[] {
  if (uciCache !== undefined) return uciCache;
  if (!existsSync(UCI_PATH)) throw new Error(`test data missing: ${UCI_PATH} (the UCI SMS Spam Collection)`);
  uciCache = readFileSync(UCI_PATH, 'utf8').split('\n').filter((l) => l !== '').map((line) => {
    const tab = line.indexOf('\t');
    return { label: line.slice(0, tab) as Label, text: line.slice(tab + 1) };
  });
  return uciCache;
}

export async function makeTempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'gptspam-sms-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Attribute escaping as SMS Backup & Restore does it: XML entities, control characters as numeric
 * references, and characters outside the BMP as one reference per UTF-16 surrogate ("&#55357;&#56832;").
 */
export function escapeAttr(text: string): string {
  return text.replace(/[&<>"'\n\r\t]|[\uD800-\uDBFF][\uDC00-\uDFFF]/g, (ch) => {
    switch (ch) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case '"': return '&quot;';
      case "'": return '&apos;';
      default:
        return ch.length === 2 ? `&#${ch.charCodeAt(0)};&#${ch.charCodeAt(1)};` : `&#${ch.charCodeAt(0)};`;
    }
  });
}

export interface SmsSpec {
  kind: 'sms';
  address: string;
  /** Epoch ms. */
  date: number;
  /** 1 received, 2 sent, 3 draft. */
  type: 1 | 2 | 3;
  body: string;
  contactName?: string;
}

export interface MmsSpec {
  kind: 'mms';
  /** The other party: the sender when received, the recipient when sent. */
  address: string;
  owner: string;
  date: number;
  msgBox: 1 | 2;
  text: string;
  /** Size of the base64 image data in the image part. */
  imageChars: number;
}

export type MessageSpec = SmsSpec | MmsSpec;

const readable = (ms: number): string => new Date(ms).toUTCString();

export function smsXml(s: SmsSpec): string {
  return `  <sms protocol="0" address="${escapeAttr(s.address)}" date="${s.date}" type="${s.type}" subject="null" ` +
    `body="${escapeAttr(s.body)}" toa="null" sc_toa="null" service_center="+447785016005" read="1" status="-1" locked="0" ` +
    `date_sent="${s.date - 4000}" sub_id="1" readable_date="${readable(s.date)}" contact_name="${escapeAttr(s.contactName ?? '(Unknown)')}" />\n`;
}

export function mmsXml(m: MmsSpec): string {
  const from = m.msgBox === 1 ? m.address : m.owner;
  const to = m.msgBox === 1 ? m.owner : m.address;
  const image = 'QUJD'.repeat(Math.ceil(m.imageChars / 4)).slice(0, m.imageChars);
  return `  <mms date="${m.date}" rr="null" sub="null" ct_t="application/vnd.wap.multipart.related" read_status="null" seen="1" ` +
    `msg_box="${m.msgBox}" address="${escapeAttr(m.address)}" sub_cs="null" resp_st="null" retr_st="null" d_tm="null" text_only="0" ` +
    `exp="null" locked="0" m_id="mavodi-1-89-${m.date}" st="null" retr_txt_cs="null" retr_txt="null" creator="com.google.android.apps.messaging" ` +
    `date_sent="${Math.floor(m.date / 1000)}" read="1" m_size="${m.imageChars + m.text.length}" rpt_a="null" ct_cls="null" pri="129" sub_id="1" ` +
    `tr_id="T${m.date.toString(16)}" resp_txt="null" ct_l="null" m_cls="personal" d_rpt="129" v="18" m_type="${m.msgBox === 1 ? 132 : 128}" ` +
    `readable_date="${readable(m.date)}" contact_name="(Unknown)">\n` +
    `    <parts>\n` +
    `      <part seq="-1" ct="application/smil" name="null" chset="null" cd="null" fn="null" cid="&lt;smil&gt;" cl="smil.xml" ctt_s="null" ctt_t="null" ` +
    `text="&lt;smil&gt;&lt;body&gt;&lt;par dur=&quot;5000ms&quot;&gt;&lt;img src=&quot;image000000.jpg&quot;/&gt;&lt;/par&gt;&lt;/body&gt;&lt;/smil&gt;" />\n` +
    `      <part seq="0" ct="image/jpeg" name="image000000.jpg" chset="null" cd="null" fn="null" cid="&lt;image000000&gt;" cl="image000000.jpg" ` +
    `ctt_s="null" ctt_t="null" text="null" data="${image}" />\n` +
    `      <part seq="1" ct="text/plain" name="null" chset="106" cd="null" fn="null" cid="&lt;text000001&gt;" cl="text000001.txt" ` +
    `ctt_s="null" ctt_t="null" text="${escapeAttr(m.text)}" />\n` +
    `    </parts>\n` +
    `    <addrs>\n` +
    `      <addr address="${escapeAttr(from)}" type="137" charset="106" />\n` +
    `      <addr address="${escapeAttr(to)}" type="151" charset="106" />\n` +
    `    </addrs>\n` +
    `  </mms>\n`;
}

export const elementXml = (s: MessageSpec): string => (s.kind === 'sms' ? smsXml(s) : mmsXml(s));

export function backupHeader(count: number): string {
  return `<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n` +
    `<!--File Created By SMS Backup & Restore v10.20.002 on 14/11/2023 22:13:20-->\n` +
    `<smses count="${count}" backup_set="5b3f3d70-6f5e-4a59-9d7e-1b3e1f7f0a10" backup_date="1700000000000" type="full">\n`;
}

export const BACKUP_FOOTER = '</smses>\n';

export function backupXml(specs: readonly MessageSpec[]): string {
  return backupHeader(specs.length) + specs.map(elementXml).join('') + BACKUP_FOOTER;
}

export const OWNER = '+447700900000';
export const BASE_DATE = Date.UTC(2023, 10, 14, 9, 0, 0);

/**
 * A deterministic conversation mix built from real texts: mostly received SMS, some sent, some MMS with an
 * image, some texts with emoji (surrogate-pair references) and line breaks (&#10;).
 */
export function buildSpecs(rows: readonly UciRow[], start = 0): MessageSpec[] {
  return rows.map((row, n): MessageSpec => {
    const i = start + n;
    const address = `+4477009${String(i % 500).padStart(5, '0')}`;
    const date = BASE_DATE + i * 61_000;
    let text = row.text;
    if (i % 7 === 2) text = `${text} 😀👍🏽`;
    if (i % 11 === 4) text = text.replace(/\. /, '.\n') + '\nSee you 🚀';
    if (i % 10 === 5) return { kind: 'mms', address, owner: OWNER, date, msgBox: i % 20 === 15 ? 2 : 1, text, imageChars: 2048 };
    const type = i % 10 === 3 ? 2 : 1;
    return { kind: 'sms', address, date, type, body: text, ...(i % 3 === 0 ? { contactName: `Contact ${i % 500}` } : {}) };
  });
}

export const isIncoming = (s: MessageSpec): boolean => (s.kind === 'sms' ? s.type === 1 : s.msgBox === 1);
export const specBody = (s: MessageSpec): string => (s.kind === 'sms' ? s.body : s.text);
