/**
 * The replay page: one session as a timeline, read top to bottom. Every value from the trail is
 * escaped (pages/html.ts: the `html` tag escapes whatever it interpolates unless it is markup it
 * produced), the page
 * loads nothing and runs no script, and its CSP says so.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { SessionSummary } from '../../core/sessions.js';
import type { ChainVerification } from '../../core/trail-chain.js';
import type { StoredTrailEvent } from '../../core/trail.js';
import { SECURITY_HEADERS, type HttpResult } from '../../middleware/http.js';
import { html as h, SafeHtml as Markup } from './html.js';

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b636e;--line:#d5d9de;--bg:#fff;--code:#f4f6f8;
--ok:#1a7f37;--bad:#b42318;--warn:#9a6700;--info:#0b5cad}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa3ad;--line:#3a4048;--bg:#15181c;--code:#1f2329;
--info:#6cb6ff}}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);
max-width:64rem;margin:1.5rem auto;padding:0 1rem}
header{display:flex;justify-content:space-between;align-items:baseline;border-bottom:1px solid var(--line);margin-bottom:1rem}
header .who{color:var(--muted);font-size:.9rem}
h1{font-size:1.3rem;margin:.2rem 0 .5rem;overflow-wrap:anywhere}
dl.summary{display:grid;grid-template-columns:8rem 1fr;gap:.25rem 1rem;margin:.5rem 0 1rem}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.chain{padding:.5rem .75rem;border-left:4px solid currentColor;background:var(--code);margin:0 0 1rem}
.chain ul{margin:.3rem 0 0;padding-left:1.2rem}
ol.timeline{list-style:none;margin:0;padding:0;border-left:2px solid var(--line);margin-left:6.5rem}
ol.timeline>li{position:relative;padding:.35rem 0 .6rem 1rem}
ol.timeline>li::before{content:"";position:absolute;left:-.42rem;top:.75rem;width:.7rem;height:.7rem;border-radius:50%;
background:var(--bg);border:2px solid currentColor}
.when{position:absolute;left:-7rem;width:6rem;text-align:right;top:.45rem;font:12px ui-monospace,Menlo,Consolas,monospace;
color:var(--muted)}
.when b{display:block;color:var(--fg);font-weight:600}
.head{display:flex;flex-wrap:wrap;gap:.4rem;align-items:baseline}
.type{font-weight:700}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.8rem;font-weight:600;border:1px solid currentColor}
.req{font:12px ui-monospace,Menlo,Consolas,monospace;padding:0 .35rem;border-radius:4px;background:var(--code)}
.muted{color:var(--muted)}.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.info{color:var(--info)}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:.45rem .6rem;margin:.35rem 0;overflow:auto;
white-space:pre-wrap;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:.35rem 0;font:12.5px ui-monospace,Menlo,Consolas,monospace}
th,td{border:1px solid var(--line);padding:.15rem .45rem;text-align:left;max-width:18rem;overflow-wrap:anywhere}
th{background:var(--code)}
.body,.actor{color:var(--fg)}
.broken{outline:2px solid var(--bad);outline-offset:2px;border-radius:4px}
`;

function page(
  statusCode: number,
  title: string,
  body: Markup,
  headers: Record<string, string> = {},
): HttpResult {
  const nonce = randomBytes(16).toString('base64');
  const doc = h`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow"><title>${title} · Warden</title>
<style nonce="${nonce}">${new Markup(STYLE)}</style></head>
<body>${body}</body></html>`;
  return {
    statusCode,
    headers: {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': [
        "default-src 'none'",
        `style-src 'nonce-${nonce}'`,
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
      ...headers,
    },
    body: doc.value,
  };
}

export function replayMessagePage(
  statusCode: number,
  title: string,
  message: string,
  headers: Record<string, string> = {},
): HttpResult {
  return page(
    statusCode,
    title,
    h`<header><strong>Warden</strong></header><main><h1>${title}</h1><p>${message}</p></main>`,
    headers,
  );
}

export interface ReplayInput {
  readonly session: SessionSummary;
  readonly events: readonly StoredTrailEvent[];
  readonly verification: ChainVerification;
  readonly viewer: string;
  /** Set when the viewer is not an auditor but an approver of this request of the session. */
  readonly forRequest?: string;
}

const TYPE_LABEL: Record<string, string> = {
  request_received: 'Request received',
  decided: 'Decided',
  approval_requested: 'Approval requested',
  approval_decided: 'Approval decided',
  execution_started: 'Execution started',
  execution_finished: 'Execution finished',
  result: 'Result (masked)',
  error: 'Error',
  grant_created: 'Grant created',
  grant_revoked: 'Grant revoked',
  request_refused: 'Request refused',
  explained: 'Explained (nothing run)',
};

function tone(e: StoredTrailEvent): string {
  if (e.type === 'error' || e.outcome === 'deny' || e.status === 'denied' || e.status === 'failed')
    return 'bad';
  if (e.outcome === 'approval_required' || e.type === 'approval_requested') return 'warn';
  if (
    e.outcome === 'allow' ||
    e.outcome === 'approve' ||
    e.status === 'executed' ||
    e.type === 'grant_created'
  ) {
    return 'ok';
  }
  return 'info';
}

const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

function cell(v: unknown): string {
  if (v === null || v === undefined) return '∅';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function resultTable(detail: Record<string, unknown>): Markup {
  const columns = Array.isArray(detail.columns) ? detail.columns.map((c) => String(obj(c).name ?? c)) : [];
  const rows = Array.isArray(detail.rows) ? detail.rows.map(obj) : [];
  const masking = Object.entries(obj(detail.masking));
  if (columns.length === 0) return h`<div class="muted">no result set (a write reports its row count)</div>`;
  return h`<table><thead><tr>${columns.map((c) => h`<th>${c}</th>`)}</tr></thead><tbody>${rows.map(
    (r) => h`<tr>${columns.map((c) => h`<td>${cell(r[c])}</td>`)}</tr>`,
  )}</tbody></table>${detail.truncated ? h`<div class="muted">…more rows not kept in the trail</div>` : ''}${
    masking.length
      ? h`<div class="muted">masked: ${masking.map(([k, n]) => `${k} × ${cell(n)}`).join(', ')}</div>`
      : ''
  }`;
}

function body(e: StoredTrailEvent): Markup {
  const d = obj(e.detail);
  switch (e.type) {
    case 'request_received': {
      const c = obj(d.classification);
      return h`${e.statement ? h`<pre>${e.statement}</pre>` : ''}<div class="muted">${
        c.class ? `classified ${cell(c.class)}` : ''
      }${Array.isArray(c.reasons) && c.reasons.length ? ` — ${c.reasons.map(cell).join('; ')}` : ''}${
        d.justification ? h` · justification: “${cell(d.justification)}”` : ''
      }</div>`;
    }
    case 'decided':
      return h`<div><span class="badge ${tone(e)}">${e.outcome}</span> ${e.action} · ${
        e.determiningPolicies?.length
          ? h`policies <b>${e.determiningPolicies.join(', ')}</b>`
          : 'no policy permits it'
      } <span class="muted">(policy set ${cell(d.policyVersion)})</span></div>`;
    case 'approval_requested':
      return h`<div>waiting for ${cell(d.requiredApprovals ?? 1)} approval(s)${
        Array.isArray(d.approverGroups) && d.approverGroups.length
          ? ` from ${d.approverGroups.map(cell).join(', ')}`
          : ''
      }${d.expiresAt ? ` until ${cell(d.expiresAt)}` : ''}</div>`;
    case 'approval_decided':
      return h`<div><b>${e.approver}</b> <span class="badge ${tone(e)}">${e.outcome}</span>${
        d.requiredApprovals
          ? h` <span class="muted">(${cell(d.approvals)} of ${cell(d.requiredApprovals)})</span>`
          : ''
      }</div>`;
    case 'execution_finished':
      return h`<div>${cell(e.rowCount ?? 0)} row(s)${e.unmasked ? h` · <span class="badge warn">unmasked</span>` : ''}</div>`;
    case 'result':
      return resultTable(d);
    case 'error':
      return h`<div class="bad">${cell(d.code)}: ${cell(d.message)}</div>`;
    case 'request_refused':
      return h`${e.statement ? h`<pre>${e.statement}</pre>` : ''}<div class="bad">${cell(d.code)}: ${cell(d.message)}</div>`;
    case 'explained':
      return h`${e.statement ? h`<pre>${e.statement}</pre>` : ''}<div>${cell(e.action)} would be <span class="badge ${tone(e)}">${cell(e.outcome)}</span></div>`;
    case 'grant_created':
    case 'grant_revoked':
      return h`<div>${e.action} on ${e.target}${d.grantee ? ` for ${cell(d.grantee)}` : ''}${
        d.expiresAt ? ` until ${cell(d.expiresAt)}` : ''
      }</div>`;
    default:
      return e.statement ? h`<pre>${e.statement}</pre>` : h``;
  }
}

function offset(ms: number): string {
  if (ms < 1000) return `+${ms} ms`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(1)} s`;
  return `+${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A stable colour class per request, so a request's events read as one thread. */
function requestClass(requestId: string | undefined): string {
  if (!requestId) return '';
  const n = createHash('sha256').update(requestId).digest()[0] % 4;
  return ['info', 'ok', 'warn', 'muted'][n];
}

export function replayPage(input: ReplayInput): HttpResult {
  const { session, events, verification } = input;
  const start = Date.parse(events[0]?.at ?? session.startedAt);
  const brokenSeqs = new Set(verification.problems.map((p) => p.seq));
  const chain = verification.ok
    ? h`<div class="chain ok">Hash chain intact: ${verification.events} event(s) verified.</div>`
    : h`<div class="chain bad"><b>Hash chain broken</b> — the stored trail was changed:<ul>${verification.problems.map(
        (p) => h`<li>${p.message}</li>`,
      )}</ul></div>`;
  const items = events.map((e) => {
    const at = Date.parse(e.at);
    const time = Number.isNaN(at) ? e.at : new Date(at).toISOString().slice(11, 23);
    return h`<li class="${tone(e)}${brokenSeqs.has(e.seq) ? ' broken' : ''}" id="e${e.seq}">
<span class="when"><b>${time}</b>${Number.isNaN(at) || Number.isNaN(start) ? '' : offset(at - start)}</span>
<div class="head"><span class="type">${TYPE_LABEL[e.type] ?? e.type}</span>
<span class="muted">#${e.seq}</span><span class="actor">${e.principalName}</span>${
      e.requestId ? h`<span class="req ${requestClass(e.requestId)}">${e.requestId}</span>` : ''
    }${e.target ? h`<span class="muted">on ${e.target}</span>` : ''}${
      e.durationMs !== undefined ? h`<span class="muted">${e.durationMs} ms</span>` : ''
    }</div>
<div class="body">${body(e)}</div></li>`;
  });
  const content = h`<header><strong>Warden · session replay</strong><span class="who">signed in as ${input.viewer}</span></header>
<main><h1>Session ${session.sessionId}</h1>
${
  input.forRequest
    ? h`<p class="muted" id="for-request">Shown to you as an approver of <a href="/approve/${input.forRequest}">${input.forRequest}</a>: what happened in the requester's session (masked, read-only).</p>`
    : ''
}
<dl class="summary"><dt>Who</dt><dd>${session.principalNames.join(', ') || '—'}</dd>
<dt>Targets</dt><dd>${session.targets.join(', ') || '—'}</dd>
<dt>From</dt><dd>${session.startedAt}</dd><dt>To</dt><dd>${session.lastAt}</dd>
<dt>Events</dt><dd>${events.length}</dd>
<dt>Outcomes</dt><dd>${[...session.outcomes, ...session.statuses].join(', ') || '—'}</dd></dl>
${chain}
<ol class="timeline">${items}</ol></main>`;
  return page(200, `Session ${session.sessionId}`, content);
}
