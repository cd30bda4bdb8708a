/**
 * A minimal user agent for the dev IdP without a browser (the browser path is test/e2e/cli-login):
 * follows redirects by hand with a cookie jar, fills in the dev sign-in form, confirms a device
 * code, and stops at the first redirect that leaves the IdP (e.g. the CLI's loopback callback),
 * which it then fetches like a browser would.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDevIdp, type DevIdp } from '../../lib/local/oidc.js';

export class IdpAgent {
  private readonly jar = new Map<string, string>();

  constructor(private readonly idpOrigin: string) {}

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  async fetch(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const res = await fetch(url, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: {
        cookie: this.cookieHeader(),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    if (new URL(url).origin === this.idpOrigin) this.keep(res);
    return res;
  }

  /**
   * Follows redirects from `url` while they stay on the IdP, signing in as `user` when the login
   * form appears and submitting any confirmation form; returns the first response off the IdP
   * (fetched), or the IdP's final page.
   */
  async signIn(url: string, user: string): Promise<{ url: string; res: Response; text: string }> {
    let next: { url: string; method?: string; form?: Record<string, string> } = { url };
    for (let hop = 0; hop < 20; hop++) {
      const res = await this.fetch(next.url, next);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const target = new URL(location, next.url).href;
        if (new URL(target).origin !== this.idpOrigin) {
          const off = await fetch(target);
          return { url: target, res: off, text: await off.text() };
        }
        next = { url: target };
        continue;
      }
      const text = await res.text();
      const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(text);
      if (res.status === 200 && form) {
        const action = new URL(
          form[1].replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c))),
          next.url,
        ).href;
        const fields: Record<string, string> = {};
        for (const input of form[2].matchAll(/<input[^>]*>/gi)) {
          const name = /name="([^"]+)"/.exec(input[0])?.[1];
          const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
          if (name) fields[name] = value;
        }
        if ('login' in fields) fields.login = user;
        // oidc-provider's device confirmation page: a "confirm" button, and an "abort" one.
        const confirm =
          /<button[^>]*name="confirm"[^>]*value="([^"]*)"/i.exec(form[2]) ?? /name="confirm"/.exec(form[2]);
        if (confirm) fields.confirm = confirm[1] ?? 'yes';
        delete fields.abort;
        next = { url: action, form: fields };
        continue;
      }
      return { url: next.url, res, text };
    }
    throw new Error(`sign-in did not finish within 20 redirects (last ${next.url})`);
  }
}

/**
 * A stand-in gateway for unit tests: the dev IdP under /oidc and the RFC 9728 metadata Warden
 * serves, naming the CLI's public client (the twin's real one is exercised in test/e2e).
 */
export interface FakeGateway {
  readonly url: string;
  readonly idp: DevIdp;
  metadata: Record<string, unknown>;
  close(): Promise<void>;
}

export async function startFakeGateway(
  options: {
    accessTokenTtl?: number;
    /** Listen here (a restart on the same port keeps the issuer). @default any free port */
    port?: number;
    /** The IdP's signing keys and storage (lib/local/oidc-store.ts), to survive a restart. */
    jwksPath?: string;
    storePath?: string;
  } = {},
): Promise<FakeGateway> {
  let idp: DevIdp | undefined = undefined;
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/oidc')) {
      idp!.handler(req, res);
      return;
    }
    if (req.url === '/.well-known/oauth-protected-resource') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(gateway.metadata));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const created = await createDevIdp({
    issuer: `${url}/oidc`,
    audience: 'warden',
    ...(options.accessTokenTtl ? { accessTokenTtl: options.accessTokenTtl } : {}),
    ...(options.jwksPath ? { jwksPath: options.jwksPath } : {}),
    ...(options.storePath ? { storePath: options.storePath } : {}),
  });
  idp = created;
  const metadata = {
    resource: url,
    authorization_servers: [created.issuer],
    bearer_methods_supported: ['header'],
    scopes_supported: ['openid', 'warden'],
    resource_name: 'Warden',
    warden_cli_client_id: created.clients.login.clientId,
  };
  const gateway: FakeGateway = {
    url,
    idp: created,
    metadata,
    async close() {
      created.flush();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return gateway;
}
