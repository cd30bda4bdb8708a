/**
 * The `explained` trail event as auditors see it: the replay page and `warden sessions replay`
 * name it, show the (masked) statement and the decision it revealed, and the page escapes a
 * statement an agent wrote to break out of it.
 */
import { describe, expect, it } from 'vitest';
import { formatReplay } from '../../bin/sessions-cli.js';
import { replayPage } from '../../lambdas/handlers/pages/replay-view.js';
import type { SessionSummary } from '../../lambdas/core/sessions.js';
import type { StoredTrailEvent } from '../../lambdas/core/trail.js';

const hostile = `SELECT '</pre><script>alert(1)</script>' FROM customers`;
const event: StoredTrailEvent = {
  type: 'explained',
  at: '2026-12-03T08:00:00.000Z',
  principal: 'Agent::"agent-demo"',
  principalName: 'agent-demo',
  target: 'demo',
  action: 'sql:write',
  outcome: 'approval_required',
  statement: hostile,
  determiningPolicies: ['demo-writes-need-approval'],
  detail: { asked: 'explain', policyVersion: 'v1', classification: { class: 'write' } },
  sessionId: 's-1',
  seq: 1,
  prevHash: '0'.repeat(64),
  hash: '1'.repeat(64),
};
const session = {
  sessionId: 's-1',
  startedAt: event.at,
  lastAt: event.at,
  principals: [event.principal],
  principalNames: [event.principalName],
  targets: ['demo'],
  outcomes: ['approval_required'],
  statuses: [],
} as unknown as SessionSummary;

describe('the explained event', () => {
  it('reads as an explain in the terminal replay, with the statement and what it revealed', () => {
    const out = formatReplay({ session, events: [event] });
    expect(out).toContain('explained (nothing run)');
    expect(out).toContain(hostile);
    expect(out).toContain('sql:write would be approval_required');
  });

  it('reads as an explain on the replay page, escaped', () => {
    const page = replayPage({
      session,
      events: [event],
      verification: { ok: true, events: 1, lastSeq: 1, problems: [] },
      viewer: 'dave',
    });
    const html = String(page.body);
    expect(html).toContain('Explained (nothing run)');
    expect(html).toContain('would be');
    expect(html).toContain('approval_required');
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});
