/**
 * MCP over streamable HTTP (stateless) and the OAuth protected-resource metadata MCP clients use to
 * find the sign-in. The API Gateway event becomes a Web `Request` for the SDK's Web-standard
 * transport and its `Response` becomes the Lambda result, so API Gateway and the local twin run
 * the same code.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ForbiddenError, PayloadTooLargeError } from '../../core/errors.js';
import { principalKey } from '../../core/types.js';
import type { Signer } from '../../adapters/signing.js';
import type { Caller } from '../../middleware/auth.js';
import { header, json, rawBody, SECURITY_HEADERS, type HttpResult } from '../../middleware/http.js';
import { baseUrl, type ApiRoute, type Ctx } from '../context.js';
import type { Runtime } from '../runtime.js';

export const MCP_PATH = '/mcp';
const METADATA_PATH = '/.well-known/oauth-protected-resource';

/**
 * The MCP server SDK, zod's tool schemas and Warden's tools, loaded on the first MCP call: a SQL
 * read over REST never evaluates them (bench/cold-start.ts).
 */
let sdk:
  | Promise<
      [
        typeof import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
        typeof import('../mcp/server.js'),
      ]
    >
  | undefined;
const loadMcpServer = () =>
  (sdk ??= Promise.all([
    import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
    import('../mcp/server.js'),
  ]));

interface McpSettings {
  readonly allowedOrigins: ReadonlySet<string>;
  readonly scopes: readonly string[];
  /** `warden login`'s public client at the IdP (OIDC_CLI_CLIENT_ID), and the scopes it asks for. */
  readonly cli?: { readonly clientId: string; readonly scope?: string; readonly redirectUri?: string };
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
    ...(env.OIDC_CLI_CLIENT_ID
      ? {
          cli: {
            clientId: env.OIDC_CLI_CLIENT_ID,
            ...(env.OIDC_CLI_SCOPE ? { scope: env.OIDC_CLI_SCOPE } : {}),
            ...(env.OIDC_CLI_REDIRECT_URI ? { redirectUri: env.OIDC_CLI_REDIRECT_URI } : {}),
          },
        }
      : {}),
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
 * the client sends it back, so a conversation's calls group together without server state: the id
 * carries a MAC (the deployment's signing key, KMS in AWS) over the caller and a random part, so
 * Warden can tell an id it issued to this caller from one it never issued — which is answered 404,
 * as the MCP transport spec says. Without an id the session is derived from the token, as on REST.
 */
const SESSION_ID_RE = /^w1\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

function sessionMacInput(caller: Caller, random: string): string {
  return `warden-mcp-session\n${principalKey(caller.principal)}\n${random}`;
}

/** Ids verified on this instance (a KMS VerifyMac per call would add a round trip to each). */
const verifiedSessions = new Set<string>();
const MAX_VERIFIED = 5000;

export async function issueMcpSessionId(signer: Signer, caller: Caller): Promise<string> {
  const random = randomBytes(16).toString('base64url');
  return `w1.${random}.${await signer.sign(sessionMacInput(caller, random))}`;
}

/** True only for an id Warden issued to this same principal. */
export async function verifyMcpSessionId(
  signer: Signer | undefined,
  caller: Caller,
  given: string,
): Promise<boolean> {
  const m = SESSION_ID_RE.exec(given);
  if (!m || !signer) return false;
  const key = `${principalKey(caller.principal)}\n${given}`;
  if (verifiedSessions.has(key)) return true;
  if (!(await signer.verify(sessionMacInput(caller, m[1]), m[2]))) return false;
  if (verifiedSessions.size >= MAX_VERIFIED) verifiedSessions.clear();
  verifiedSessions.add(key);
  return true;
}

/** The audit session of a call: the verified `Mcp-Session-Id`, bound to the caller, or the token's. */
export function mcpSessionId(given: string | undefined, caller: Caller): string {
  const seed = given !== undefined ? `${principalKey(caller.principal)}\n${given}` : caller.token;
  return `m_${createHash('sha256').update(seed).digest('base64url').slice(0, 22)}`;
}

/** The first protocol version without JSON-RPC batching (added in 2025-03-26, removed here). */
const BATCHES_REMOVED_IN = '2025-06-18';
/** What a server assumes when a client sends no MCP-Protocol-Version header (transport spec). */
const DEFAULT_PROTOCOL_VERSION = '2025-03-26';

interface ParsedBody {
  readonly initialize: boolean;
  readonly batch: boolean;
  /** The version an initialize asks for, when the body is one. */
  readonly initializeVersion?: string;
  /** One tools/call with a progressToken: answered as a stream, so progress can go first. */
  readonly wantsProgress: boolean;
}

function parseBody(body: string): ParsedBody {
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch {
    return { initialize: false, batch: false, wantsProgress: false };
  }
  const isInit = (m: unknown): m is { params?: { protocolVersion?: unknown } } =>
    typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'initialize';
  const init = Array.isArray(msg) ? msg.find(isInit) : isInit(msg) ? msg : undefined;
  const v: unknown = init?.params?.protocolVersion;
  const call = msg as { method?: unknown; params?: { _meta?: { progressToken?: unknown } } } | null;
  const token =
    !Array.isArray(msg) && call?.method === 'tools/call' ? call.params?._meta?.progressToken : undefined;
  return {
    initialize: init !== undefined,
    batch: Array.isArray(msg),
    wantsProgress: typeof token === 'string' || typeof token === 'number',
    ...(typeof v === 'string' ? { initializeVersion: v } : {}),
  };
}

function acceptsEventStream(ctx: Ctx): boolean {
  return /\btext\/event-stream\b/.test(header(ctx.event, 'accept') ?? '');
}

function jsonRpcError(statusCode: number, code: number, message: string): HttpResult {
  return json(statusCode, { jsonrpc: '2.0', error: { code, message }, id: null });
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

  const parsed = parseBody(body);
  if (parsed.batch) {
    const version =
      header(ctx.event, 'mcp-protocol-version') ?? parsed.initializeVersion ?? DEFAULT_PROTOCOL_VERSION;
    if (version >= BATCHES_REMOVED_IN) {
      return jsonRpcError(
        400,
        -32600,
        `Invalid Request: JSON-RPC batches are not part of MCP protocol version ${version.slice(0, 32)} (removed in ${BATCHES_REMOVED_IN}); send one message per request`,
      );
    }
  }
  let session = parsed.initialize ? undefined : header(ctx.event, 'mcp-session-id');
  if (session !== undefined && !(await verifyMcpSessionId(ctx.rt.signer, caller, session))) {
    // Never issued (or issued to someone else): the transport spec's answer is 404.
    return jsonRpcError(
      404,
      -32001,
      'Session not found: this Mcp-Session-Id was not issued to you by Warden; initialize again',
    );
  }
  const issued =
    parsed.initialize && ctx.rt.signer ? await issueMcpSessionId(ctx.rt.signer, caller) : undefined;
  session ??= issued;

  const base = baseUrl(ctx.event, ctx.rt);
  const [{ WebStandardStreamableHTTPServerTransport }, { createWardenMcpServer }] = await loadMcpServer();
  // Stateless: a fresh server and transport for this request alone, never reused.
  const server = createWardenMcpServer({
    rt: ctx.rt,
    principal: caller.principal,
    meta: { sessionId: mcpSessionId(session, caller), token: caller.token },
    baseUrl: base,
  });
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    // JSON unless the client asked for progress: then server-sent events, progress before the result.
    // (An API Gateway HTTP API hands the client the whole response at the end either way.)
    enableJsonResponse: !(parsed.wantsProgress && acceptsEventStream(ctx)),
    maxRequestBodySize: limit,
  });
  try {
    await server.connect(transport);
    const response = await transport.handleRequest(toRequest(ctx.event, `${base}${MCP_PATH}`, body));
    const extra: Record<string, string> = response.ok && issued ? { 'mcp-session-id': issued } : {};
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

/**
 * RFC 9728: `resource` is the identifier the metadata URL was built from. Warden adds (RFC 9728
 * §2 allows extensions) the public client `warden login` signs in with and its scopes, so the CLI
 * needs nothing but the gateway's URL (docs/cli.md#signing-in).
 */
function protectedResourceMetadata(ctx: Ctx, resourcePath: string): HttpResult {
  const base = baseUrl(ctx.event, ctx.rt);
  const { cli } = mcpSettings();
  return json(
    200,
    {
      resource: `${base}${resourcePath}`,
      authorization_servers: [ctx.rt.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: mcpSettings().scopes,
      resource_name: 'Warden',
      ...(cli
        ? {
            warden_cli_client_id: cli.clientId,
            ...(cli.scope ? { warden_cli_scope: cli.scope } : {}),
            ...(cli.redirectUri ? { warden_cli_redirect_uri: cli.redirectUri } : {}),
          }
        : {}),
    },
    { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' },
  );
}

/**
 * The challenge of a 401: the metadata document of the resource that was called (RFC 9728 §3.3: a
 * client must find there exactly the URL it called) — `/mcp`'s own for MCP, the origin's for the
 * REST API — and the scopes to ask for (MCP authorization spec 2025-11-25).
 */
export function authChallenge(
  event: APIGatewayProxyEventV2,
  rt: Runtime,
  routePath: string,
): { resourceMetadata: string; scope: string } {
  const suffix = routePath === MCP_PATH ? MCP_PATH : '';
  return {
    resourceMetadata: `${baseUrl(event, rt)}${METADATA_PATH}${suffix}`,
    scope: mcpSettings().scopes.join(' '),
  };
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
