/** Invisible characters are shown to people as ⟨U+…⟩ with a warning; the exact text is kept. */
import { describe, expect, it } from 'vitest';
import { approvalView } from '../../lambdas/core/approvals.js';
import { invisibleWarning, jsonShowingInvisible, revealInvisible } from '../../lambdas/core/invisible.js';
import { buildApprovalMessage } from '../../lambdas/core/notification-content.js';
import type { RequestRecord } from '../../lambdas/core/types.js';
import { reviewPageBody } from '../../lambdas/handlers/pages/approve-view.js';

const BIDI = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'];
const ZERO_WIDTH = ['\u200b', '\u200c', '\u200d', '\ufeff', '\u2060', '\u200e', '\u200f', '\u061c', '\u00ad'];
const OTHERS = ['\u{e0041}', '\ufe0f', '\u3164', '\u001b', '\r', '\u0085', '\u2028'];

/** Trojan Source: the bytes delete every order, while a bidi-aware display shows a harmless filter. */
const TROJAN = "DELETE FROM orders WHERE status = 'x\u202e' OR 1=1 --\u2066' AND id = 7\u2069";

function record(sql: string, justification?: string): RequestRecord {
  return {
    id: 'r_abcdefghijklmnop',
    target: 'demo',
    principal: 'User::"alice"',
    principalName: 'alice',
    principalType: 'User',
    groups: ['engineers'],
    sessionId: 's',
    createdAt: '2026-01-01T10:00:00.000Z',
    updatedAt: '2026-01-01T10:00:00.000Z',
    status: 'pending_approval',
    operation: { kind: 'sql', sql },
    ...(justification === undefined ? {} : { justification }),
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
}

const hasInvisible = (s: string) => [...BIDI, ...ZERO_WIDTH, ...OTHERS].some((c) => s.includes(c));

describe('revealInvisible', () => {
  it('replaces every bidi control, zero-width and other invisible character with its code point', () => {
    for (const ch of [...BIDI, ...ZERO_WIDTH, ...OTHERS]) {
      const label = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      const out = revealInvisible(`a${ch}b`);
      expect(out.text).toBe(`a⟨${label}⟩b`);
      expect(out.found).toEqual([expect.objectContaining({ codePoint: label, count: 1 })]);
    }
  });

  it('leaves ordinary text, newlines, tabs and non-Latin scripts alone', () => {
    const text = "SELECT 'Grüße', 'שלום', '東京', '🙂'\n\tFROM t";
    expect(revealInvisible(text)).toEqual({ text, found: [] });
    expect(invisibleWarning('statement', [])).toBeUndefined();
  });

  it('names what it found, with counts, in the warning', () => {
    const { text, found } = revealInvisible(TROJAN);
    expect(text).toBe("DELETE FROM orders WHERE status = 'x⟨U+202E⟩' OR 1=1 --⟨U+2066⟩' AND id = 7⟨U+2069⟩");
    expect(invisibleWarning('statement', found)).toMatch(
      /^Warning: the statement contains 3 invisible characters \(U\+202E RIGHT-TO-LEFT OVERRIDE, U\+2066 LEFT-TO-RIGHT ISOLATE, U\+2069 POP DIRECTIONAL ISOLATE\)/,
    );
  });

  it('writes JSON for a terminal with \\u escapes that parse back to the exact text', () => {
    const value = { statement: TROJAN, esc: '\u001b[2J', tag: '\u{e0041}' };
    const out = jsonShowingInvisible(value);
    expect(hasInvisible(out)).toBe(false);
    expect(out).toContain('\\u202e');
    expect(JSON.parse(out)).toEqual(value);
  });
});

describe('what approvers are shown', () => {
  const justification = 'routine\u200b cleanup \u202eKO-4711';
  const view = approvalView(record(TROJAN, justification));

  it('keeps the exact statement that runs, and a visible form with warnings beside it', () => {
    expect(view.statement).toBe(TROJAN);
    expect(view.operation).toEqual({ kind: 'sql', sql: TROJAN });
    expect(view.justification).toBe(justification);
    expect(hasInvisible(view.visible.statement)).toBe(false);
    expect(view.visible.justification).toBe('routine⟨U+200B⟩ cleanup ⟨U+202E⟩KO-4711');
    expect(view.visible.warnings).toHaveLength(2);
  });

  it('gives a clean request no warnings', () => {
    expect(approvalView(record('UPDATE t SET a = 1 WHERE id = 2', 'ok')).visible.warnings).toEqual([]);
  });

  it('renders the page with the markers and a warning, and no raw invisible character', () => {
    const page = reviewPageBody({
      view,
      canVote: true,
      csrfToken: 'x',
      viewerName: 'bob',
      now: new Date(),
    }).value;
    expect(hasInvisible(page)).toBe(false);
    expect(page).toContain('⟨U+202E⟩');
    expect(page).toContain('role="alert"');
    expect(page).toMatch(/invisible characters/);
  });

  it('shows the markers and the warning in the email (text and HTML) and in Slack', () => {
    const message = buildApprovalMessage({
      view,
      statement: TROJAN,
      justification,
      reviewUrl: 'https://warden.example.com/approve/r_abcdefghijklmnop',
    });
    for (const part of [message.text, message.html, JSON.stringify(message.slack), message.subject]) {
      expect(hasInvisible(part)).toBe(false);
    }
    for (const part of [message.text, message.html, JSON.stringify(message.slack)]) {
      expect(part).toContain('⟨U+202E⟩');
      expect(part).toContain('⟨U+2066⟩');
      expect(part).toContain('⟨U+200B⟩');
      expect(part).toMatch(/Warning: the statement contains 3 invisible characters/);
      expect(part).toMatch(/Warning: the justification contains 2 invisible characters/);
    }
  });
});
