/**
 * What approvers are told, rendered once for every channel: a Slack Block Kit message, and an
 * email as text and HTML. Callers hand in the statement and justification already masked: a
 * notification leaves Warden (Slack, mailboxes), so it carries no raw personal data, and the
 * review page shows the exact statement to the signed-in approver.
 */
import { visibleText, type ApprovalView } from './approvals.js';
import { blastRadiusText } from './blast-radius-text.js';
import { revealInvisible } from './invisible.js';

export interface ApprovalMessageInput {
  readonly view: ApprovalView;
  /** The statement, masked. */
  readonly statement: string;
  /** The justification, masked. */
  readonly justification?: string;
  /** `${PUBLIC_URL}/approve/{requestId}`: the only link; it carries no token. */
  readonly reviewUrl: string;
}

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
}

export interface ApprovalMessage {
  readonly requestId: string;
  readonly reviewUrl: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly slack: SlackMessage;
}

/** Slack allows 3,000 characters in a section's text; keep well inside it. */
const SLACK_STATEMENT_LIMIT = 2500;

/** Removes CR/LF (and other control characters) so a value can never start a new mail header. */
export function headerSafe(value: string): string {
  return (
    value
      // eslint-disable-next-line no-control-regex -- control characters are exactly what must go
      .replace(/[\r\n\u0000-\u001f\u007f\u2028\u2029]+/g, ' ')
      .replace(/\s{2,}/g, ' ')
      .trim()
  );
}

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Slack mrkdwn treats &, < and > as control characters; everything else is literal text. */
export function escapeSlack(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A link in text the requester wrote (an agent can be told to write anything) must not be one an
 * approver can click: "approve faster at https://warden-approve.evil.example/…" would send them to
 * a look-alike sign-in page. URLs with a scheme, and `www.` names, are shown defanged
 * (`hxxps://warden-approve[.]evil[.]example/…`), readable but not linked by mail or chat clients.
 * Only the message's own review and replay links are links.
 */
export function defangLinks(text: string): string {
  const host = (h: string) => h.replace(/\./g, '[.]');
  return text
    .replace(/\b([a-z][a-z0-9+.-]{1,15}):\/\/([^\s/?#<>"']*)/gi, (_m, scheme: string, authority: string) => {
      const shown = /^https?$/i.test(scheme) ? `${scheme.replace(/t/gi, 'x')}://` : `${scheme}[:]//`;
      return `${shown}${host(authority)}`;
    })
    .replace(/\bwww\.([^\s/?#<>"']+)/gi, (_m, rest: string) => `www[.]${host(rest)}`);
}

function truncate(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… (${text.length - max} more characters on the review page)`;
}

function classificationLine(view: ApprovalView): string {
  const c = view.classification;
  if (!c) return view.action;
  if (c.kind === 'sql') {
    const tables = c.tables.length > 0 ? ` on ${c.tables.join(', ')}` : '';
    return `${view.action} (${c.statements.map((s) => s.type).join(', ')})${tables}`;
  }
  if (c.kind === 'mcp') return `${view.action} (MCP tool ${c.tool})`;
  return `${view.action} (${c.iamAction})`;
}

function approvalsLine(view: ApprovalView): string {
  return view.requiredApprovals > 1 ? `${view.requiredApprovals} distinct approvers` : 'one approver';
}

export function buildApprovalMessage(input: ApprovalMessageInput): ApprovalMessage {
  const { view, reviewUrl } = input;
  // The review link is `${PUBLIC_URL}/approve/{id}`; the replay page lives beside it.
  const replayUrl = `${reviewUrl.replace(/\/approve\/[^/]*$/, '')}${view.links.replay}`;
  // Invisible characters (bidi overrides, zero-width, …) are shown as ⟨U+202E⟩ with a warning, so
  // a message cannot display a statement other than the one that runs.
  const visible = visibleText(input.statement, input.justification?.trim() || undefined);
  // Masked already (the exact form is on the review page), and its links defanged too: a string
  // literal can carry a lure as well as a justification can.
  const statement = defangLinks(visible.statement);
  const justification = visible.justification ? defangLinks(visible.justification) : '(none given)';
  const warnings = visible.warnings;
  const expires = view.expiresAt ?? 'no expiry';
  const classification = classificationLine(view);
  const subject = headerSafe(
    revealInvisible(
      `[Warden] ${view.requester} asks to run ${view.action} on ${view.target} (${view.risk} risk)`,
    ).text,
  ).slice(0, 200);

  const shown = (v: string) => revealInvisible(v).text;
  const facts: [string, string][] = [
    [
      'Requested by',
      shown(
        `${view.requester} (${view.requesterType})${view.onBehalfOf ? ` acting for ${view.onBehalfOf}` : ''}`,
      ),
    ],
    ['Target', shown(view.target)],
    ['Classification', shown(classification)],
    ['Risk', view.risk],
    ...(view.blastRadius
      ? ([['Blast radius', blastRadiusText(view.blastRadius)]] as [string, string][])
      : []),
    ['Justification', justification],
    ['Expires', expires],
    ['Needs', approvalsLine(view)],
  ];

  const text = [
    `${view.requester} asks to run ${view.action} on ${view.target} through Warden.`,
    '',
    ...facts.map(([k, v]) => `${k}: ${v}`),
    '',
    ...warnings.flatMap((w) => [w, '']),
    'Statement (masked):',
    statement,
    '',
    `Review and decide (sign-in required): ${reviewUrl}`,
    `The requester's session so far: ${replayUrl}`,
    '',
    `Request ${view.requestId}. Nothing runs until an approver decides; the request expires at ${expires}.`,
  ].join('\n');

  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<p><strong>${escapeHtml(view.requester)}</strong> asks to run <strong>${escapeHtml(view.action)}</strong> on <strong>${escapeHtml(view.target)}</strong> through Warden.</p>`,
    '<table cellpadding="4">',
    ...facts.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`),
    '</table>',
    ...warnings.map((w) => `<p style="color:#b00020"><strong>${escapeHtml(w)}</strong></p>`),
    '<p>Statement (masked):</p>',
    `<pre style="background:#f4f4f4;padding:8px;white-space:pre-wrap">${escapeHtml(statement)}</pre>`,
    `<p><a href="${escapeHtml(reviewUrl)}">Review and decide</a> (sign-in required) · <a href="${escapeHtml(replayUrl)}">the requester's session so far</a></p>`,
    `<p style="color:#666">Request ${escapeHtml(view.requestId)}. Nothing runs until an approver decides.</p>`,
    '</body></html>',
  ].join('\n');

  // Block Kit: a code block must not be closed early by backticks in the statement.
  const code = truncate(statement, SLACK_STATEMENT_LIMIT).replace(/```/g, "'''");
  const slack: SlackMessage = {
    text: `${view.requester} asks to run ${view.action} on ${view.target}: review at ${reviewUrl}`,
    blocks: [
      {
        type: 'header',
        text: {
          type: 'plain_text',
          text: truncate(`Approval needed: ${view.action} on ${view.target}`, 140),
        },
      },
      {
        type: 'section',
        fields: facts.map(([k, v]) => ({
          type: 'mrkdwn',
          text: `*${escapeSlack(k)}*\n${escapeSlack(truncate(v, 900))}`,
          // No link, channel or @-mention parsing of what the requester wrote.
          verbatim: true,
        })),
      },
      ...warnings.map((w) => ({
        type: 'section',
        text: { type: 'mrkdwn', text: `:warning: *${escapeSlack(w)}*` },
      })),
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*Statement (masked)*\n\`\`\`${escapeSlack(code)}\`\`\``,
          verbatim: true,
        },
      },
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            text: { type: 'plain_text', text: 'Review' },
            style: 'primary',
            url: reviewUrl,
            action_id: 'warden_review',
          },
          {
            type: 'button',
            text: { type: 'plain_text', text: 'Session replay' },
            url: replayUrl,
            action_id: 'warden_replay',
          },
        ],
      },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `Request \`${escapeSlack(view.requestId)}\` · expires ${escapeSlack(expires)}`,
          },
        ],
      },
    ],
  };

  return { requestId: view.requestId, reviewUrl, subject, text, html, slack };
}
