/**
 * A stand-in for lib/local/dynamo-thread.ts that fails (test/integration/dynamo-worker.test.ts):
 * `?at=load` throws while the thread loads; `?at=running` says it is ready, then throws.
 */
import { parentPort } from 'node:worker_threads';

const at = new URL(import.meta.url).searchParams.get('at');
if (at === 'load') throw new Error('the stand-in thread failed while loading');
parentPort?.postMessage({ type: 'ready', endpoint: 'http://127.0.0.1:9' });
setTimeout(() => {
  throw new Error('the stand-in thread crashed while running');
}, 20);
