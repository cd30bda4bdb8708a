/**
 * The throughput benches' load generator, run as a child process (`clientsProcess`), so the
 * clients' HTTP work (node:http, JSON) is not charged to the twin's process, as with any real client.
 * Each `run` sends `clients × perClient` governed statements and answers the sorted latencies.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { governedClient } from './stats.js';

export interface ClientsRun {
  readonly clients: number;
  readonly perClient: number;
}
interface Job extends ClientsRun {
  readonly url: string;
  readonly token: string;
  readonly sql: string;
}
type Answer = { latencies: number[]; seconds: number } | { error: string };

export interface ClientsProcess {
  run(job: ClientsRun): Promise<{ latencies: number[]; seconds: number }>;
  close(): void;
}

/** Starts the child; `run` jobs one at a time. */
export function clientsProcess(target: { url: string; token: string; sql: string }): ClientsProcess {
  // The parent's loader flags (tsx) are kept; bench/run.ts's `--input-type` / `-e` are not.
  const execArgv: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i];
    if (['-e', '--eval', '-p', '--print', '--input-type'].includes(a)) i += 1;
    else if (!a.startsWith('--input-type=')) execArgv.push(a);
  }
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], { stdio: 'inherit', execArgv });
  return {
    run: (job) =>
      new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`bench clients exited (${code})`));
        child.once('exit', onExit);
        child.once('message', (answer: Answer) => {
          child.off('exit', onExit);
          if ('error' in answer) reject(new Error(answer.error));
          else resolve(answer);
        });
        child.send({ ...target, ...job } satisfies Job);
      }),
    close: () => child.kill(),
  };
}

async function runJob(job: Job): Promise<Answer> {
  const send = governedClient(job.url, job.token);
  const one = async (): Promise<number> => {
    const t = performance.now();
    await send(job.sql);
    return performance.now() - t;
  };
  const latencies: number[] = [];
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: job.clients }, async () => {
        for (let i = 0; i < job.perClient; i++) latencies.push(await one());
      }),
    );
  } catch (error) {
    return { error: String(error) };
  }
  const seconds = (performance.now() - start) / 1000;
  return { latencies: latencies.sort((a, b) => a - b), seconds };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.send) {
  process.on('message', (job: Job) => {
    void runJob(job).then((answer) => process.send!(answer));
  });
  process.on('disconnect', () => process.exit(0));
}
