/**
 * The twin's upstream MCP server: the MCP project's own reference server
 * (`@modelcontextprotocol/server-everything`) over streamable HTTP on a loopback port, hosted in
 * the twin's process (its own launcher listens on every interface), behind Warden as the
 * `everything` target.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { WardenConfigInput } from '../../lambdas/core/config.js';
import { keepAliveWithMargin } from './listen.js';

export interface UpstreamProcess {
  readonly url: string;
  close(): Promise<void>;
}

export type McpTargetInput = Extract<WardenConfigInput['targets'][string], { kind: 'mcp' }>;

/** The `everything` demo target: its read-only tools allowed, the rest by approval (demo-mcp.cedar). */
export function everythingTarget(url: string): McpTargetInput {
  return {
    kind: 'mcp',
    description: 'The MCP reference server (server-everything) on the local twin, behind Warden',
    url,
    auth: { type: 'none' },
    tools: {
      // It returns the server process's environment: never useful to an agent, and a leak if it were.
      'get-env': { hidden: true },
    },
    timeoutMs: 10_000,
    listCacheSeconds: 60,
    masking: { rules: [] },
    approvals: {
      windowSeconds: 3600,
      requiredApprovals: 1,
      approverGroups: ['dba'],
      emails: ['dba-oncall@example.com'],
      slackChannel: '#warden-approvals',
    },
  };
}

/** A hosted MCP server factory: a fresh server per session, with its clean-up. */
export type McpServerFactory = () => {
  server: { connect(t: StreamableHTTPServerTransport): Promise<void>; close(): Promise<void> };
  cleanup?: (sessionId?: string) => void;
};

/**
 * Hosts an MCP server factory over streamable HTTP (sessions, as the SDK's own examples do) on
 * loopback, port 0 unless given.
 */
export async function hostMcpServer(
  factory: McpServerFactory,
  options: {
    host?: string;
    port?: number;
    /** Refuses a request (401) unless it returns true: an upstream that wants credentials. */
    authorize?: (headers: NodeJS.Dict<string | string[]>) => boolean;
  } = {},
): Promise<UpstreamProcess> {
  const host = options.host ?? '127.0.0.1';
  const sessions = new Map<
    string,
    { transport: StreamableHTTPServerTransport; close: () => Promise<void> }
  >();
  const http = createHttpServer((req, res) => {
    void (async () => {
      if ((req.url ?? '').split('?')[0] !== '/mcp') {
        res.writeHead(404).end();
        return;
      }
      if (options.authorize && !options.authorize(req.headers)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
        return;
      }
      const sid = req.headers['mcp-session-id'];
      const existing = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (existing) {
        await existing.transport.handleRequest(req, res);
        return;
      }
      if (req.method !== 'POST' || sid !== undefined) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }),
        );
        return;
      }
      const { server, cleanup } = factory();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, {
            transport,
            close: async () => {
              cleanup?.(id);
              await server.close();
            },
          });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      await transport.handleRequest(req, res);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  keepAliveWithMargin(http);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/mcp`,
    async close() {
      for (const s of sessions.values()) await s.close().catch(() => undefined);
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** server-everything, in this process, on loopback. */
export async function startEverythingServer(options: { host?: string } = {}): Promise<UpstreamProcess> {
  // The package has no exports map; its server factory is the module its own transports use.
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@modelcontextprotocol/server-everything/package.json');
  const mod = (await import(pathToFileURL(join(dirname(pkg), 'dist', 'server', 'index.js')).href)) as {
    createServer: McpServerFactory;
  };
  return hostMcpServer(mod.createServer, options);
}
