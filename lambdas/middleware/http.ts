/**
 * HTTP plumbing shared by the API handler: a normalised request, JSON responses, body parsing with
 * limits, and the one place errors become HTTP answers.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { z } from 'zod';
import {
  BadRequestError,
  PayloadTooLargeError,
  publicMessage,
  UnsupportedMediaTypeError,
  WardenError,
} from '../core/errors.js';
import { secondLayer } from '../core/masking/second-layer.js';

export type HttpResult = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
  headers: Record<string, string>;
};

export const SECURITY_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'x-frame-options': 'DENY',
};

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS, ...headers },
    body: JSON.stringify(body),
  };
}

export function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const headers = event.headers ?? {};
  const direct = headers[name];
  if (direct !== undefined) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export function rawBody(event: APIGatewayProxyEventV2): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

const MAX_JSON_DEPTH = 32;

function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (d > max) max = d;
    if (max > MAX_JSON_DEPTH) return max;
    if (v !== null && typeof v === 'object') {
      for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
    }
  }
  return max;
}

/** Parses a JSON body: content type, size, syntax, depth, then the zod schema. */
export function parseJsonBody<T extends z.ZodType>(
  event: APIGatewayProxyEventV2,
  schema: T,
  maxBytes: number,
): z.infer<T> {
  const body = rawBody(event);
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > maxBytes)
    throw new PayloadTooLargeError(`request body is ${bytes} bytes; the limit is ${maxBytes}`);
  const type = (header(event, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    throw new UnsupportedMediaTypeError(`content-type must be application/json (got "${type || 'none'}")`);
  }
  if (body.trim() === '') throw new BadRequestError('request body is empty; a JSON object is required');
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new BadRequestError(`malformed JSON: ${(error as Error).message}`);
  }
  if (jsonDepth(value) > MAX_JSON_DEPTH)
    throw new BadRequestError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    throw new BadRequestError(`invalid request body: ${summary}`, { issues });
  }
  return parsed.data;
}

/**
 * The single mapping from errors to HTTP: only codes below 500 show their message. A 5xx answers a
 * fixed message (core/errors.ts publicMessage) and the request id; its message, cause and the
 * Warden request go to the masked log under that id.
 */
export function errorResult(
  error: unknown,
  requestId: string,
  log: (e: Record<string, unknown>) => void,
): HttpResult {
  if (error instanceof WardenError) {
    const expose = error.statusCode < 500;
    const extraHeaders: Record<string, string> = {};
    if (error.statusCode === 401)
      extraHeaders['www-authenticate'] = (error.details?.wwwAuthenticate as string) ?? 'Bearer';
    if (!expose || error.statusCode >= 500) {
      log({
        level: 'error',
        msg: error.message,
        code: error.code,
        requestId,
        ...(typeof (error as { requestId?: unknown }).requestId === 'string'
          ? { wardenRequestId: (error as { requestId?: string }).requestId }
          : {}),
        cause: String(error.cause ?? ''),
      });
    }
    const details = { ...(error.details ?? {}) };
    delete details.wwwAuthenticate;
    const reqId = (error as { requestId?: string }).requestId;
    // Messages and details may quote what the caller sent or a dependency echoed (a parser's
    // "at or near …", a schema's "received …"): the detectors are the last layer before they leave.
    return json(
      error.statusCode,
      secondLayer({
        error: {
          code: error.code,
          message: expose ? error.message : `${publicMessage(error)} (request ${requestId})`,
          ...(reqId ? { requestId: reqId } : {}),
          ...(expose && Object.keys(details).length > 0 ? details : {}),
        },
      }),
      extraHeaders,
    );
  }
  log({
    level: 'error',
    msg: 'unhandled error',
    requestId,
    error: error instanceof Error ? error.stack : String(error),
  });
  return json(500, { error: { code: 'internal_error', message: `internal error (request ${requestId})` } });
}

/** One JSON line per entry, masked by the detectors (lambdas/core/log.ts). */
export { logJson } from '../core/log.js';
