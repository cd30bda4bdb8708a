/**
 * MCP over streamable HTTP (stateless) and the OAuth protected-resource metadata MCP clients use to
 * find the sign-in. The API Gateway event becomes a Web `Request` for the SDK's Web-standard
 * transport and its `Response` becomes the Lambda result, so API Gateway and the local twin run
 * the same code.
 */
import { createHash, randomUUID } from 'node:crypto';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ForbiddenError, PayloadTooLargeError } from '../../core/errors.js';
import { isValidSessionId } from '../../core/requests.js';
import { principalKey } from '../../core/types.js';
import type { Caller } from '../../middleware/auth.js';
import { header, json, rawBody, SECURITY_HEADERS, type HttpResult } from '../../middleware/http.js';
import { baseUrl, type ApiRoute, type Ctx } from '../context.js';
import { createWardenMcpServer } from '../mcp/server.js';

export const MCP_PATH = '/mcp';
const METADATA_PATH = '/.well-known/oauth-protected-resource';

interface McpSettings {
  readonly allowedOrigins: ReadonlySet<string>;
  readonly scopes: readonly string[];
}

let settings: McpSettings | undefined;

/** Read once, like the rest of the runtime's environment. */
function mcpSettings(env: NodeJS.ProcessEnv = process.env): McpSettings {
  settings ??= {
    allowedOrigins: new Set(
      (env.MCP_ALLOWED_ORIGINS ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((s) => new URL(s).origin),
    ),
    scopes: (env.OIDC_SCOPES ?? 'openid').split(/[\s,]+/).filter(Boolean),
  };
  return settings;
}

/**
 * DNS-rebinding protection the MCP spec asks for: a browser page may only reach the endpoint from
 * Warden's own origin or one configured in MCP_ALLOWED_ORIGINS. Clients that are not browsers
 * (Claude Code, IDEs, SDKs) send no Origin.
 */
function checkOrigin(ctx: Ctx): void {
  const origin = header(ctx.event, 'origin');
  if (origin === undefined) return;
  let normalised: string;
  try {
    normalised = new URL(origin).origin;
  } catch {
    throw new ForbiddenError('origin not allowed');
  }
  if (normalised === new URL(baseUrl(ctx.event, ctx.rt)).origin) return;
  if (mcpSettings().allowedOrigins.has(normalised)) return;
  throw new ForbiddenError(`origin ${normalised} is not allowed to call this MCP endpoint`);
}

/**
 * One audit session per client conversation. Warden hands out an `Mcp-Session-Id` at initialize and
 * the client sends it back, so a conversation's calls group together without server state. The id
 * is bound to the caller so nobody can write into another principal's session; without one, the
 * session is derived from the token, as on the REST API.
 */
export function mcpSessionId(event: APIGatewayProxyEventV2, caller: Caller): string {
  const given = header(event, 'mcp-session-id');
  const seed =
    given !== undefined && isValidSessionId(given)
      ? `${principalKey(caller.principal)}\n${given}`
      : caller.token;
  return `m_${createHash('sha256').update(seed).digest('base64url').slice(0, 22)}`;
}

function isInitialize(body: string): boolean {
  try {
    const msg = JSON.parse(body) as unknown;
    return (
      typeof msg === 'object' &&
      msg !== null &&
      !Array.isArray(msg) &&
      (msg as { method?: unknown }).method === 'initialize'
    );
  } catch {
    return false;
  }
}

/** Hop-by-hop and credential headers never reach the MCP layer: the token stops at authentication. */
const DROPPED_HEADERS = new Set(['authorization', 'cookie', 'host', 'content-length', 'connection']);

function toRequest(event: APIGatewayProxyEventV2, url: string, body: string): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(event.headers ?? {})) {
    if (v !== undefined && !DROPPED_HEADERS.has(k.toLowerCase())) headers.set(k, v);
  }
  const method = event.requestContext.http.method.toUpperCase();
  return new Request(url, { method, headers, ...(method === 'POST' ? { body } : {}) });
}

async function toResult(response: Response, extra: Record<string, string>): Promise<HttpResult> {
  const headers: Record<string, string> = { ...SECURITY_HEADERS };
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  return { statusCode: response.status, headers: { ...headers, ...extra }, body: await response.text() };
}

async function handleMcp(ctx: Ctx): Promise<HttpResult> {
  checkOrigin(ctx);
  const caller = await ctx.caller();
  const body = rawBody(ctx.event);
  const limit = ctx.rt.config.maxBodyBytes;
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > limit) throw new PayloadTooLargeError(`request body is ${bytes} bytes; the limit is ${limit}`);

  const base = baseUrl(ctx.event, ctx.rt);
  // Stateless: a fresh server and transport for this request alone, never reused.
  const server = createWardenMcpServer({
    rt: ctx.rt,
    principal: caller.principal,
    meta: { sessionId: mcpSessionId(ctx.event, caller) },
    baseUrl: base,
  });
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
    maxRequestBodySize: limit,
  });
  try {
    await server.connect(transport);
    const response = await transport.handleRequest(toRequest(ctx.event, `${base}${MCP_PATH}`, body));
    const extra: Record<string, string> =
      response.ok && isInitialize(body) ? { 'mcp-session-id': randomUUID() } : {};
    return await toResult(response, extra);
  } finally {
    await server.close();
  }
}

function notAllowed(): Promise<HttpResult> {
  // Stateless server: no standalone SSE stream to GET, no session to DELETE (spec: answer 405).
  return Promise.resolve(
    json(
      405,
      { error: { code: 'method_not_allowed', message: 'this MCP endpoint is stateless: use POST' } },
      { allow: 'POST' },
    ),
  );
}

/** RFC 9728: `resource` is the identifier the metadata URL was built from. */
function protectedResourceMetadata(ctx: Ctx, resourcePath: string): HttpResult {
  const base = baseUrl(ctx.event, ctx.rt);
  return json(
    200,
    {
      resource: `${base}${resourcePath}`,
      authorization_servers: [ctx.rt.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: mcpSettings().scopes,
      resource_name: 'Warden',
    },
    { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' },
  );
}

export const mcpRoutes: ApiRoute[] = [
  { method: 'POST', path: MCP_PATH, handle: (ctx) => handleMcp(ctx) },
  { method: 'GET', path: MCP_PATH, handle: notAllowed },
  { method: 'DELETE', path: MCP_PATH, handle: notAllowed },
  {
    method: 'GET',
    path: METADATA_PATH,
    handle: async (ctx) => protectedResourceMetadata(ctx, ''),
  },
  {
    method: 'GET',
    path: `${METADATA_PATH}${MCP_PATH}`,
    handle: async (ctx) => protectedResourceMetadata(ctx, MCP_PATH),
  },
];
