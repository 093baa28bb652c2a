/**
 * The API's routes (daemon/API.md), one line each: method, path pattern, and what answers it. Every route but
 * health needs the access token (the server checks it before dispatching).
 */
import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { CurveMetric } from '../../model/plot.ts';
import type { ApiContext } from './context.ts';
import { addCorrespondents, listCorrespondents, removeCorrespondent } from './correspondents.ts';
import { explanation } from './explanation.ts';
import { decodePath, intParam, parse, readJsonBody, sendJson, sendSvg } from './http.ts';
import { correct, correctMany, listMessages, messageDetail, scoreBatch, scoreOne } from './messages.ts';
import { curvesSvg, models, promote, rocSvg, runDetail, runs, startTraining } from './models.ts';
import {
  correspondentsBody, correspondentsQuery, explanationQuery, labelBody, labelsBody, messagesQuery, queryObject, scoreBatchBody, scoreMessageBody,
} from './schemas.ts';
import { health, status } from './status.ts';

export interface Request {
  req: HttpRequest;
  res: ServerResponse;
  url: URL;
  /** The pattern's captured groups. */
  params: string[];
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: RegExp;
  /** false: answered without the access token. */
  token?: false;
  handle(ctx: ApiContext, r: Request): Promise<void> | void;
}

const json = (fn: (ctx: ApiContext, r: Request) => unknown) => async (ctx: ApiContext, r: Request) => sendJson(r.res, 200, await fn(ctx, r));
const id = (r: Request, what = 'message id') => intParam(r.params[0]!, what);
const query = <S extends z.ZodType>(r: Request, schema: S): z.output<S> => parse(schema, queryObject(r.url.searchParams));

export const ROUTES: Route[] = [
  { method: 'GET', path: /^\/api\/health$/, token: false, handle: json((ctx) => health(ctx)) },
  { method: 'GET', path: /^\/api\/status$/, handle: json((ctx) => status(ctx)) },

  { method: 'GET', path: /^\/api\/messages$/, handle: json((ctx, r) => listMessages(ctx, query(r, messagesQuery))) },
  { method: 'POST', path: /^\/api\/messages$/, handle: json(async (ctx, r) => scoreOne(ctx, await readJsonBody(r.req, scoreMessageBody))) },
  { method: 'POST', path: /^\/api\/messages\/batch$/, handle: json(async (ctx, r) => scoreBatch(ctx, await readJsonBody(r.req, scoreBatchBody))) },
  { method: 'GET', path: /^\/api\/messages\/(\d+)$/, handle: json((ctx, r) => messageDetail(ctx, id(r))) },
  {
    method: 'GET', path: /^\/api\/messages\/(\d+)\/explanation$/,
    handle: async (ctx, r) => {
      const { status: code, body } = await explanation(ctx, id(r), query(r, explanationQuery).version);
      sendJson(r.res, code, body);
    },
  },
  { method: 'POST', path: /^\/api\/messages\/(\d+)\/label$/, handle: json(async (ctx, r) => correct(ctx, id(r), (await readJsonBody(r.req, labelBody)).label)) },
  { method: 'POST', path: /^\/api\/labels$/, handle: json(async (ctx, r) => correctMany(ctx, await readJsonBody(r.req, labelsBody))) },

  { method: 'GET', path: /^\/api\/models$/, handle: json((ctx) => models(ctx)) },
  { method: 'POST', path: /^\/api\/models\/(\d+)\/promote$/, handle: json((ctx, r) => promote(ctx, id(r, 'version'))) },
  { method: 'GET', path: /^\/api\/models\/(\d+)\/roc\.svg$/, handle: async (ctx, r) => sendSvg(r.res, await rocSvg(ctx, id(r, 'version'))) },
  { method: 'POST', path: /^\/api\/train$/, handle: async (ctx, r) => sendJson(r.res, 202, await startTraining(ctx)) },
  { method: 'GET', path: /^\/api\/runs$/, handle: json((ctx) => runs(ctx)) },
  { method: 'GET', path: /^\/api\/runs\/(\d+)$/, handle: json((ctx, r) => runDetail(ctx, id(r, 'run id'))) },
  {
    method: 'GET', path: /^\/api\/runs\/(\d+)\/curves\/(loss|accuracy)\.svg$/,
    handle: async (ctx, r) => sendSvg(r.res, await curvesSvg(ctx, id(r, 'run id'), r.params[1] as CurveMetric)),
  },

  { method: 'GET', path: /^\/api\/correspondents$/, handle: json((ctx, r) => listCorrespondents(ctx, query(r, correspondentsQuery))) },
  { method: 'POST', path: /^\/api\/correspondents$/, handle: json(async (ctx, r) => addCorrespondents(ctx, await readJsonBody(r.req, correspondentsBody))) },
  { method: 'DELETE', path: /^\/api\/correspondents\/([^/]+)$/, handle: json((ctx, r) => removeCorrespondent(ctx, decodePath(r.params[0]!))) },
];

/** The route for a method and path, with its captured groups; undefined when none matches. */
export function findRoute(method: string, path: string): { route: Route; params: string[] } | undefined {
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const m = route.path.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}
