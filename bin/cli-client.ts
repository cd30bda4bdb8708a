/**
 * What the CLI needs to talk to a running gateway: its URL, a token, and JSON over fetch; and the
 * errors it ends with, each with its documented exit code (docs/cli.md).
 */
export interface CliContext {
  readonly url: string;
  readonly token?: string;
  readonly session?: string;
  /** Where the token came from (for `warden whoami`). */
  readonly source?: 'flag' | 'env' | 'login' | 'dev-user';
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Exit codes, documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  /** The gateway refused or failed the request (4xx/5xx), or a check failed. */
  refused: 1,
  /** A bad command line: unknown command or flag, missing or invalid argument. */
  usage: 2,
  /** The request was recorded and waits for approval (202); nothing ran yet. */
  pending: 3,
  /** The gateway cannot be reached, or there are no credentials for it. */
  unreachable: 4,
} as const;

/** An error the CLI ends with: its message goes to stderr, its code is the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.refused,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

export function gatewayUrl(flag?: string): string {
  const raw = (flag ?? process.env.WARDEN_URL ?? DEFAULT_URL).replace(/\/$/, '');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url: not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url: must be http(s), got ${url.protocol}`);
  }
  return raw;
}

/** True for the local twin's addresses: dev-user shortcuts and the twin's client secrets stay there. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Refuses a dev-user shortcut aimed at anything but a loopback twin, so its secrets never leave. */
export function requireLoopback(url: string, what: string): void {
  if (!isLoopback(url)) {
    throw new UsageError(
      `${what} works only against a local twin (127.0.0.1, localhost, ::1); ${url} is not one. ` +
        `Against a real gateway pass a token from its IdP with --token or WARDEN_TOKEN.`,
    );
  }
}

/** Local twin only: a real access token for a dev user (or the agent client) from its IdP. */
export async function devToken(url: string, who: string): Promise<string> {
  requireLoopback(url, 'a dev-user token');
  const tokenEndpoint = `${url}/oidc/token`;
  const agent = who === 'agent-demo';
  const form = new URLSearchParams(
    agent
      ? { grant_type: 'client_credentials', resource: 'urn:warden:resource:warden', scope: 'warden' }
      : {
          grant_type: 'urn:warden:params:oauth:grant-type:dev-user',
          username: who,
          resource: 'urn:warden:resource:warden',
          scope: 'warden',
        },
  );
  const [id, secret] = agent ? ['agent-demo', 'agent-demo-secret'] : ['warden-cli', 'warden-cli-secret'];
  let res: Response;
  try {
    res = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
      },
      body: form,
    });
  } catch (error) {
    throw new CliError(
      `cannot reach the local twin at ${url} (is \`npm start\` running?): ${String(error)}`,
      EXIT.unreachable,
    );
  }
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    error_description?: string;
    error?: string;
  };
  if (!res.ok || !body.access_token) {
    throw new CliError(
      `token request for "${who}" failed (${res.status}): ${body.error_description ?? body.error ?? 'no token'}`,
    );
  }
  return body.access_token;
}

export async function call(
  ctx: CliContext,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (ctx.token) headers.authorization = `Bearer ${ctx.token}`;
  if (ctx.session) headers['x-warden-session'] = ctx.session;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${ctx.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new CliError(
      `cannot reach the gateway at ${ctx.url}: ${error instanceof Error ? (error.cause ?? error.message) : String(error)}`,
      EXIT.unreachable,
    );
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  if (res.status === 401 && ctx.source === 'login') {
    // The token `warden login` stored (refreshed if it had expired) was refused: revoked, signed
    // by keys the gateway no longer trusts, or for a gateway configured otherwise since.
    const reason = errorMessage(parsed);
    throw new CliError(
      `the gateway at ${ctx.url} refused your stored sign-in (401${reason ? `: ${reason}` : ''}): ` +
        `run \`warden login --url ${ctx.url}\` to sign in again`,
      EXIT.unreachable,
    );
  }
  return { status: res.status, body: parsed };
}

function errorMessage(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const e = (body as { error: unknown }).error;
  if (typeof e === 'string') return e;
  const message = (e as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : undefined;
}
