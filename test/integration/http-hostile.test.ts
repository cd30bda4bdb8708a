/**
 * Hostile HTTP input against the local twin: oversized and deeply nested bodies, wrong content
 * types, path traversal in ids, header injection, and HTML injection into the approval and replay
 * pages. Each answer must be a clean 4xx in the contract's JSON shape (never a 5xx, a file, or
 * another resource), and nothing hostile may come back as markup or as a header.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTwin, type TestTwin } from '../support/twin.js';

let twin: TestTwin;
let alice: string;
let dave: string;

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, dave] = await Promise.all(['alice', 'dave'].map((u) => twin.token(u)));
}, 180_000);

afterAll(async () => {
  await twin?.close();
});

const SQL_PATH = '/v1/targets/demo/sql';

async function post(
  path: string,
  body: string,
  contentType: string | undefined,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${twin.url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${alice}`,
      ...(contentType ? { 'content-type': contentType } : {}),
      ...headers,
    },
    body,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A request exactly as written (fetch would normalise the path or refuse the header). */
function raw(request: string): Promise<{ status: number; text: string }> {
  const url = new URL(twin.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
  });
}

describe('hostile bodies', () => {
  it('refuses a body over the configured limit with 413 before parsing it', async () => {
    const big = JSON.stringify({ sql: `SELECT '${'x'.repeat(300 * 1024)}'` });
    const res = await post(SQL_PATH, big, 'application/json');
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('payload_too_large');
  });

  it('refuses a body over the API Gateway limit (10 MiB) with 413', async () => {
    const res = await post(SQL_PATH, 'x'.repeat(10 * 1024 * 1024 + 10), 'application/json');
    expect(res.status).toBe(413);
  });

  it('refuses JSON nested deeper than the limit with 400, also when the nesting would overflow the parser', async () => {
    const deep = `{"sql": "SELECT 1", "parameters": ${'['.repeat(40)}${']'.repeat(40)}}`;
    const r1 = await post(SQL_PATH, deep, 'application/json');
    expect(r1.status).toBe(400);
    expect(r1.json.error.message).toMatch(/nested deeper/);
    const abyss = `{"sql": ${'['.repeat(120_000)}${']'.repeat(120_000)}}`;
    const r2 = await post(SQL_PATH, abyss, 'application/json');
    expect(r2.status).toBe(400);
    expect(r2.json.error.code).toBe('bad_request');
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['form encoding', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['a JSON look-alike', 'application/jsonp'],
    ['no content type', undefined],
  ])('refuses %s with 415', async (_label, type) => {
    const res = await post(SQL_PATH, '{"sql":"SELECT 1"}', type);
    expect(res.status).toBe(415);
    expect(res.json.error.code).toBe('unsupported_media_type');
  });

  it('accepts application/json with a charset parameter', async () => {
    const res = await post(SQL_PATH, '{"sql":"SELECT 1 AS one"}', 'application/json; charset=utf-8');
    expect(res.status).toBe(200);
  });

  it.each([
    ['malformed JSON', '{"sql": "SELECT 1"'],
    ['a JSON array', '[{"sql": "SELECT 1"}]'],
    ['an unknown field', '{"sql": "SELECT 1", "role": "admin"}'],
    ['a prototype key', '{"sql": "SELECT 1", "__proto__": {"admin": true}}'],
    ['a wrong type', '{"sql": ["SELECT 1"]}'],
    ['an empty body', ''],
  ])('answers 400 in the contract shape for %s', async (_label, body) => {
    const res = await post(SQL_PATH, body, 'application/json');
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'bad_request' });
  });
});

describe('path traversal in ids', () => {
  it.each([
    '/v1/requests/..%2F..%2Fetc',
    '/v1/requests/..%2F..%2F..%2Fetc%2Fpasswd',
    '/v1/requests/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/v1/requests/r_aaaaaaaaaaaa%00',
    '/v1/targets/..%2Fdemo/sql',
    '/v1/targets/demo%2F..%2Fdemo/sql',
    '/v1/targets/__proto__/sql',
    '/v1/targets/constructor/sql',
    '/v1/approvals/..%2F..%2Fetc%2Fpasswd',
    '/v1/sessions/..%2F..%2Fetc%2Fpasswd',
  ])('answers 404 (never a file or another resource) for %s', async (path) => {
    const method = path.endsWith('/sql') ? 'POST' : 'GET';
    const res = await fetch(`${twin.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${dave}`, 'content-type': 'application/json' },
      ...(method === 'POST' ? { body: '{"sql":"SELECT 1"}' } : {}),
    });
    const text = await res.text();
    // dave is an auditor: the only principal who may read other people's records.
    expect([404, 403]).toContain(res.status);
    expect(text).not.toMatch(/root:|\/bin\/|customers|"rows"/);
    expect(JSON.parse(text).error.code).toMatch(/not_found|forbidden/);
  });

  it('keeps dot segments out of routing even when they reach the server unnormalised', async () => {
    const res = await raw(
      `GET /v1/targets/../../etc/passwd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(404);
    expect(res.text).not.toMatch(/root:/);
  });
});

describe('header injection', () => {
  it('refuses an X-Warden-Session carrying an encoded CR/LF or other junk with 400', async () => {
    for (const value of ['abc%0d%0aSet-Cookie:%20x=1', 'a b', 'x'.repeat(200), 'é']) {
      const res = await post(SQL_PATH, '{"sql":"SELECT 1 AS one"}', 'application/json', {
        'x-warden-session': value,
      });
      expect(res.status, value).toBe(400);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
  });

  it('never lets a raw CR/LF in X-Warden-Session through (the HTTP parser refuses it)', async () => {
    const body = '{"sql":"SELECT 1 AS one"}';
    const res = await raw(
      `POST ${SQL_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\n` +
        `Content-Type: application/json\r\nX-Warden-Session: abc\r\n Set-Cookie: pwned=1\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(res.status).toBe(400);
    expect(res.text).not.toMatch(/pwned/);
  });

  it('keeps CR/LF in a justification out of every response header and notification header', async () => {
    const justification = 'urgent\r\nSet-Cookie: pwned=1\r\nX-Injected: yes\r\nSubject: free money';
    const res = await post(
      SQL_PATH,
      JSON.stringify({ sql: "UPDATE orders SET status = 'hdr' WHERE id = 1", justification }),
      'application/json',
    );
    expect(res.status).toBe(202);
    expect(res.headers.get('x-injected')).toBeNull();
    expect(res.headers.get('set-cookie')).toBeNull();
    const view = await fetch(`${twin.url}/v1/requests/${res.json.requestId}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(view.headers.get('x-injected')).toBeNull();
    expect(((await view.json()) as { justification: string }).justification).toBe(justification);
    // Approval notifications (Slack/email) are captured in the twin's outbox when it has one.
    const outbox = (twin as { outbox?: readonly { requestId: string; subject: string }[] }).outbox;
    if (outbox) {
      const deadline = Date.now() + 10_000;
      while (!outbox.some((m) => m.requestId === res.json.requestId) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const m of outbox.filter((x) => x.requestId === res.json.requestId)) {
        expect(m.subject).not.toMatch(/[\r\n]/);
      }
    }
  });
});

/** Signs in at the dev IdP by following the approval page's redirects with a cookie jar. */
async function signedInGet(
  path: string,
  user: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const jar = new Map<string, string>();
  const send = async (method: string, url: string, form?: Record<string, string>) => {
    const headers: Record<string, string> = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, {
      method,
      headers,
      redirect: 'manual',
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    return { res, text: await res.text() };
  };
  let url = new URL(path, twin.url).toString();
  for (let hop = 0; hop < 20; hop++) {
    const { res, text } = await send('GET', url);
    const location = res.headers.get('location');
    if (location) {
      url = new URL(location, url).toString();
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(text)?.[1];
    if (url.includes('/oidc/interaction/') && action) {
      const posted = await send('POST', new URL(action, url).toString(), { login: user, password: '' });
      url = new URL(posted.res.headers.get('location')!, url).toString();
      continue;
    }
    return { status: res.status, headers: res.headers, text };
  }
  throw new Error(`too many redirects from ${path}`);
}

const HOSTILE = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`;

function expectEscapedWithCsp(page: { status: number; headers: Headers; text: string }): void {
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(page.text).not.toContain('<script>alert(1)</script>');
  expect(page.text).not.toContain('<img src=x');
  expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  const csp = (page.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim());
  // Nothing loads or runs unless named: no scripts at all, no inline anything, no framing.
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("base-uri 'none'");
  expect(csp.join(';')).not.toMatch(/'unsafe-inline'|'unsafe-eval'|script-src/);
}

describe('HTML injection on the pages', () => {
  let requestId: string;
  const session = `hostile-${Date.now()}`;

  beforeAll(async () => {
    const res = await post(
      SQL_PATH,
      JSON.stringify({
        sql: `UPDATE orders SET status = '${HOSTILE.replace(/'/g, "''")}' WHERE id = 2`,
        justification: `please ${HOSTILE}`,
      }),
      'application/json',
      { 'x-warden-session': session },
    );
    expect(res.status).toBe(202);
    requestId = res.json.requestId;
  });

  it('escapes the statement and justification on the approval page, under a strict CSP', async () => {
    const page = await signedInGet(`/approve/${requestId}`, 'bob');
    expect(page.text).toContain(requestId);
    expectEscapedWithCsp(page);
  });

  it('escapes the trail on the replay page, under a strict CSP', async () => {
    const request = await fetch(`${twin.url}/v1/requests/${requestId}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    const { sessionId } = (await request.json()) as { sessionId: string };
    const res = await fetch(`${twin.url}/replay/${sessionId}`, {
      headers: { authorization: `Bearer ${dave}` },
    });
    const page = { status: res.status, headers: res.headers, text: await res.text() };
    expect(page.text).toContain('please');
    expectEscapedWithCsp(page);
  });

  it('answers a hostile id on the pages with an escaped 404 page, not a reflection', async () => {
    const res = await fetch(`${twin.url}/replay/${encodeURIComponent(HOSTILE)}`, {
      headers: { authorization: `Bearer ${dave}` },
    });
    const text = await res.text();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(text).not.toContain('<script>alert(1)</script>');
  });
});
