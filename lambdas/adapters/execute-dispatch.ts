/**
 * ExecutionDispatch over Lambda Invoke: the API function runs allowed writes and allowed AWS calls
 * in the execute function (EXECUTE_FUNCTION_NAME), synchronously, and returns its answer. The SDK
 * is loaded on the first write, off the read path's cold start. One attempt: a retried invocation
 * would only be refused (a request is taken once), and the caller must then be told the outcome is
 * unknown, which core does (requests.ts runInExecuteFunction).
 */
import type { DirectAnswer, DirectExecution } from '../core/direct-execution.js';
import type { ExecutionDispatch } from '../core/requests.js';
import { requestPathClient } from './sdk-client.js';

export interface LambdaDispatchOptions {
  readonly functionName: string;
  /** The local twin's Lambda endpoint (WARDEN_EXECUTE_ENDPOINT_URL); AWS's own when absent. */
  readonly endpoint?: string;
}

function isAnswer(value: unknown): value is DirectAnswer {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { ok?: unknown; record?: unknown; error?: { statusCode?: unknown; code?: unknown } };
  if (v.ok === true) return typeof v.record === 'object' && v.record !== null;
  return v.ok === false && typeof v.error?.statusCode === 'number' && typeof v.error.code === 'string';
}

export function lambdaDispatch(options: LambdaDispatchOptions): ExecutionDispatch {
  let loaded: Promise<{ send: (payload: Uint8Array) => Promise<{ payload?: Uint8Array; error?: string }> }>;
  const load = () =>
    (loaded ??= import('@aws-sdk/client-lambda').then(({ LambdaClient, InvokeCommand }) => {
      // One command class (Invoke), no per-command middleware, no per-call options: its resolved
      // middleware is cached.
      const client = requestPathClient(
        new LambdaClient({
          maxAttempts: 1,
          cacheMiddleware: true,
          ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        }),
      );
      return {
        send: async (payload: Uint8Array) => {
          const out = await client.send(
            new InvokeCommand({
              FunctionName: options.functionName,
              InvocationType: 'RequestResponse',
              Payload: payload,
            }),
          );
          return {
            ...(out.Payload ? { payload: out.Payload } : {}),
            ...(out.FunctionError ? { error: out.FunctionError } : {}),
          };
        },
      };
    }));
  return {
    async run(request: DirectExecution): Promise<DirectAnswer> {
      const { send } = await load();
      const out = await send(new TextEncoder().encode(JSON.stringify({ mode: 'direct', ...request })));
      // The function's own error text may quote the statement: only its kind is kept.
      if (out.error) throw new Error(`the execute function failed (${out.error})`);
      const answer: unknown = JSON.parse(new TextDecoder().decode(out.payload ?? new Uint8Array()));
      if (!isAnswer(answer)) throw new Error('the execute function answered something that is not an answer');
      return answer;
    },
  };
}
