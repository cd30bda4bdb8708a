/**
 * Upstream MCP servers over streamable HTTP, with the MCP TypeScript SDK's own client. One client
 * (one MCP session) per target per container, opened on first use; a call is sent once and never
 * retried. Credentials come from a secret (Secrets Manager in AWS; `env:NAME` on the twin) and are
 * sent only to the target's own URL.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamToolDefinition } from '../core/classify/mcp.js';
import type { McpTargetConfig } from '../core/config.js';
import { UpstreamError, type UpstreamCallResult, type UpstreamMcp } from '../core/mcp-upstream.js';

export interface UpstreamMcpOptions {
  readonly targets: Readonly<Record<string, McpTargetConfig>>;
  readonly env?: NodeJS.ProcessEnv;
  readonly secrets?: SecretsManagerClient;
  /** Milliseconds to connect and list tools. @default 5000 */
  readonly listTimeoutMs?: number;
}

const CLIENT_INFO = { name: 'warden-gateway', version: '1.0.0' };

let sharedSecrets: SecretsManagerClient | undefined;

export function createUpstreamMcp(options: UpstreamMcpOptions): UpstreamMcp {
  const env = options.env ?? process.env;
  const clients = new Map<string, Promise<Client>>();
  const secretCache = new Map<string, Promise<string>>();
  const tokens = new Map<string, { token: string; expiresAt: number }>();
  const listTimeoutMs = options.listTimeoutMs ?? 5000;

  const target = (name: string): McpTargetConfig => {
    const t = Object.hasOwn(options.targets, name) ? options.targets[name] : undefined;
    if (!t) throw new UpstreamError(404, 'not_found', `unknown MCP target "${name}"`);
    return t;
  };

  const secret = (ref: string): Promise<string> => {
    let hit = secretCache.get(ref);
    if (!hit) {
      hit = readSecret(ref, env, options.secrets).catch((error: unknown) => {
        secretCache.delete(ref);
        throw error;
      });
      secretCache.set(ref, hit);
    }
    return hit;
  };

  const authHeaders = async (name: string, t: McpTargetConfig): Promise<Record<string, string>> => {
    const auth = t.auth;
    if (auth.type === 'none') return {};
    if (auth.type === 'header') return { [auth.header]: await secret(auth.secret) };
    const cached = tokens.get(name);
    if (cached && cached.expiresAt > Date.now() + 30_000) return { authorization: `Bearer ${cached.token}` };
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: auth.clientId });
    body.set('client_secret', await secret(auth.secret));
    if (auth.scope) body.set('scope', auth.scope);
    const res = await fetch(auth.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(listTimeoutMs),
    });
    const json = (await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown };
    if (!res.ok || typeof json.access_token !== 'string') {
      throw new UpstreamError(
        502,
        'upstream_auth_failed',
        `the token endpoint of target "${name}" refused Warden's client credentials (HTTP ${res.status})`,
      );
    }
    const ttl = typeof json.expires_in === 'number' ? json.expires_in : 300;
    tokens.set(name, { token: json.access_token, expiresAt: Date.now() + ttl * 1000 });
    return { authorization: `Bearer ${json.access_token}` };
  };

  const connect = (name: string): Promise<Client> => {
    let hit = clients.get(name);
    if (!hit) {
      const t = target(name);
      hit = (async () => {
        const headers = await authHeaders(name, t);
        const client = new Client(CLIENT_INFO, { capabilities: {} });
        const transport = new StreamableHTTPClientTransport(new URL(t.url), { requestInit: { headers } });
        await client.connect(transport, { timeout: listTimeoutMs });
        client.onclose = () => clients.delete(name);
        return client;
      })();
      hit.catch(() => clients.delete(name));
      clients.set(name, hit);
    }
    return hit;
  };

  const drop = async (name: string) => {
    const hit = clients.get(name);
    clients.delete(name);
    if (hit) await hit.then((c) => c.close()).catch(() => undefined);
  };

  return {
    async listTools(name) {
      const tools: UpstreamToolDefinition[] = [];
      const list = async () => {
        const client = await connect(name);
        let cursor: string | undefined;
        tools.length = 0;
        for (let page = 0; page < 50; page++) {
          const out = await client.listTools(cursor ? { cursor } : {}, { timeout: listTimeoutMs });
          for (const tool of out.tools) tools.push(toDefinition(tool));
          cursor = out.nextCursor;
          if (!cursor) break;
        }
      };
      try {
        await list();
      } catch {
        // Listing is safe to repeat: a stale session (the upstream restarted) gets one fresh connection.
        await drop(name);
        try {
          await list();
        } catch (cause) {
          throw asUpstreamError(name, cause, 'list its tools');
        }
      }
      return tools;
    },

    async callTool(name, tool, args, { timeoutMs }): Promise<UpstreamCallResult> {
      let client: Client;
      try {
        client = await connect(name);
      } catch (cause) {
        throw asUpstreamError(name, cause, 'connect', true);
      }
      let out: Awaited<ReturnType<Client['callTool']>>;
      try {
        out = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: timeoutMs });
      } catch (cause) {
        // Never retried: the call may have run upstream.
        if (isTimeout(cause)) {
          await drop(name);
          throw new UpstreamError(
            504,
            'upstream_timeout',
            `the upstream tool ${tool} of target "${name}" did not answer within ${timeoutMs} ms; it may or may not have run, and Warden did not retry it`,
            cause,
          );
        }
        throw asUpstreamError(name, cause, `run ${tool}`);
      }
      if (!Array.isArray(out.content)) {
        throw new UpstreamError(
          502,
          'upstream_malformed',
          `the upstream tool ${tool} of target "${name}" answered without a content list`,
        );
      }
      return {
        content: out.content as Record<string, unknown>[],
        ...(out.structuredContent && typeof out.structuredContent === 'object'
          ? { structuredContent: out.structuredContent as Record<string, unknown> }
          : {}),
        ...(out.isError === true ? { isError: true } : {}),
      };
    },
  };
}

function toDefinition(tool: Record<string, unknown>): UpstreamToolDefinition {
  return {
    name: String(tool.name),
    ...(typeof tool.title === 'string' ? { title: tool.title } : {}),
    ...(typeof tool.description === 'string' ? { description: tool.description } : {}),
    inputSchema: (tool.inputSchema as Record<string, unknown>) ?? { type: 'object' },
    ...(tool.outputSchema ? { outputSchema: tool.outputSchema as Record<string, unknown> } : {}),
    ...(tool.annotations ? { annotations: tool.annotations as Record<string, unknown> } : {}),
  };
}

function isTimeout(error: unknown): boolean {
  return error instanceof McpError && error.code === -32001;
}

function asUpstreamError(target: string, cause: unknown, what: string, nothingSent = false): UpstreamError {
  if (cause instanceof UpstreamError) return cause;
  if (cause instanceof McpError) {
    // The upstream's own JSON-RPC error (invalid arguments, unknown tool): the model can act on it.
    return new UpstreamError(
      502,
      'upstream_error',
      `the upstream MCP server of target "${target}" could not ${what}: ${cause.message.slice(0, 500)}`,
      cause,
    );
  }
  if (isTimeout(cause)) {
    return new UpstreamError(
      504,
      'upstream_timeout',
      `the upstream MCP server of target "${target}" did not answer in time to ${what}`,
      cause,
    );
  }
  return new UpstreamError(
    502,
    'upstream_unavailable',
    `the upstream MCP server of target "${target}" could not be reached to ${what}${nothingSent ? '; nothing was sent' : ''}`,
    cause,
  );
}

async function readSecret(
  ref: string,
  env: NodeJS.ProcessEnv,
  client?: SecretsManagerClient,
): Promise<string> {
  if (ref.startsWith('env:')) {
    const value = env[ref.slice(4)];
    if (!value) throw new UpstreamError(502, 'upstream_secret_missing', `the secret ${ref} is not set`);
    return value;
  }
  sharedSecrets ??= client ?? new SecretsManagerClient({});
  const out = await (client ?? sharedSecrets).send(new GetSecretValueCommand({ SecretId: ref }));
  if (!out.SecretString)
    throw new UpstreamError(
      502,
      'upstream_secret_missing',
      'the upstream credential secret has no string value',
    );
  return out.SecretString;
}
