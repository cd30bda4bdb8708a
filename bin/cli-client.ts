/** What the CLI needs to talk to a running gateway: its URL, a token, and JSON over fetch. */
export interface CliContext {
  readonly url: string;
  readonly token?: string;
  readonly session?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export function gatewayUrl(flag?: string): string {
  return (flag ?? process.env.WARDEN_URL ?? DEFAULT_URL).replace(/\/$/, '');
}

/** Local twin only: a real access token for a dev user (or the agent client) from its IdP. */
export async function devToken(url: string, who: string): Promise<string> {
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
    throw new Error(`cannot reach the local twin at ${url} (is \`npm start\` running?): ${String(error)}`);
  }
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    error_description?: string;
    error?: string;
  };
  if (!res.ok || !body.access_token) {
    throw new Error(
      `token request failed (${res.status}): ${body.error_description ?? body.error ?? 'no token'}`,
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
  const res = await fetch(`${ctx.url}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}
