/** Text for people on a terminal: result tables, one-paragraph summaries, lists. */
import { blastRadiusText } from '../lambdas/core/blast-radius-text.js';
import type { BlastRadius } from '../lambdas/core/blast-radius.js';
import { invisibleWarning, revealInvisible } from '../lambdas/core/invisible.js';
type Json = Record<string, any>;

export function str(v: unknown): string {
  if (v === null || v === undefined) return '∅';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A boxed table; cells are cut to keep lines short, newlines shown as ⏎. */
export function textTable(columns: readonly string[], rows: readonly Json[], maxCell = 24): string[] {
  const cut = (s: string) => {
    const one = s.replace(/\r?\n/g, '⏎');
    return one.length > maxCell ? `${one.slice(0, maxCell - 1)}…` : one;
  };
  const cells = rows.map((r) => columns.map((c) => cut(str(r[c]))));
  const widths = columns.map((c, i) => Math.max(cut(c).length, ...cells.map((row) => row[i].length)));
  const line = (l: string, m: string, r: string) => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  const row = (values: string[]) => `│ ${values.map((v, i) => v.padEnd(widths[i])).join(' │ ')} │`;
  return [
    line('┌', '┬', '┐'),
    row(columns.map(cut)),
    line('├', '┼', '┤'),
    ...cells.map(row),
    line('└', '┴', '┘'),
  ];
}

/** Cell width so a table of n columns fits the terminal where it can. */
function cellWidth(n: number): number {
  const cols = process.stdout.columns || 120;
  return Math.max(12, Math.min(60, Math.floor((cols - 1 - n * 3) / Math.max(n, 1))));
}

/** "masked: EMAIL×2, CARD×1" (or that nothing was, or that the caller sees raw values). */
export function maskingLine(masking: Json | undefined): string {
  if (!masking) return '';
  if (masking.unmasked) return 'masking: none (you may view unmasked values; this read is recorded)';
  const entries = Object.entries((masking.byType ?? {}) as Record<string, number>).filter(([, n]) => n > 0);
  return entries.length
    ? `masked: ${entries.map(([k, n]) => `${k}×${n}`).join(', ')}`
    : 'masked: nothing sensitive found';
}

export function resultText(result: Json): string[] {
  const columns: string[] = (result.columns ?? []).map((c: Json) => String(c.name ?? c));
  const rows: Json[] = result.rows ?? [];
  const out = columns.length ? textTable(columns, rows, cellWidth(columns.length)) : [];
  const count = result.rowCount ?? rows.length;
  out.push(
    `${count} row${count === 1 ? '' : 's'}${result.truncated ? ` (showing ${rows.length}; the rest were cut)` : ''}`,
  );
  const m = maskingLine(result.masking);
  if (m) out.push(m);
  return out;
}

function until(at: string | undefined): string {
  if (!at) return '';
  const ms = Date.parse(at) - Date.now();
  if (Number.isNaN(ms)) return ` until ${at}`;
  if (ms <= 0) return ` (expired ${at})`;
  const m = Math.round(ms / 60_000);
  return ` until ${at} (${m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`} left)`;
}

function decisionLine(d: Json | undefined): string {
  if (!d) return '';
  const policies = d.determiningPolicies?.length
    ? `by ${d.determiningPolicies.join(', ')}`
    : 'no policy permits it';
  return `${str(d.action)}: ${String(d.outcome ?? '').replace(/_/g, ' ')} ${policies} (policy set ${str(d.policyVersion)})`;
}

/** POST …/sql or …/aws: rows as a table, or what happens next for a pending request. */
export function submissionText(body: Json): string {
  if (body.status === 'executed') {
    const out = body.result?.columns ? resultText(body.result) : [JSON.stringify(body.result, null, 2)];
    out.push(`request ${body.requestId} · ${decisionLine(body.decision)}`);
    return out.join('\n');
  }
  if (body.status === 'pending_approval') {
    return pendingText(body);
  }
  return JSON.stringify(body, null, 2);
}

export function pendingText(body: Json): string {
  const groups = body.approverGroups?.length ? ` from ${body.approverGroups.join(' or ')}` : '';
  return [
    `Waiting for approval: ${body.requestId} (nothing has run)`,
    `  needs ${body.requiredApprovals ?? 1} approval(s)${groups}${until(body.expiresAt)}`,
    ...(body.decision ? [`  ${decisionLine(body.decision)}`] : []),
    ...(body.links?.review ? [`  review: ${body.links.review}`] : []),
    `  follow: npx warden request ${body.requestId}`,
  ].join('\n');
}

function statementOf(op: Json | undefined): string {
  if (!op) return '';
  if (op.kind === 'sql') return String(op.sql ?? '');
  if (op.kind === 'aws') return `${op.service}:${op.action} ${JSON.stringify(op.input ?? {})}`;
  if (op.kind === 'access') return `access ${op.level} for ${op.durationSeconds} s`;
  return JSON.stringify(op);
}

/** POST …/explain: how it was classified and what would be decided. */
export function explainText(body: Json): string {
  const c: Json = body.classification ?? {};
  const d: Json = body.decision ?? {};
  const out = [
    `${str(c.class ?? c.action ?? body.action)}${c.reasons?.length ? ` (${c.reasons.join('; ')})` : ''}`,
    `decision: ${String(d.outcome ?? body.outcome ?? '?').replace(/_/g, ' ')}${
      d.determiningPolicies?.length ? ` by ${d.determiningPolicies.join(', ')}` : ''
    }`,
  ];
  const tables = c.tables ?? body.tables;
  if (Array.isArray(tables) && tables.length) out.push(`tables: ${tables.map(str).join(', ')}`);
  if (body.blastRadius) out.push(...blastRadiusLines(body.blastRadius));
  out.push('(nothing ran; --json for the whole explanation)');
  return out.join('\n');
}

/** GET /v1/requests/{id}: its lifecycle in a few lines, and its masked result as a table. */
export function requestText(r: Json): string {
  // emit() shows invisible characters as ⟨U+…⟩; say so above the statement, as approvers are told.
  const statement = statementOf(r.operation);
  const warnings = [
    invisibleWarning('statement', revealInvisible(statement).found),
    typeof r.justification === 'string'
      ? invisibleWarning('justification', revealInvisible(r.justification).found)
      : undefined,
  ].filter((w): w is string => w !== undefined);
  const out = [
    `${r.requestId}  ${str(r.status).toUpperCase()}  ${str(r.principal)} on ${str(r.target)}  ${str(r.createdAt)}`,
    ...warnings,
    ...statement.split('\n').map((l) => `  ${l}`),
  ];
  if (r.justification) out.push(`justification: ${r.justification}`);
  if (r.decision) out.push(decisionLine(r.decision));
  if (r.status === 'pending_approval')
    out.push(`waiting for ${r.requiredApprovals ?? 1} approval(s)${until(r.expiresAt)}`);
  for (const v of r.votes ?? [])
    out.push(`  ${str(v.by)}: ${str(v.decision)}${v.comment ? ` "${v.comment}"` : ''} ${str(v.at)}`);
  if (r.error) out.push(`error: ${str(r.error.code ?? '')} ${str(r.error.message ?? r.error)}`);
  if (r.result?.columns) out.push(...resultText({ ...r.result, masking: r.result.masking ?? r.masking }));
  else if (r.result !== undefined) out.push(JSON.stringify(r.result, null, 2));
  return out.join('\n');
}

export function requestsText(body: Json): string {
  const rows: Json[] = body.requests ?? [];
  if (!rows.length) return 'no requests yet';
  return textTable(['requestId', 'createdAt', 'target', 'action', 'status'], rows, 40).join('\n');
}

export function blastRadiusLines(b: Json): string[] {
  return [`reach: ${blastRadiusText(b as BlastRadius)}`];
}

/**
 * GET /v1/approvals: one entry per request awaiting me, newest first; with the gateway's `base`
 * URL, each entry ends with its review page and the requester's session replay.
 */
export function approvalsText(body: Json, base?: string): string {
  const list: Json[] = body.approvals ?? [];
  const more = body.cursor
    ? `more are waiting than listed: GET /v1/approvals?cursor=${str(body.cursor)} continues`
    : '';
  if (!list.length) return more || 'nothing awaits your approval';
  const out: string[] = [];
  for (const a of list) {
    out.push(
      `${a.requestId}  ${str(a.risk).toUpperCase()}  ${str(a.requester)} on ${str(a.target)} (${str(a.action)})${until(a.expiresAt)}`,
    );
    for (const w of a.visible?.warnings ?? []) out.push(`    ${w}`);
    for (const l of String(a.visible?.statement ?? a.statement ?? '').split('\n')) out.push(`    ${l}`);
    if (a.blastRadius) out.push(...blastRadiusLines(a.blastRadius).map((l) => `    ${l}`));
    const justification = a.visible?.justification ?? a.justification;
    if (justification) out.push(`    justification: ${justification}`);
    if ((a.votes ?? []).length)
      out.push(`    votes: ${a.votes.map((v: Json) => `${v.by} ${v.decision}`).join(', ')}`);
    out.push(`    approve: npx warden approve ${a.requestId}   deny: npx warden deny ${a.requestId}`);
    if (base && a.links?.replay) {
      out.push(`    review: ${base}${str(a.links.review)}   session so far: ${base}${str(a.links.replay)}`);
    }
    out.push('');
  }
  out.push(`${list.length} request(s) await your decision`);
  if (more) out.push(more);
  return out.join('\n');
}

/** POST /v1/approvals/{id}/decision. */
export function voteText(o: Json): string {
  const head = o.terminal
    ? `${o.requestId}: ${str(o.status)}${o.decidedBy ? ` by ${o.decidedBy}` : ''}`
    : `${o.requestId}: your ${str(o.vote?.decision)} is recorded; ${o.remainingApprovals} more approval(s) needed`;
  return [head, `  follow: npx warden request ${o.requestId}`].join('\n');
}

export function grantsText(body: Json): string {
  const rows: Json[] = body.grants ?? [];
  if (!rows.length) return 'no grants';
  const cols = Object.keys(rows[0]).filter((k) => typeof rows[0][k] !== 'object');
  return textTable(cols, rows, 32).join('\n');
}

/** Anything without a dedicated view: indented JSON is readable enough. */
export function jsonText(body: unknown): string {
  return JSON.stringify(body, null, 2);
}
