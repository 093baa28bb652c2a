/**
 * The people a phone's owner corresponds with, read from an export: everyone a message was sent to, and every sender
 * the phone knows by a contact name. The daemon gives their messages a ham verdict. Read in a pass of its own before
 * the messages are scored, so a message that arrived before the owner's first reply is recognised too.
 */
import type { CorrespondentInput } from '../../daemon/contract.ts';
import { detectFormat } from './detect.ts';
import { parseExport, type ReadExportOptions } from './read-export.ts';
import type { ParseReport } from './types.ts';

export async function exportCorrespondents(path: string, opts: Pick<ReadExportOptions, 'format' | 'columns' | 'delimiter' | 'account'> = {}): Promise<CorrespondentInput[]> {
  const format = opts.format ?? (await detectFormat(path));
  // Problems are reported by the import pass that follows; this pass only collects addresses.
  const report: ParseReport = { errors: [], errorCount: 0 };
  const found = new Map<string, CorrespondentInput>();
  const add = (address: string | undefined, origin: CorrespondentInput['origin'], display: string | undefined) => {
    const a = address?.trim();
    if (!a || found.has(`${origin}|${a}`)) return;
    found.set(`${origin}|${a}`, { address: a, origin, ...(display ? { display } : {}), ...(opts.account ? { account: opts.account } : {}) });
  };
  const records = parseExport(format, path, {
    report, maxIssues: 0,
    ...(opts.columns === undefined ? {} : { columns: opts.columns }),
    ...(opts.delimiter === undefined ? {} : { delimiter: opts.delimiter }),
  });
  try {
    for await (const r of records) {
      if (r.direction === 'sent') {
        // A group message's contact name names the group, not one recipient.
        const name = r.recipients?.length === 1 ? r.contactName : undefined;
        for (const to of r.recipients ?? []) add(to, 'sms-sent', name);
      } else if (r.direction === 'incoming' && r.contactName !== undefined) {
        add(r.sender, 'sms-contact', r.contactName);
      }
    }
  } catch {
    // A file that cannot be read to its end: the addresses before the problem still count; the import pass that
    // follows reads the same messages, stores them and reports the problem.
  }
  return [...found.values()];
}
