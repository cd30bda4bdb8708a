/** The approval page's markup: the request at a glance, its votes, and Approve / Deny as a POST. */
import type { ApprovalView } from '../../core/approvals.js';
import { blastRadiusText } from '../../core/blast-radius-text.js';
import type { RequestStatus } from '../../core/types.js';
import { html, type SafeHtml } from './html.js';

export interface Notice {
  readonly tone: 'ok' | 'bad' | 'pending';
  readonly text: string;
}

export interface ReviewPageInput {
  readonly view: ApprovalView;
  readonly canVote: boolean;
  /** Why the viewer cannot vote (own request, decided, expired, already voted). */
  readonly reason?: string;
  readonly viewerName: string;
  /** Present when the viewer may vote. */
  readonly csrfToken?: string;
  /** The outcome of the POST that rendered this page, if any. */
  readonly notice?: Notice;
  readonly now: Date;
}

const STATUS: Record<RequestStatus, { label: string; tone: string }> = {
  pending_approval: { label: 'Waiting for approval', tone: 'pending' },
  approved: { label: 'Approved', tone: 'ok' },
  running: { label: 'Running', tone: 'pending' },
  executed: { label: 'Executed', tone: 'ok' },
  denied: { label: 'Denied', tone: 'bad' },
  expired: { label: 'Expired', tone: 'bad' },
  failed: { label: 'Failed', tone: 'bad' },
};

function relative(iso: string, now: Date): string {
  const seconds = Math.round((Date.parse(iso) - now.getTime()) / 1000);
  const abs = Math.abs(seconds);
  const span =
    abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return seconds >= 0 ? `in ${span}` : `${span} ago`;
}

function statusOf(view: ApprovalView, now: Date): { label: string; tone: string } {
  // The workflow records expiry when its wait ends; the page should not claim "waiting" meanwhile.
  if (view.status === 'pending_approval' && view.expiresAt && Date.parse(view.expiresAt) <= now.getTime()) {
    return STATUS.expired;
  }
  return STATUS[view.status];
}

function classificationLine(view: ApprovalView): string {
  const c = view.classification;
  if (!c) return view.action;
  if (c.kind === 'sql') {
    const types = [...new Set(c.statements.map((s) => s.type))].join(', ');
    return [c.class, types, c.tables.join(', ')].filter(Boolean).join(' · ');
  }
  if (c.kind === 'mcp') return [c.class, `MCP tool ${c.tool}`, ...c.reasons].filter(Boolean).join(' · ');
  return [c.class, c.iamAction, c.accessLevel].filter(Boolean).join(' · ');
}

function votesList(view: ApprovalView): SafeHtml {
  if (view.votes.length === 0) return html`<span class="muted">none yet</span>`;
  return html`<ul class="votes">
    ${view.votes.map(
      (v) =>
        html`<li>
          <strong>${v.byName}</strong>
          <span class="${v.decision === 'approve' ? 'ok' : 'bad'}"
            >${v.decision === 'approve' ? 'approved' : 'denied'}</span
          >
          at ${v.at}${v.comment ? html` — “${v.comment}”` : ''}
        </li>`,
    )}
  </ul>`;
}

export function reviewPageBody(input: ReviewPageInput): SafeHtml {
  const { view, now } = input;
  const status = statusOf(view, now);
  const approvals = new Set(view.votes.filter((v) => v.decision === 'approve').map((v) => v.by)).size;
  const action = `/approve/${encodeURIComponent(view.requestId)}`;
  return html`
    <h1>${view.requester} asks to run <code>${view.action}</code> on ${view.target}</h1>
    <p>
      <span class="badge ${status.tone}" data-status="${view.status}">${status.label}</span>
      <span class="muted">request ${view.requestId}</span>
    </p>
    ${input.notice ? html`<p class="notice ${input.notice.tone}" role="status">${input.notice.text}</p>` : ''}
    <dl>
      <dt>Requester</dt>
      <dd>
        ${view.requester} <span class="muted">(${view.requesterType})</span>${
          view.onBehalfOf ? html` acting for <strong id="on-behalf-of">${view.onBehalfOf}</strong>` : ''
        }
      </dd>
      <dt>Target</dt>
      <dd>${view.target}</dd>
      <dt>Classification</dt>
      <dd>${classificationLine(view)}</dd>
      <dt>Risk</dt>
      <dd><strong class="risk-${view.risk}" id="risk">${view.risk}</strong></dd>
      ${
        view.blastRadius
          ? html`<dt>Blast radius</dt>
              <dd
                id="blast-radius"
                data-high="${String(view.blastRadius.kind === 'sql' && view.blastRadius.high)}"
              >
                ${blastRadiusText(view.blastRadius)}
              </dd>`
          : ''
      }
      <dt>Session</dt>
      <dd>
        <a id="replay" href="${view.links.replay}">replay ${view.requester}'s session</a>
        <span class="muted">(what happened just before)</span>
      </dd>
      <dt>Justification</dt>
      <dd id="justification">${view.visible.justification ?? html`<span class="muted">none given</span>`}</dd>
      <dt>Requested</dt>
      <dd>${view.createdAt} <span class="muted">(${relative(view.createdAt, now)})</span></dd>
      <dt>Expires</dt>
      <dd>
        ${
          view.expiresAt
            ? html`${view.expiresAt} <span class="muted">(${relative(view.expiresAt, now)})</span>`
            : html`<span class="muted">no expiry</span>`
        }
      </dd>
      <dt>Approvals</dt>
      <dd>${approvals} of ${view.requiredApprovals} needed</dd>
      <dt>Votes</dt>
      <dd>${votesList(view)}</dd>
      ${
        view.decidedBy
          ? html`<dt>Decided</dt>
              <dd>by ${view.decidedBy} at ${view.decidedAt ?? ''}</dd>`
          : ''
      }
    </dl>
    ${
      view.form === 'exact'
        ? html`<h2>Statement <span class="muted">(exactly what will run)</span></h2>
            <p class="muted" id="statement-form" data-form="exact">
              Exact form, shown to the requester and to approvers while it waits; the record, the trail and
              notifications keep it masked.
            </p>`
        : html`<h2>Statement <span class="muted">(masked)</span></h2>
            <p class="muted" id="statement-form" data-form="shown">
              Values are masked; the exact statement is shown only to the requester and to approvers while it
              waits.
            </p>`
    }
    ${view.visible.warnings.map((w) => html`<p class="notice bad invisible-warning" role="alert">${w}</p>`)}
    <pre id="statement">${view.visible.statement}</pre>
    ${
      input.canVote && input.csrfToken
        ? html`<form method="post" action="${action}">
            <input type="hidden" name="csrf" value="${input.csrfToken}" />
            <label for="comment">Comment (optional)</label>
            <textarea id="comment" name="comment" maxlength="1000"></textarea>
            <div class="actions">
              <button class="approve" type="submit" name="decision" value="approve">Approve</button>
              <button class="deny" type="submit" name="decision" value="deny">Deny</button>
            </div>
          </form>`
        : input.reason && !input.notice
          ? html`<p class="notice muted" id="cannot-vote">${input.reason}</p>`
          : ''
    }
  `;
}

export function signedInAs(name: string): SafeHtml {
  return html`<span class="who">signed in as <strong>${name}</strong></span>`;
}

export interface ApprovalsListInput {
  readonly approvals: readonly ApprovalView[];
  readonly now: Date;
  /** More are waiting than the page lists. */
  readonly more?: boolean;
}

/** `/approvals`: every request the signed-in person may decide, newest first. */
export function approvalsListBody(input: ApprovalsListInput): SafeHtml {
  const { approvals, now } = input;
  const sorted = [...approvals].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  if (sorted.length === 0) {
    return input.more
      ? html`<h1>Waiting for your decision</h1>
          <p class="notice bad" id="more">
            None found among the first pending requests read; more are waiting. Use \`npx warden approvals\`
            or GET /v1/approvals with its cursor.
          </p>`
      : html`<h1>Waiting for your decision</h1>
          <p class="muted" id="none">Nothing is waiting for you.</p>`;
  }
  return html`<h1>Waiting for your decision</h1>
    <p class="muted">${sorted.length} request${sorted.length === 1 ? '' : 's'}, newest first.</p>
    ${
      input.more
        ? html`<p class="notice bad" id="more">
            More requests are waiting for you than this page lists; use \`npx warden approvals\` or GET
            /v1/approvals with its cursor to see the rest.
          </p>`
        : ''
    }
    <ol class="approvals" id="approvals">
      ${sorted.map(
        (v) =>
          html`<li data-request="${v.requestId}" data-risk="${v.risk}">
            <p>
              <strong class="risk-${v.risk}">${v.risk}</strong>
              <a href="/approve/${encodeURIComponent(v.requestId)}"
                >${v.requester} asks to run <code>${v.action}</code> on ${v.target}</a
              >
            </p>
            <pre>${v.statement.length > 400 ? `${v.statement.slice(0, 400)}…` : v.statement}</pre>
            ${v.blastRadius ? html`<p class="blast">${blastRadiusText(v.blastRadius)}</p>` : ''}
            <p class="muted">
              requested ${relative(v.createdAt, now)} ·
              ${v.expiresAt ? html`expires ${relative(v.expiresAt, now)} (${v.expiresAt})` : 'no expiry'} ·
              ${v.votes.filter((x) => x.decision === 'approve').length} of ${v.requiredApprovals} approvals ·
              <a href="${v.links.replay}">session replay</a>
            </p>
          </li>`,
      )}
    </ol>`;
}
