/** Routes of the known-correspondent list: read, add (by hand, or what `gptspam import` found), forget. */
import type { z } from 'zod';
import { correspondentKey } from '../correspondents.ts';
import type { ApiContext } from './context.ts';
import { HttpError } from './http.ts';
import type { correspondentsBody, correspondentsQuery } from './schemas.ts';

export function listCorrespondents(ctx: ApiContext, q: z.output<typeof correspondentsQuery>) {
  return ctx.store.correspondents.list({ limit: q.limit, offset: q.offset, ...(q.q ? { q: q.q } : {}) });
}

export async function addCorrespondents(ctx: ApiContext, b: z.output<typeof correspondentsBody>) {
  const entries = b.correspondents.map((c, i) => {
    const key = correspondentKey(c.address);
    if (key === null) throw new HttpError(400, `correspondents.${i}.address: must be an e-mail address, a phone number or a sender name`);
    return { address: key, display: c.display ?? c.address, origin: c.origin, account: c.account ?? null };
  });
  return { added: await ctx.store.correspondents.add(entries) };
}

/** Forgets one, given as the user writes it or as its stored key ("mail:…", "tel:…", "id:…"). */
export async function removeCorrespondent(ctx: ApiContext, address: string) {
  const key = /^(mail|tel|id):/.test(address) ? address : correspondentKey(address);
  if (key === null || !(await ctx.store.correspondents.remove(key))) throw new HttpError(404, `${address} is not a known correspondent`);
  return { removed: key };
}
