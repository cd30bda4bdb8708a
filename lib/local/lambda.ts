/**
 * The local twin's Lambda endpoint: answers Invoke (`POST /2015-03-31/functions/{name}/invocations`,
 * RequestResponse) for the functions it is given, with Lambda's wire shape: 200 and the handler's
 * JSON, or 200 with `X-Amz-Function-Error: Unhandled` and `{ errorType, errorMessage }` when the
 * handler throws; 404 ResourceNotFoundException for any other function. The API function reaches
 * the execute function through it (lambdas/adapters/execute-dispatch.ts), as it does on AWS.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback } from './listen.js';

export type LocalFunction = (event: unknown, functionName: string) => Promise<unknown>;

export interface LocalLambda {
  readonly url: string;
  /** Every invocation, in order: which function, and whether it answered or threw. */
  readonly invocations: ReadonlyArray<{ at: string; functionName: string; ok: boolean }>;
  close(): Promise<void>;
}

const INVOKE = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export async function startLocalLambda(options: {
  readonly host?: string;
  /** Function name → its handler. */
  readonly functions: Readonly<Record<string, LocalFunction>>;
}): Promise<LocalLambda> {
  const invocations: { at: string; functionName: string; ok: boolean }[] = [];
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const match = INVOKE.exec((req.url ?? '').split('?')[0]);
        if (req.method !== 'POST' || !match) {
          send(
            res,
            404,
            { Type: 'User', message: 'not a Lambda Invoke call' },
            { 'x-amzn-errortype': 'ResourceNotFoundException' },
          );
          return;
        }
        const name = decodeURIComponent(match[1]).split(':').pop()!;
        if (
          req.headers['x-amz-invocation-type'] &&
          req.headers['x-amz-invocation-type'] !== 'RequestResponse'
        ) {
          send(
            res,
            400,
            { Type: 'User', message: 'the local Lambda answers RequestResponse only' },
            { 'x-amzn-errortype': 'InvalidParameterValueException' },
          );
          return;
        }
        const fn = Object.hasOwn(options.functions, name) ? options.functions[name] : undefined;
        if (!fn) {
          send(
            res,
            404,
            { Type: 'User', message: `Function not found: ${name}` },
            { 'x-amzn-errortype': 'ResourceNotFoundException' },
          );
          return;
        }
        let event: unknown;
        try {
          const text = Buffer.concat(chunks).toString('utf8');
          event = text.length > 0 ? JSON.parse(text) : {};
        } catch {
          send(
            res,
            400,
            { Type: 'User', message: 'Could not parse request body into json' },
            { 'x-amzn-errortype': 'InvalidRequestContentException' },
          );
          return;
        }
        try {
          const out = await fn(event, name);
          invocations.push({ at: new Date().toISOString(), functionName: name, ok: true });
          send(res, 200, out === undefined ? null : out, { 'x-amz-executed-version': '$LATEST' });
        } catch (error) {
          invocations.push({ at: new Date().toISOString(), functionName: name, ok: false });
          const err = error instanceof Error ? error : new Error(String(error));
          send(
            res,
            200,
            { errorType: err.name || 'Error', errorMessage: err.message },
            {
              'x-amz-function-error': 'Unhandled',
              'x-amz-executed-version': '$LATEST',
            },
          );
        }
      })();
    });
  });
  const url = await listenLoopback(server, options.host);
  return { url, invocations, close: () => closeServer(server) };
}
