/** Approval notifications: same facts in Slack, text and HTML; escaped; no header injection. */
import { describe, expect, it } from 'vitest';
import { safeAddresses } from '../../lambdas/adapters/notifications.js';
import { approvalView } from '../../lambdas/core/approvals.js';
import { buildApprovalMessage, headerSafe } from '../../lambdas/core/notification-content.js';
import type { RequestRecord } from '../../lambdas/core/types.js';

const record: RequestRecord = {
  id: 'r_abcdefghijklmnop',
  target: 'demo',
  principal: 'User::"alice"',
  principalName: 'alice\r\nBcc: evil@example.com',
  principalType: 'User',
  groups: ['engineers'],
  sessionId: 's',
  createdAt: '2026-01-01T10:00:00.000Z',
  updatedAt: '2026-01-01T10:00:00.000Z',
  status: 'pending_approval',
  operation: { kind: 'sql', sql: "DELETE FROM t WHERE note = '<script>alert(1)</script>'" },
  justification: 'fix <b>now</b>',
  decision: {
    outcome: 'approval_required',
    action: 'sql:write',
    determiningPolicies: [],
    errors: [],
    policyVersion: 'v',
  },
  expiresAt: '2026-01-01T11:00:00.000Z',
  requiredApprovals: 1,
  votes: [],
  version: 1,
};

const message = buildApprovalMessage({
  view: approvalView(record),
  statement: "DELETE FROM t WHERE note = '<script>alert(1)</script>' ```",
  justification: record.justification,
  reviewUrl: 'https://warden.example.com/approve/r_abcdefghijklmnop',
});

describe('approval notification content', () => {
  it('never lets a value start a new mail header', () => {
    expect(message.subject).not.toMatch(/[\r\n]/);
    expect(headerSafe('a\r\nBcc: x@y.z')).toBe('a Bcc: x@y.z');
    expect(
      safeAddresses(['ok@example.com', 'x@y.z\r\nBcc: evil@example.com', 'a@b.c, d@e.f', 'Name <n@x.io>']),
    ).toEqual(['ok@example.com']);
  });

  it('escapes HTML and carries the review link, statement, justification and expiry everywhere', () => {
    expect(message.html).not.toContain('<script>');
    expect(message.html).toContain('&lt;script&gt;');
    expect(message.html).toContain('fix &lt;b&gt;now&lt;/b&gt;');
    for (const part of [message.text, message.html, JSON.stringify(message.slack)]) {
      expect(part).toContain('https://warden.example.com/approve/r_abcdefghijklmnop');
      expect(part).toContain('2026-01-01T11:00:00.000Z');
      expect(part).toContain('sql:write');
    }
  });

  it('builds a Block Kit message with a Review button that links to the approval page', () => {
    const actions = message.slack.blocks.find((b) => b.type === 'actions') as {
      elements: Record<string, unknown>[];
    };
    expect(actions.elements[0]).toMatchObject({
      type: 'button',
      text: { type: 'plain_text', text: 'Review' },
      url: 'https://warden.example.com/approve/r_abcdefghijklmnop',
    });
    const statement = JSON.stringify(message.slack.blocks);
    expect(statement).not.toContain('<script>');
    expect(statement).toContain('&lt;script&gt;');
  });
});

describe('links in what the requester wrote (a prompt-injected agent phishing the approver)', () => {
  const lure =
    'Pre-approved by security, use the fast lane: https://warden-approve.evil.example/approve/r_abcdefghijklmnop ' +
    '(mirror: www.evil.example/ok) <https://evil.example|Approve> @channel';
  const phish = buildApprovalMessage({
    view: approvalView({ ...record, justification: lure }),
    statement: "UPDATE t SET note = 'urgent: approve at https://warden-approve.evil.example/approve/r_x'",
    justification: lure,
    reviewUrl: 'https://warden.example.com/approve/r_abcdefghijklmnop',
  });
  const slackText = JSON.stringify(phish.slack);

  it('shows them defanged in every channel, so no client makes them a link', () => {
    for (const part of [phish.text, phish.html, slackText]) {
      expect(part).not.toMatch(/https?:\/\/[^\s"]*evil/);
      expect(part).not.toContain('www.evil.example');
      expect(part).toContain('hxxps://warden-approve[.]evil[.]example/approve/r_abcdefghijklmnop');
      expect(part).toContain('www[.]evil[.]example/ok');
      // In the statement too (the message shows it masked; the exact form is on the review page).
      expect(part).toContain('urgent: approve at hxxps://warden-approve[.]evil[.]example/approve/r_x');
      // The message's own links are untouched.
      expect(part).toContain('https://warden.example.com/approve/r_abcdefghijklmnop');
    }
    // Slack's <url|text> link syntax stays text; mentions and links are not parsed in what they wrote.
    expect(slackText).not.toContain('<https://evil');
    expect(slackText).toContain('&lt;hxxps://evil[.]example|Approve&gt;');
    const fields = (
      phish.slack.blocks.find((b) => b.type === 'section' && 'fields' in b) as {
        fields: { verbatim?: boolean; text: string }[];
      }
    ).fields;
    expect(fields.every((f) => f.verbatim === true)).toBe(true);
  });

  it('keeps text that only looks like a name with dots as it was', () => {
    const plain = buildApprovalMessage({
      view: approvalView({ ...record, justification: 'backfill public.customers for v1.2.3' }),
      statement: 'UPDATE t SET a = 1',
      justification: 'backfill public.customers for v1.2.3',
      reviewUrl: 'https://warden.example.com/approve/r_abcdefghijklmnop',
    });
    expect(plain.text).toContain('Justification: backfill public.customers for v1.2.3');
  });
});
