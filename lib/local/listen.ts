/** Loopback listening, keep-alive and closing shared by the twin's HTTP endpoints. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on an ephemeral port of `host` (loopback by default) and answers the base URL. */
export async function listenLoopback(server: Server, host = '127.0.0.1'): Promise<string> {
  keepAliveWithMargin(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return `http://${host}:${port}`;
}

/** Drops open (keep-alive) connections and waits until the server has closed. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

/** What every twin server tells clients (`Keep-Alive: timeout=5`): drop an idle socket after 5 s. */
export const ADVERTISED_KEEP_ALIVE_SECONDS = 5;
/** How long every twin server really keeps an idle connection open. */
export const KEEP_ALIVE_MS = 30_000;

/**
 * Keep-alive with a margin. Node's server closes an idle connection after `keepAliveTimeout` and
 * advertises that same time (`Keep-Alive: timeout=5`), and clients drop the socket at about that
 * time by their own timers (Node's http.Agent at it, undici a second before). When the process is
 * busy, a client's timer fires late and it sends a request on a socket the server is closing in
 * the same instant: ECONNRESET, a request that never reached a handler (and to an SDK client with
 * one attempt, such as the Data API's, a 503). The masking suite's first request after a 4.5 s
 * table scan failed that way on every run. So every twin server advertises 5 s and waits 30 s.
 * Returns the server.
 */
export function keepAliveWithMargin(server: Server): Server {
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersion === '1.0' || /\bclose\b/i.test(String(req.headers.connection ?? ''))) return;
    // With a Connection header of its own, Node adds no Keep-Alive header; handlers may still
    // replace both (an answer that closes the connection).
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('Keep-Alive', `timeout=${ADVERTISED_KEEP_ALIVE_SECONDS}`);
  });
  return server;
}
