/**
 * The worker thread side of the twin's DynamoDB (lib/local/dynamo-worker.ts starts it): dynalite
 * with its TransactWriteItems layer (startDynalite), listening on its own port, so its CPU runs on
 * another core than the twin's handlers.
 *
 * Store-call observation crosses threads exactly: while the main thread has a listener it sets
 * `state[OBSERVED]` (shared memory, so the flag is seen by the very next request, with no message
 * to race the request); then each call is posted to the main thread and this thread waits, before
 * it goes on to answer the call, until the main thread has passed it to its listeners
 * (`state[ACKED]`). A listener has thus seen every call before that call's response is written.
 * Unobserved, a call costs one shared-memory read.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startDynalite } from './dynamodb.js';
import { ACKED, OBSERVED, type FromThread, type ThreadData, type ToThread } from './dynamo-worker.js';

/** How long a call waits for the main thread's ack before it is answered anyway (a stuck main thread). */
const ACK_TIMEOUT_MS = 10_000;

async function main(port: NonNullable<typeof parentPort>, data: ThreadData): Promise<void> {
  const state = new Int32Array(data.state);
  let seq = 0;
  const post = (message: FromThread) => port.postMessage(message);
  try {
    const dynamo = await startDynalite({
      host: data.host,
      port: data.port,
      ...(data.path ? { path: data.path } : {}),
      observer: {
        observed: () => Atomics.load(state, OBSERVED) === 1,
        onCall(call) {
          const mine = ++seq;
          post({ type: 'call', seq: mine, call: { ...call, tables: [...call.tables] } });
          // Blocks this thread only (the main thread runs on); only while someone observes.
          for (let acked = Atomics.load(state, ACKED); acked < mine; acked = Atomics.load(state, ACKED)) {
            if (Atomics.wait(state, ACKED, acked, ACK_TIMEOUT_MS) === 'timed-out') {
              console.error(
                `warden: the twin's DynamoDB thread got no ack for store call ${mine}; answering it`,
              );
              break;
            }
          }
        },
      },
    });
    port.on('message', (message: ToThread) => {
      if (message.type !== 'close') return;
      // dynalite closes its LevelDB store with the server, which frees the directory's lock.
      dynamo.close().then(
        () => post({ type: 'closed' }),
        (error: unknown) => post({ type: 'failed', message: `closing: ${String(error)}` }),
      );
    });
    post({ type: 'ready', endpoint: dynamo.endpoint });
  } catch (error) {
    const e = error as Error;
    post({ type: 'failed', message: e?.message ?? String(error), ...(e?.stack ? { stack: e.stack } : {}) });
  }
}

if (parentPort && (workerData as { wardenDynamo?: ThreadData } | null)?.wardenDynamo) {
  await main(parentPort, (workerData as { wardenDynamo: ThreadData }).wardenDynamo);
}
