/**
 * The HTTP + WebSocket server: the API's routes (api/routes.ts, documented in daemon/API.md) and the web page's
 * static files, with the checks every request passes first: the host name (DNS rebinding), the access token (all
 * /api routes but health; the WebSocket gets it as a query parameter because browsers cannot set its headers).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage as HttpRequest, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApiContext } from './api/context.ts';
import { decodePath, HttpError, sendJson, tokenMatches } from './api/http.ts';
import { findRoute } from './api/routes.ts';
import { createHostPolicy, type HostPolicy } from './host-check.ts';

export type { ApiContext } from './api/context.ts';

const UI_DIR = fileURLToPath(new URL('../ui/', import.meta.url));

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
    const found = findRoute(method, path);
    if (found?.route.token !== false) {
      const auth = req.headers.authorization;
      const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      if (!tokenMatches(given, this.ctx.token)) throw new HttpError(401, 'missing or wrong access token (Authorization: Bearer <token>; the token is in <home>/token)');
    }
    if (!found) throw new HttpError(404, `no such route: ${method} ${path}`);
    await found.route.handle(this.ctx, { req, res, url, params: found.params });
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
}
