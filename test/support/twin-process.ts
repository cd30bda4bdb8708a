/**
 * A local twin in a child process, as `npm start` runs it (one twin per process: the handlers read
 * their environment once at cold start), for tests that stop and start it. Options come as JSON in
 * WARDEN_TEST_TWIN ({ port, dataDir, approvalWindowSeconds, customers, reset }); it prints
 * `ready <url>` and closes the twin on SIGTERM like `npm start` does.
 *
 *   tsx test/support/twin-process.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startLocalTwin, REPO_ROOT } from '../../lib/local/twin.js';

export interface TwinProcessOptions {
  readonly port: number;
  readonly dataDir: string;
  readonly approvalWindowSeconds?: number;
  readonly customers?: number;
  readonly reset?: boolean;
}

export interface TwinProcess {
  readonly url: string;
  readonly output: () => string;
  /** SIGTERM, then waits for the process to exit (the twin closes its stores first). */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash: nothing is closed or flushed), then waits for the process to be gone. */
  kill(): Promise<void>;
}

/**
 * One API call to a twin with a bearer token: the status and the parsed body (undefined when the
 * answer has none).
 */
export async function twinApi(
  url: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Starts the twin in a child process and waits until it is ready. */
export async function startTwinProcess(options: TwinProcessOptions): Promise<TwinProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    cwd: REPO_ROOT,
    env: { ...process.env, WARDEN_TEST_TWIN: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 150_000;
  let match: RegExpExecArray | null;
  while (!(match = /^ready (http:\/\/\S+)$/m.exec(output))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the twin did not come up:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: match[1],
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

if (process.env.WARDEN_TEST_TWIN && process.argv[1] === fileURLToPath(import.meta.url)) {
  const o = JSON.parse(process.env.WARDEN_TEST_TWIN) as TwinProcessOptions;
  const twin = await startLocalTwin({
    port: o.port,
    dataDir: o.dataDir,
    customers: o.customers ?? 200,
    upstreamMcp: false,
    auditExportIntervalMs: 3_600_000,
    ...(o.approvalWindowSeconds ? { approvalWindowSeconds: o.approvalWindowSeconds } : {}),
    ...(o.reset ? { reset: true } : {}),
    log: (l) => console.log(l),
  });
  console.log(`ready ${twin.url}`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    twin.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A test that dies must not leave the twin running.
  setTimeout(() => stop(), 600_000).unref();
}
