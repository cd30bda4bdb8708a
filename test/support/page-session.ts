/** The approval page driven with plain fetch: a real OIDC sign-in at the twin's dev IdP, cookies kept. */
import { expect } from 'vitest';

/** A browser without a browser: follows redirects by hand and keeps cookies (by name, any path). */
export class PageSession {
  readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}

  private store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || pair.slice(eq + 1) === '';
      if (gone) this.jar.delete(name);
      else this.jar.set(name, pair.slice(eq + 1));
    }
  }

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(
    method: string,
    url: string,
    init: { form?: Record<string, string>; headers?: Record<string, string> } = {},
  ) {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (this.jar.size) headers.cookie = this.cookieHeader();
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(new URL(url, this.base), { method, headers, body, redirect: 'manual' });
    this.store(res);
    return { res, text: await res.text() };
  }

  /** GET, following redirects; returns the last response and the URL it came from. */
  async follow(url: string, maxHops = 12) {
    let current = new URL(url, this.base).toString();
    for (let hop = 0; hop < maxHops; hop++) {
      const out = await this.request('GET', current);
      const location = out.res.headers.get('location');
      if (out.res.status < 300 || out.res.status >= 400 || !location) return { ...out, url: current };
      current = new URL(location, current).toString();
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Opens `path`, signs in at the dev IdP as `user`, and lands back on `path`. */
  async signIn(path: string, user: string) {
    const login = await this.follow(path);
    expect(login.url).toContain('/oidc/interaction/');
    const action = /<form method="post" action="([^"]+)"/.exec(login.text)?.[1];
    expect(action).toBeDefined();
    const posted = await this.request('POST', new URL(action!, login.url).toString(), {
      form: { login: user, password: '' },
    });
    const next = posted.res.headers.get('location');
    expect(next).toBeTruthy();
    return this.follow(new URL(next!, login.url).toString());
  }
}
