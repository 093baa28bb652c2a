/**
 * The HTTP + WebSocket API (daemon/API.md) and the web page's static files. Every /api route but health needs
 * the access token; the WebSocket gets it as a query parameter because browsers cannot set its headers.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage as HttpRequest, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { renderRocSvg, renderTrainingCurvesSvg, type CurveMetric } from '../model/plot.ts';
import type { DaemonConfig } from './config.ts';
import { createHostPolicy, type HostPolicy } from './host-check.ts';
import { explanationResponse } from './explain/http.ts';
import type { Explanations } from './explain/service.ts';
import type { ModelHost } from './model-host.ts';
import { UnknownMessageError, type Scoring } from './scoring.ts';
import type { MessageFilter, Store } from './store/index.ts';
import { TrainingBusyError, type TrainingRunner } from './training/runner.ts';
import { correspondentKey } from './correspondents.ts';
import { MESSAGE_KINDS, type Label, type MessageKind, type SourceKind, type VerdictLabel } from './types.ts';
import { appliedThresholds, describeKind, isTrainedOn, KIND_NAMES, type ModelCalibration } from './verdicts.ts';
import { messageView, modelView, runView } from './views.ts';

const UI_DIR = fileURLToPath(new URL('../ui/', import.meta.url));
const MAX_BODY = 1024 * 1024;
const MAX_BATCH = 1000;
const MAX_CORRESPONDENTS = 10_000;

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export interface ApiContext {
  store: Store;
  scoring: Scoring;
  runner: TrainingRunner;
  host: ModelHost;
  explanations: Explanations;
  config: DaemonConfig;
  backend: string;
  token: string;
  logger: Logger;
  /** When the scheduled re-fine-tuning next runs, or null when unscheduled. */
  nextRun(): Date | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(data);
}

/**
 * Reads a JSON body of at most MAX_BODY bytes. An oversized body is refused but still drained (discarded), so
 * the 413 reaches the client and the keep-alive connection stays usable; leaving a `for await` early would
 * destroy the socket under the client instead.
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

async function readJson(req: HttpRequest): Promise<Record<string, unknown>> {
  const { chunks, size } = await readBody(req);
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  // Compare digests: constant time, and no length leak.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

function parseLabel(value: unknown, allowNull: boolean): Label | null {
  if (value === 'ham' || value === 'spam') return value;
  if (value === null && allowNull) return null;
  throw new HttpError(400, `label must be "ham" or "spam"${allowNull ? ' or null' : ''}`);
}

function parseKind(value: unknown, where: string): MessageKind | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && (MESSAGE_KINDS as readonly string[]).includes(value)) return value as MessageKind;
  throw new HttpError(400, `${where} must be one of ${MESSAGE_KINDS.join(', ')}`);
}

function optionalString(body: Record<string, unknown>, key: string, max = 100_000): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `${key} must be a string`);
  return v.slice(0, max);
}

function parseDate(value: string | undefined, key: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new HttpError(400, `${key} is not a date`);
  return d;
}

/** A percent-decoded URL path; malformed escapes (e.g. a lone "%") are the client's error. */
function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path');
  }
}

function intParam(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new HttpError(400, `${what} must be a positive integer`);
  return n;
}

export class ApiServer {
  readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly hosts: HostPolicy;

  constructor(private readonly ctx: ApiContext) {
    this.hosts = createHostPolicy(ctx.config.server.host, ctx.config.server.allowedHosts);
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
        ctx.logger.error({ err: (err as Error).message, stack: (err as Error).stack, url: req.url?.split('?')[0] }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, { error: `internal error: ${(err as Error).message}` });
        else res.destroy();
      });
    });
    this.http.on('upgrade', (req, socket, head) => {
      if (!this.hosts.hostAllowed(req.headers.host) || !this.hosts.originAllowed(req.headers.origin, req.headers.host)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/ws' || !tokenMatches(url.searchParams.get('token'), ctx.token)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.welcome(ws));
    });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        const addr = this.http.address();
        resolve({ host, port: typeof addr === 'object' && addr ? addr.port : port });
      });
    });
  }

  /** Stops accepting connections, closes WebSockets; requests in progress finish. */
  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeIdleConnections();
    });
  }

  /** Sends an event to every connected WebSocket client. */
  broadcast(event: Record<string, unknown>): void {
    const data = JSON.stringify(event);
    for (const ws of this.wss.clients) if (ws.readyState === ws.OPEN) ws.send(data);
  }

  private welcome(ws: WebSocket): void {
    ws.on('error', () => ws.terminate());
    ws.send(JSON.stringify({ type: 'hello', backend: this.ctx.backend, modelVersion: this.ctx.host.version }));
  }

  private async handle(req: HttpRequest, res: ServerResponse): Promise<void> {
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (!this.hosts.hostAllowed(req.headers.host)) {
      throw new HttpError(421, `this server does not answer to the host name "${String(req.headers.host ?? '').slice(0, 100)}" (add it to server.allowedHosts)`);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (!path.startsWith('/api/')) return this.serveStatic(path, method, res);
    if (path === '/api/health' && method === 'GET') {
      return sendJson(res, 200, {
        status: 'ok', ready: this.ctx.host.ready, backend: this.ctx.backend, modelVersion: this.ctx.host.version, training: this.ctx.runner.running !== null,
      });
    }
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    if (!tokenMatches(given, this.ctx.token)) throw new HttpError(401, 'missing or wrong access token (Authorization: Bearer <token>; the token is in <home>/token)');

    const route = `${method} ${path}`;
    let m: RegExpExecArray | null;
    if (route === 'GET /api/status') return sendJson(res, 200, await this.status());
    if (route === 'GET /api/messages') return sendJson(res, 200, await this.listMessages(url.searchParams));
    if (route === 'POST /api/messages') return sendJson(res, 200, await this.scoreOne(await readJson(req)));
    if (route === 'POST /api/messages/batch') return sendJson(res, 200, await this.scoreBatch(await readJson(req)));
    if (route === 'POST /api/labels') return sendJson(res, 200, await this.labelMany(await readJson(req)));
    if ((m = /^GET \/api\/messages\/(\d+)$/.exec(route))) return sendJson(res, 200, await this.messageDetail(intParam(m[1]!, 'message id')));
    if ((m = /^GET \/api\/messages\/(\d+)\/explanation$/.exec(route))) {
      const { status, body } = await explanationResponse(this.ctx, intParam(m[1]!, 'message id'), url.searchParams);
      return sendJson(res, status, body);
    }
    if ((m = /^POST \/api\/messages\/(\d+)\/label$/.exec(route))) {
      const body = await readJson(req);
      const record = await this.correct(intParam(m[1]!, 'message id'), parseLabel(body.label, true));
      return sendJson(res, 200, { message: messageView(record) });
    }
    if (route === 'GET /api/models') return sendJson(res, 200, await this.models());
    if ((m = /^GET \/api\/models\/(\d+)\/roc\.svg$/.exec(route))) {
      const model = await this.ctx.store.models.get(intParam(m[1]!, 'version'));
      if (!model) throw new HttpError(404, `there is no model version ${m[1]}`);
      if (!model.calibration) throw new HttpError(404, `model version ${model.version} has no held-out calibration`);
      res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'no-store' });
      const cal = model.calibration;
      const series = MESSAGE_KINDS.filter((k) => cal.kinds[k].nHam > 0 && cal.kinds[k].nSpam > 0).map((k) => {
        const c = cal.kinds[k];
        return { name: KIND_NAMES[k], roc: c.roc, ...(c.spamThreshold === null ? {} : { at: { hamLoss: c.hamLoss, spamCaught: c.spamCaught / c.nSpam } }) };
      });
      if (series.length === 0) throw new HttpError(404, `model version ${model.version} has no held-out ham and spam to draw`);
      res.end(await renderRocSvg(series));
      return;
    }
    if (route === 'GET /api/correspondents') return sendJson(res, 200, await this.correspondents(url.searchParams));
    if (route === 'POST /api/correspondents') return sendJson(res, 200, await this.addCorrespondents(await readJson(req)));
    if ((m = /^DELETE \/api\/correspondents\/([^/]+)$/.exec(route))) return sendJson(res, 200, await this.removeCorrespondent(m[1]!));
    if ((m = /^POST \/api\/models\/(\d+)\/promote$/.exec(route))) return sendJson(res, 200, await this.promote(intParam(m[1]!, 'version')));
    if (route === 'POST /api/train') {
      try {
        const run = await this.ctx.runner.start('api');
        return sendJson(res, 202, { run: runView(run) });
      } catch (err) {
        if (err instanceof TrainingBusyError) throw new HttpError(409, err.message);
        throw err;
      }
    }
    if (route === 'GET /api/runs') return sendJson(res, 200, { runs: (await this.ctx.store.runs.list()).map(runView) });
    if ((m = /^GET \/api\/runs\/(\d+)$/.exec(route))) {
      const run = await this.ctx.store.runs.get(intParam(m[1]!, 'run id'));
      if (!run) throw new HttpError(404, `there is no training run ${m[1]}`);
      return sendJson(res, 200, { ...runView(run), log: run.log });
    }
    if ((m = /^GET \/api\/runs\/(\d+)\/curves\/(loss|accuracy)\.svg$/.exec(route))) {
      const run = await this.ctx.store.runs.get(intParam(m[1]!, 'run id'));
      if (!run) throw new HttpError(404, `there is no training run ${m[1]}`);
      if (run.history.length === 0) throw new HttpError(404, `run ${run.id} has no finished epoch yet`);
      const svg = await renderTrainingCurvesSvg(run.history.map((h) => ({ ...h, examplesSeen: h.examplesSeen ?? h.epoch })), m[2] as CurveMetric);
      res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'no-store' });
      res.end(svg);
      return;
    }
    throw new HttpError(404, `no such route: ${method} ${path}`);
  }

  private async serveStatic(path: string, method: string, res: ServerResponse): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method not allowed');
    let rel: string;
    if (path === '/' || path === '/index.html') rel = 'index.html';
    else if (path.startsWith('/ui/')) rel = decodePath(path.slice(4));
    else throw new HttpError(404, `not found: ${path}`);
    const file = normalize(join(UI_DIR, rel));
    if (!file.startsWith(UI_DIR) || rel.split(/[\\/]/).includes('..') || file.endsWith(sep)) throw new HttpError(404, `not found: ${path}`);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      throw new HttpError(404, `not found: ${path}`);
    }
    res.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' });
    res.end(method === 'HEAD' ? undefined : data);
  }

  private async status() {
    const { store, host, runner, config } = this.ctx;
    const current = host.version;
    const model = current === null ? undefined : await store.models.get(current);
    const running = runner.running;
    return {
      backend: this.ctx.backend,
      ready: host.ready,
      model: model ? modelView(model, current) : null,
      pendingCorrections: await store.messages.correctionsSince(await store.runs.lastStart()),
      nextRun: this.ctx.nextRun()?.toISOString() ?? null,
      schedule: config.training.schedule,
      afterCorrections: config.training.afterCorrections,
      training: running ? runView(running) : null,
      verdicts: this.verdictStatus(model?.calibration ?? null),
      counts: await store.messages.counts(),
      imports: await this.importsView(),
    };
  }

  /** Per kind: whether the current model judges it, the thresholds in force, and one plain sentence. */
  private verdictStatus(calibration: ModelCalibration | null) {
    const v = this.ctx.config.verdicts;
    const kinds = Object.fromEntries(
      MESSAGE_KINDS.map((kind) => {
        const c = calibration?.kinds[kind];
        return [kind, { trainedOn: isTrainedOn(c), thresholds: appliedThresholds(c, v.thresholds[kind]), summary: describeKind(kind, c, v.targetHamLoss) }];
      }),
    );
    return { targetHamLoss: v.targetHamLoss, confidence: v.confidence, knownCorrespondents: v.knownCorrespondents, kinds };
  }

  /** Export files from the SMS watch folder: how many were handled, and which failed and why. */
  private async importsView() {
    const { files, failed } = await this.ctx.store.importedFiles.summary();
    return { files, failed: failed.map((f) => ({ file: f.path, error: f.detail ?? 'failed', at: f.at })) };
  }

  private async listMessages(q: URLSearchParams) {
    const filter: MessageFilter = { limit: 50 };
    const label = q.get('label') ?? (q.get('uncertain') === 'true' ? 'uncertain' : null);
    if (label) {
      if (!['ham', 'spam', 'uncertain'].includes(label)) throw new HttpError(400, 'label must be ham, uncertain or spam');
      filter.label = label as VerdictLabel;
    }
    filter.kind = parseKind(q.get('kind') ?? undefined, 'kind');
    if (filter.kind === undefined) delete filter.kind;
    const source = q.get('source');
    if (source) {
      if (!['imap', 'sms', 'api'].includes(source)) throw new HttpError(400, 'source must be imap, sms or api');
      filter.source = source as SourceKind;
    }
    const corrected = q.get('corrected');
    if (corrected) filter.corrected = corrected === 'true';
    const text = q.get('q');
    if (text) filter.q = text.slice(0, 200);
    const before = q.get('before');
    if (before) filter.before = intParam(before, 'before');
    const limit = q.get('limit');
    if (limit) filter.limit = Math.min(200, intParam(limit, 'limit'));
    const rows = await this.ctx.store.messages.list(filter);
    return { messages: rows.map(messageView), nextBefore: rows.length === filter.limit ? rows[rows.length - 1]!.id : null };
  }

  private async messageDetail(id: number) {
    const { store } = this.ctx;
    const m = await store.messages.get(id);
    if (!m) throw new HttpError(404, `there is no message ${id}`);
    const verdicts = await store.messages.verdictsOf(id);
    return { ...messageView(m), text: (await store.messages.text(id)) ?? '', verdicts, corrections: await store.messages.correctionsOf(id) };
  }

  private notReady(): HttpError {
    return new HttpError(503, 'no model is ready yet: the first training run is in progress (see /api/status)');
  }

  private async scoreOne(body: Record<string, unknown>) {
    if (!this.ctx.host.ready) throw this.notReady();
    const text = optionalString(body, 'body');
    if (text === undefined) throw new HttpError(400, 'body (the message text) is required');
    const kind = parseKind(body.kind, 'kind');
    const { record, duplicate } = await this.ctx.scoring.scoreRecord({
      source: 'api',
      ...(kind ? { kind } : {}),
      account: optionalString(body, 'account', 200) ?? 'api',
      externalId: optionalString(body, 'externalId', 500) ?? createHash('sha256').update(`${optionalString(body, 'sender') ?? ''}\n${optionalString(body, 'subject') ?? ''}\n${text}\n${Date.now()}-${Math.random()}`).digest('hex'),
      sender: optionalString(body, 'sender', 1000),
      subject: optionalString(body, 'subject', 2000),
      body: text,
      receivedAt: parseDate(optionalString(body, 'receivedAt', 100), 'receivedAt'),
    });
    return { message: messageView(record), duplicate };
  }

  private async scoreBatch(body: Record<string, unknown>) {
    if (!this.ctx.host.ready) throw this.notReady();
    const list = body.messages;
    if (!Array.isArray(list)) throw new HttpError(400, 'messages must be an array');
    if (list.length > MAX_BATCH) throw new HttpError(413, `at most ${MAX_BATCH} messages per batch`);
    const messages = list.map((raw, i) => {
      if (typeof raw !== 'object' || raw === null) throw new HttpError(400, `messages[${i}] must be an object`);
      const o = raw as Record<string, unknown>;
      const source = o.source ?? 'api';
      if (source !== 'sms' && source !== 'api') throw new HttpError(400, `messages[${i}].source must be "sms" or "api"`);
      const text = optionalString(o, 'body');
      const account = optionalString(o, 'account', 200);
      const externalId = optionalString(o, 'externalId', 500);
      if (text === undefined || !account || !externalId) throw new HttpError(400, `messages[${i}] needs body, account and externalId`);
      const kind = parseKind(o.kind, `messages[${i}].kind`);
      return {
        source, account, externalId, body: text,
        ...(kind ? { kind } : {}),
        sender: optionalString(o, 'sender', 1000),
        subject: optionalString(o, 'subject', 2000),
        receivedAt: parseDate(optionalString(o, 'receivedAt', 100), `messages[${i}].receivedAt`),
        knownLabel: o.knownLabel === undefined || o.knownLabel === null ? undefined : (parseLabel(o.knownLabel, false) ?? undefined),
      } as const;
    });
    const results = await Promise.all(messages.map((m) => this.ctx.scoring.scoreRecord(m)));
    return {
      results: results.map(({ record, duplicate }) => ({ id: record.id, duplicate, label: record.label, spamProbability: record.verdict?.spamProbability ?? null })),
    };
  }

  private async correct(id: number, label: Label | null) {
    try {
      return await this.ctx.scoring.correctRecord(id, label, 'ui');
    } catch (err) {
      if (err instanceof UnknownMessageError) throw new HttpError(404, err.message);
      throw err;
    }
  }

  private async labelMany(body: Record<string, unknown>) {
    const ids = body.ids;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000 || !ids.every((i) => Number.isSafeInteger(i) && (i as number) > 0)) {
      throw new HttpError(400, 'ids must be a non-empty array of message ids (at most 1000)');
    }
    const label = parseLabel(body.label, true);
    try {
      const records = await this.ctx.scoring.correctRecords([...new Set(ids as number[])], label, 'ui');
      return { messages: records.map(messageView) };
    } catch (err) {
      if (err instanceof UnknownMessageError) throw new HttpError(404, err.message);
      throw err;
    }
  }

  private async correspondents(q: URLSearchParams) {
    const limit = Math.min(1000, q.get('limit') ? intParam(q.get('limit')!, 'limit') : 200);
    const offset = q.get('offset') ? Number(q.get('offset')) : 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new HttpError(400, 'offset must be a non-negative integer');
    const text = q.get('q');
    return this.ctx.store.correspondents.list({ limit, offset, ...(text ? { q: text.slice(0, 200) } : {}) });
  }

  /** The user adds addresses by hand; `gptspam import` sends the sent-to and contact addresses of a phone export. */
  private async addCorrespondents(body: Record<string, unknown>) {
    const list = body.correspondents;
    if (!Array.isArray(list) || list.length > MAX_CORRESPONDENTS) throw new HttpError(400, `correspondents must be an array (at most ${MAX_CORRESPONDENTS})`);
    const entries = list.map((raw, i) => {
      if (typeof raw !== 'object' || raw === null) throw new HttpError(400, `correspondents[${i}] must be an object`);
      const o = raw as Record<string, unknown>;
      const address = optionalString(o, 'address', 500);
      const key = correspondentKey(address);
      if (!address || key === null) throw new HttpError(400, `correspondents[${i}].address must be an e-mail address, a phone number or a sender name`);
      const origin = o.origin ?? 'user';
      if (origin !== 'user' && origin !== 'sms-sent' && origin !== 'sms-contact') throw new HttpError(400, `correspondents[${i}].origin must be user, sms-sent or sms-contact`);
      return { address: key, display: optionalString(o, 'display', 500) ?? address, origin, account: optionalString(o, 'account', 200) ?? null } as const;
    });
    return { added: await this.ctx.store.correspondents.add(entries) };
  }

  private async removeCorrespondent(encoded: string) {
    let address: string;
    try {
      address = decodeURIComponent(encoded);
    } catch {
      throw new HttpError(400, 'the address is not valid percent-encoding');
    }
    // Either the stored key ("mail:…", "tel:…") or an address as the user writes it.
    const key = /^(mail|tel|id):/.test(address) ? address : correspondentKey(address);
    if (key === null || !(await this.ctx.store.correspondents.remove(key))) throw new HttpError(404, `${address} is not a known correspondent`);
    return { removed: key };
  }

  private async models() {
    const current = this.ctx.host.version;
    return { current, models: (await this.ctx.store.models.list()).map((m) => modelView(m, current)) };
  }

  private async promote(version: number) {
    const model = await this.ctx.store.models.get(version);
    if (!model) throw new HttpError(404, `there is no model version ${version}`);
    await this.ctx.runner.promote(version);
    return { current: version };
  }
}
