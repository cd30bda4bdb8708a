/**
 * Server-rendered HTML with escaping by construction: the `html` tag escapes every interpolated
 * value unless it is already `SafeHtml` (the output of another `html` template), so a request's
 * statement or justification can never become markup. Pages carry a strict CSP and need no script.
 */
import { randomBytes } from 'node:crypto';
import { SECURITY_HEADERS, type HttpResult } from '../../middleware/http.js';

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === undefined || value === null || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** Tagged template: `html\`<p>${text}</p>\`` escapes `text`; nested templates and arrays compose. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b636e;--line:#d5d9de;--bg:#fff;--code:#f4f6f8;
--ok:#1a7f37;--bad:#b42318;--warn:#9a6700}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa3ad;--line:#3a4048;--bg:#15181c;--code:#1f2329}}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);
max-width:46rem;margin:2rem auto;padding:0 1rem}
header{display:flex;justify-content:space-between;align-items:baseline;border-bottom:1px solid var(--line);
margin-bottom:1rem}
header .who{color:var(--muted);font-size:.9rem}
h1{font-size:1.35rem;margin:.2rem 0 .6rem}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.35rem 1rem;margin:1rem 0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:.75rem;overflow:auto;
white-space:pre-wrap;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.85rem;font-weight:600;
border:1px solid currentColor}
.pending{color:var(--warn)}.ok{color:var(--ok)}.bad{color:var(--bad)}.muted{color:var(--muted)}
.risk-low{color:var(--ok)}.risk-medium{color:var(--warn)}.risk-high,.risk-critical{color:var(--bad)}
.notice{border-left:4px solid currentColor;padding:.5rem .75rem;margin:1rem 0;background:var(--code)}
ul.votes{padding-left:1.2rem;margin:0}
form{margin-top:1.25rem;border-top:1px solid var(--line);padding-top:1rem}
label{display:block;color:var(--muted);margin-bottom:.3rem}
textarea{width:100%;min-height:4.5rem;font:inherit;padding:.5rem;border:1px solid var(--line);border-radius:6px;
background:var(--bg);color:var(--fg)}
.actions{display:flex;gap:.75rem;margin-top:.75rem}
button{font:inherit;font-weight:600;padding:.5rem 1.4rem;border-radius:6px;border:0;color:#fff;cursor:pointer}
button.approve{background:var(--ok)}button.deny{background:var(--bad)}
`;

/** A complete page: the style rides on a per-response nonce, and nothing else may load or run. */
export function htmlPage(
  statusCode: number,
  page: { title: string; header?: SafeHtml; body: SafeHtml },
  extra: { headers?: Record<string, string>; cookies?: string[] } = {},
): HttpResult {
  const nonce = randomBytes(16).toString('base64');
  const body = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex, nofollow" />
        <title>${page.title} · Warden</title>
        <style nonce="${nonce}">
          ${new SafeHtml(STYLE)}
        </style>
      </head>
      <body>
        <header><strong>Warden</strong>${page.header ?? ''}</header>
        <main>${page.body}</main>
      </body>
    </html> `;
  return {
    statusCode,
    headers: {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': [
        "default-src 'none'",
        `style-src 'nonce-${nonce}'`,
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
      ...(extra.headers ?? {}),
    },
    ...(extra.cookies?.length ? { cookies: extra.cookies } : {}),
    body: body.value,
  };
}

/** A short page that says one thing (errors, sign-in problems, 404). */
export function messagePage(
  statusCode: number,
  title: string,
  message: string,
  extra: { headers?: Record<string, string>; cookies?: string[] } = {},
): HttpResult {
  return htmlPage(
    statusCode,
    {
      title,
      body: html`<h1>${title}</h1>
        <p>${message}</p>`,
    },
    extra,
  );
}
