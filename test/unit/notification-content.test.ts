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
