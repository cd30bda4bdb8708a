/**
 * The local twin's DynamoDB in a worker thread: dynalite and its TransactWriteItems layer
 * (startDynalite, lib/local/dynamodb.ts) run in lib/local/dynamo-thread.ts, so the store's CPU
 * (request parsing, conditions, index and LevelDB work) runs on another core than the twin's
 * handlers, which share one thread with the API Gateway twin, the IdP and the Data API twin.
 *
 * Same interface and behaviour as startDynalite in this thread: an endpoint, the same on-disk
 * store under `path` (closed with the thread, so a restart reopens it), and `onCall` listeners
 * that have seen every call before its response reaches the client (see dynamo-thread.ts).
 *
 * The thread's module is loaded next to this one: the TypeScript source with tsx's loader
 * registered in the thread (under tsx, vitest or bin/warden.js's dev mode, none of which a worker
 * inherits by itself), or the built `dynamo-thread.js` entry of dist/cli (scripts/build-cli.mjs).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DynaliteOptions, DynamoCall, LocalDynamo } from './dynamodb.js';

/** Indexes into the shared Int32Array of ThreadData.state. */
export const OBSERVED = 0;
export const ACKED = 1;

export interface ThreadData {
  readonly host: string;
  readonly port: number;
  readonly path?: string;
  /** Two Int32: [OBSERVED] 1 while the main thread has listeners, [ACKED] the last call passed to them. */
  readonly state: SharedArrayBuffer;
}

export type FromThread =
  | { readonly type: 'ready'; readonly endpoint: string }
  | { readonly type: 'failed'; readonly message: string; readonly stack?: string }
  | { readonly type: 'call'; readonly seq: number; readonly call: DynamoCall }
  | { readonly type: 'closed' };

export type ToThread = { readonly type: 'close' };

export interface DynamoWorkerOptions extends Omit<DynaliteOptions, 'observer'> {
  /**
   * Called once if the thread ends on its own after it started (an uncaught error in dynalite),
   * not when `close()` ends it. Requests in flight fail with a reset connection.
   */
  readonly onExit?: (error: Error) => void;
  /** The thread's module (a file: URL) in place of dynamo-thread's: tests run one that fails. */
  readonly threadModule?: string;
}

/** How long close() waits for dynalite to close its store before the thread is terminated. */
const CLOSE_TIMEOUT_MS = 10_000;
/** How long the thread may take to say it listens (it loads dynalite, and under tsx compiles it). */
const START_TIMEOUT_MS = 60_000;

/** The thread's first module (a data: URL, so nothing but the thread's own module has to ship). */
const BOOT = [
  "import { workerData } from 'node:worker_threads';",
  'const { tsx, thread } = workerData.wardenBoot;',
  'if (tsx) (await import(tsx)).register();',
  'await import(thread);',
].join('\n');

function threadModule(override?: string): { thread: string; tsx?: string } {
  const source = new URL(import.meta.url).pathname.endsWith('.ts');
  const thread =
    override ?? new URL(source ? './dynamo-thread.ts' : './dynamo-thread.js', import.meta.url).href;
  if (!new URL(thread).pathname.endsWith('.ts')) return { thread };
  // tsx/esm/api's ESM build (its CommonJS build cannot register from a worker's first module).
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('tsx/package.json');
  type Exports = { exports?: Record<string, { import?: { default?: string } }> };
  const api = (JSON.parse(readFileSync(pkg, 'utf8')) as Exports).exports?.['./esm/api']?.import?.default;
  if (!api)
    throw new Error(`tsx at ${dirname(pkg)} has no ESM ./esm/api to load the twin's DynamoDB thread with`);
  return { thread, tsx: pathToFileURL(join(dirname(pkg), api)).href };
}

const describe = (message: string, stack?: string) =>
  Object.assign(new Error(message), stack ? { stack } : {});

export async function startDynamoWorker(options: DynamoWorkerOptions = {}): Promise<LocalDynamo> {
  const { host = '127.0.0.1', port = 0, path, onExit, threadModule: override } = options;
  const state = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  const listeners = new Set<(call: DynamoCall) => void>();
  const threadData: ThreadData = {
    host,
    port,
    ...(path ? { path } : {}),
    state: state.buffer as SharedArrayBuffer,
  };
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(BOOT)}`), {
    workerData: { wardenBoot: threadModule(override), wardenDynamo: threadData },
  });

  let phase: 'starting' | 'running' | 'closing' | 'ended' = 'starting';
  let lastError: Error | undefined;
  let started!: { resolve: (endpoint: string) => void; reject: (error: Error) => void };
  const ready = new Promise<string>((resolve, reject) => (started = { resolve, reject }));
  let closedByThread: (() => void) | undefined;

  worker.on('message', (message: FromThread) => {
    switch (message.type) {
      case 'call':
        try {
          for (const listener of listeners) listener(message.call);
        } finally {
          Atomics.store(state, ACKED, message.seq);
          Atomics.notify(state, ACKED);
        }
        return;
      case 'ready':
        phase = 'running';
        started.resolve(message.endpoint);
        return;
      case 'failed':
        lastError = describe(message.message, message.stack);
        if (phase === 'starting') started.reject(lastError);
        else {
          console.error(`warden: the twin's DynamoDB thread: ${message.message}`);
          closedByThread?.();
        }
        return;
      case 'closed':
        closedByThread?.();
        return;
    }
  });
  worker.on('error', (error) => {
    lastError = error;
  });
  worker.on('exit', (code) => {
    const before = phase;
    phase = 'ended';
    closedByThread?.();
    const error = lastError ?? new Error(`the thread exited with code ${code}`);
    if (before === 'starting') started.reject(error);
    else if (before === 'running') onExit?.(error);
  });

  let endpoint: string;
  try {
    let timer: NodeJS.Timeout | undefined;
    endpoint = await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${START_TIMEOUT_MS} ms`)),
          START_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (error) {
    await worker.terminate();
    const e = error as Error;
    // A module that is not there is named, not the boot module's data: URL that imported it.
    const message = e.message.replace(/ imported from data:\S+/, '');
    throw new Error(`the twin's DynamoDB (dynalite in a worker thread) did not start: ${message}`, {
      cause: e,
    });
  }

  let closing: Promise<void> | undefined;
  return {
    endpoint,
    onCall(listener) {
      listeners.add(listener);
      // Shared memory: the thread sees the flag on the next request, before any message could arrive.
      Atomics.store(state, OBSERVED, 1);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) Atomics.store(state, OBSERVED, 0);
      };
    },
    close: () =>
      (closing ??= (async () => {
        if (phase === 'ended') return;
        phase = 'closing';
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
          closedByThread = () => {
            clearTimeout(timer);
            resolve();
          };
          worker.postMessage({ type: 'close' } satisfies ToThread);
        });
        await worker.terminate();
      })()),
  };
}
