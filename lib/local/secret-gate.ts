/**
 * The twin's stand-in for the API function's IAM policy on the Data API: an endpoint in front of
 * the Data API twin that passes on calls naming one of the allowed secrets (the readers') and
 * answers any other secret as the Data API answers a secret the caller may not read (403
 * ForbiddenException, "access to it is denied"). The twin points the API function's Data API
 * client here (WARDEN_API_ENDPOINT_URL_RDS_DATA), so its runtime cannot reach the write
 * credentials, while the execute function uses the Data API twin directly.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback } from './listen.js';

export interface SecretGate {
  readonly url: string;
  /** Secret ARNs refused so far, in order (tests). */
  readonly refused: readonly string[];
  close(): Promise<void>;
}

export async function startSecretGate(options: {
  readonly host?: string;
  /** The Data API twin (or the fault layer in front of it). */
  readonly upstream: string;
  readonly allowedSecrets: readonly string[];
}): Promise<SecretGate> {
  const allowed = new Set(options.allowedSecrets);
  const refused: string[] = [];
  const upstream = new URL(options.upstream);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let secretArn = '';
      try {
        const parsed = JSON.parse(body.toString('utf8') || '{}') as { secretArn?: unknown };
        secretArn = typeof parsed.secretArn === 'string' ? parsed.secretArn : '';
      } catch {
        // Not JSON: the Data API twin answers that itself.
      }
      if (secretArn && !allowed.has(secretArn)) {
        refused.push(secretArn);
        res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'ForbiddenException' });
        res.end(
          JSON.stringify({
            message: `Error fetching secret ${secretArn}: the secret does not exist or access to it is denied`,
          }),
        );
        return;
      }
      const headers = { ...req.headers, host: upstream.host };
      const out = httpRequest(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          path: `${upstream.pathname.replace(/\/$/, '')}${req.url ?? '/'}`,
          method: req.method,
          headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'the Data API twin is unreachable' }));
      });
      out.end(body);
    });
  });
  const url = await listenLoopback(server, options.host);
  return { url, refused, close: () => closeServer(server) };
}
