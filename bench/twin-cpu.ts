/**
 * CPU time per governed read on the local twin (the whole twin runs in this process: gateway,
 * DynamoDB, Data API, PGlite), with 16 concurrent clients in a child process. `npx tsx bench/twin-cpu.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { devToken } from '../bin/cli-client.js';
import { startLocalTwin } from '../lib/local/twin.js';
import { clientsProcess } from './clients.js';

const STATEMENT = 'SELECT id, name, email FROM customers WHERE id = 42';
const clients = Number(process.env.CLIENTS ?? 16);
const total = Number(process.env.N ?? 800);
const dataDir = mkdtempSync(join(tmpdir(), 'warden-cpu-'));
const twin = await startLocalTwin({
  port: 0,
  dataDir,
  // DISK=1: the twin as `npm start` runs it, state on disk (dynalite on classic-level, PGlite in dataDir).
  ephemeral: process.env.DISK !== '1',
  customers: 500,
  upstreamMcp: false,
});
const token = await devToken(twin.url, 'alice');
// The clients run in a child process (bench/clients.ts): the CPU and the profile are the twin's.
const load = clientsProcess({ url: twin.url, token, sql: STATEMENT });
const run = (n: number) => load.run({ clients, perClient: Math.ceil(n / clients) });
await run(200);
const session = process.env.PROF ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(total);
const wall = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
if (session) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(process.env.PROF!, JSON.stringify(profile));
}
console.log(
  JSON.stringify({
    clients,
    requests: total,
    'reads/s': Math.round((total * 1000) / wall),
    'cpu ms/req': +((cpu.user + cpu.system) / 1000 / total).toFixed(2),
    'user ms/req': +(cpu.user / 1000 / total).toFixed(2),
    'sys ms/req': +(cpu.system / 1000 / total).toFixed(2),
    load: loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
  }),
);
load.close();
await twin.close();
rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
