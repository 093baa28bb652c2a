/**
 * The HTTP plumbing every route shares: JSON answers, request bodies read with a size limit and parsed by a
 * schema (a body that does not fit is a 400 naming the field), path parameters, the access-token check.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { z } from 'zod';

export const MAX_BODY = 1024 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(data);
}

export function sendSvg(res: ServerResponse, svg: string): void {
  res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'no-store' });
  res.end(svg);
}

/**
 * Reads a body of at most MAX_BODY bytes. An oversized body is refused but still drained (discarded), so the 413
 * reaches the client and the keep-alive connection stays usable; leaving a `for await` early would destroy the
 * socket under the client instead.
 */
function readBody(req: HttpRequest): Promise<{ chunks: Buffer[]; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
      req.resume();
      reject(tooLarge());
      return;
    }
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
      else if (size - chunk.length <= MAX_BODY) reject(tooLarge()); // keeps reading, stores nothing more
    });
    req.on('end', () => resolve({ chunks, size }));
    req.on('error', reject);
  });
}

/** The request's JSON body (an empty body is `{}`), parsed by `schema`. */
export async function readJsonBody<S extends z.ZodType>(req: HttpRequest, schema: S): Promise<z.output<S>> {
  const { chunks, size } = await readBody(req);
  let body: unknown = {};
  if (size > 0) {
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new HttpError(400, 'the request body is not valid JSON');
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object');
  return parse(schema, body);
}

/** `value` parsed by `schema`, or a 400 naming each field that does not fit. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message));
  throw new HttpError(400, problems.join('; '));
}

export function intParam(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new HttpError(400, `${what} must be a positive integer`);
  return n;
}

/** A percent-decoded URL path segment; malformed escapes (e.g. a lone "%") are the client's error. */
export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path');
  }
}

export function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  // Compare digests: constant time, and no length leak.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
