/** `npm start`: the local twin in the foreground, with a banner that gets a newcomer to rows. */
import { DEFAULT_URL } from '../../bin/cli-client.js';
import { startLocalTwin, type Twin } from './twin.js';

export function banner(twin: Twin): string {
  // The CLI defaults to 127.0.0.1:8080; on any other address the pasted commands must say where.
  const url = twin.url === DEFAULT_URL ? '' : ` --url ${twin.url}`;
  const curl =
    `curl -s ${twin.url}/v1/targets/demo/sql \\\n` +
    `  -H "Authorization: Bearer $(npx warden token alice${url})" \\\n` +
    `  -H 'Content-Type: application/json' \\\n` +
    `  -d '{"sql": "SELECT id, name, email FROM customers ORDER BY id LIMIT 3"}'`;
  return [
    '',
    '  Warden local twin is running',
    '',
    `  Gateway          ${twin.url}`,
    `  Health           ${twin.url}/healthz`,
    `  OIDC issuer      ${twin.issuer}  (users: alice engineers, bob dba, carol support, dave auditors; agent: agent-demo)`,
    `  State            ${twin.dataDir}`,
    '',
    `  Get a token:     npx warden token alice${url}`,
    '  Try it:',
    '',
    curl
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n'),
    '',
    `  Or:              npx warden sql${url} demo "SELECT count(*) FROM orders"`,
    '  Stop with Ctrl-C.',
    '',
  ].join('\n');
}

export interface DevOptions {
  /** Start from a clean state: the twin's state under the data directory is deleted first. */
  readonly reset?: boolean;
}

export async function runDev(options: DevOptions = {}): Promise<void> {
  // Readiness counts from the process's start (performance.now() is relative to it), so the
  // figure includes loading the code, not only starting the services.
  const twin = await startLocalTwin({ reset: options.reset, log: (l) => console.log(`  ${l}`) });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('\n  stopping…');
    twin.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // Before the banner: whoever waits for "ready" may stop the twin as soon as it reads it.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(banner(twin));
  console.log(`  ready in ${(performance.now() / 1000).toFixed(1)} s`);
}
