/**
 * The invariant checker of the load and fault tests must fail when an invariant breaks; otherwise
 * a green load run proves nothing. Each case feeds it one synthetic breach.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants, findSecrets, type InvariantInput } from '../../lib/local/invariants.js';
import type { RequestRecord } from '../../lambdas/core/types.js';

const READ = 'SELECT 1 AS one';
const WRITE = "UPDATE orders SET status = 'x' WHERE id = 1";

function rec(partial: Partial<RequestRecord> & { sql: string }): RequestRecord {
  const { sql, ...rest } = partial;
  const write = !sql.startsWith('SELECT');
  return {
    id: `r_${Math.random().toString(36).slice(2, 14)}`,
    target: 'demo',
    principal: 'User::"alice"',
    principalName: 'alice',
    principalType: 'User',
    groups: ['engineers'],
    sessionId: 's_1',
    createdAt: '2025-01-01T00:00:00Z',
    updatedAt: '2025-01-01T00:00:00Z',
    status: 'executed',
    operation: { kind: 'sql', sql },
    classification: {
      kind: 'sql',
      class: write ? 'write' : 'read',
      statements: [],
      tables: [],
      functions: [],
      reasons: [],
    },
    decision: {
      outcome: 'allow',
      action: write ? 'sql:write' : 'sql:read',
      determiningPolicies: [],
      errors: [],
      policyVersion: 'v',
    },
    version: 2,
    ...rest,
  };
}

function input(over: Partial<InvariantInput>): InvariantInput {
  return { statementLog: [], requests: [], trail: [], logs: [], secrets: [], ...over };
}

const violations = (i: InvariantInput, id: number) => checkInvariants(i).find((r) => r.id === id)!.violations;

describe('invariant checker', () => {
  it('passes a consistent run', () => {
    const results = checkInvariants(
      input({
        statementLog: [{ sql: READ, ok: true, role: 'warden_ro' }],
        requests: [rec({ sql: READ })],
      }),
    );
    expect(results.flatMap((r) => r.violations)).toEqual([]);
  });

  it('flags a statement the database ran that no audit record holds', () => {
    const v = violations(input({ statementLog: [{ sql: READ, ok: true, role: 'warden_ro' }] }), 1);
    expect(v).toHaveLength(1);
  });

  it('flags a statement whose record never reached running (e.g. still pending)', () => {
    const v = violations(
      input({
        statementLog: [{ sql: WRITE, ok: true, role: 'warden_rw' }],
        requests: [rec({ sql: WRITE, status: 'pending_approval' })],
      }),
      1,
    );
    expect(v[0]).toMatch(/pending_approval/);
  });

  it('flags a write that ran without an allow or enough approvals', () => {
    const pending = rec({
      sql: WRITE,
      status: 'executed',
      decision: {
        outcome: 'approval_required',
        action: 'sql:write',
        determiningPolicies: [],
        errors: [],
        policyVersion: 'v',
      },
      requiredApprovals: 1,
      votes: [{ by: 'User::"alice"', byName: 'alice', decision: 'approve', at: 'x' }],
    });
    const v = violations(
      input({ statementLog: [{ sql: WRITE, ok: true, role: 'warden_rw' }], requests: [pending] }),
      2,
    );
    expect(v[0]).toMatch(/without an allow or an approval/);
  });

  it('flags a read that ran as the write user', () => {
    const v = violations(
      input({ statementLog: [{ sql: READ, ok: true, role: 'warden_rw' }], requests: [rec({ sql: READ })] }),
      2,
    );
    expect(v[0]).toMatch(/write user/);
  });

  it('flags a request that reached the database twice', () => {
    const v = violations(
      input({
        statementLog: [
          { sql: READ, ok: false, role: 'warden_ro' },
          { sql: READ, ok: true, role: 'warden_ro' },
        ],
        requests: [rec({ sql: READ, status: 'failed' })],
      }),
      4,
    );
    expect(v[0]).toMatch(/2 times for 1 request/);
  });

  it('does not count the bounded re-run of an oversized read as a second execution', () => {
    const results = checkInvariants(
      input({
        statementLog: [
          { sql: READ, ok: false, role: 'warden_ro' },
          { sql: `SELECT * FROM (\n${READ}\n) AS warden_bounded LIMIT 500`, ok: true, role: 'warden_ro' },
        ],
        requests: [rec({ sql: READ })],
      }),
    );
    expect(results.flatMap((r) => r.violations)).toEqual([]);
  });

  it('flags an approval decided twice, a requester vote and an approved record with a deny', () => {
    const base = {
      sql: WRITE,
      decision: {
        outcome: 'approval_required' as const,
        action: 'sql:write',
        determiningPolicies: [],
        errors: [],
        policyVersion: 'v',
      },
      requiredApprovals: 1,
      decidedBy: 'bob',
    };
    const twice = rec({
      ...base,
      status: 'approved',
      votes: [{ by: 'User::"bob"', byName: 'bob', decision: 'approve', at: 'x' }],
    });
    const self = rec({
      ...base,
      status: 'approved',
      votes: [
        { by: 'User::"alice"', byName: 'alice', decision: 'approve', at: 'x' },
        { by: 'User::"bob"', byName: 'bob', decision: 'approve', at: 'y' },
      ],
    });
    const both = rec({
      ...base,
      status: 'approved',
      votes: [
        { by: 'User::"bob"', byName: 'bob', decision: 'deny', at: 'x' },
        { by: 'User::"erin"', byName: 'erin', decision: 'approve', at: 'y' },
      ],
    });
    const terminal = {
      type: 'approval_decided',
      requestId: twice.id,
      detail: JSON.stringify({ terminal: true }),
    };
    const v = violations(input({ requests: [twice, self, both], trail: [terminal, terminal] }), 3);
    expect(v.some((x) => x.includes(twice.id) && x.includes('2 terminal'))).toBe(true);
    expect(v.some((x) => x.includes(self.id) && x.includes('requester voted'))).toBe(true);
    expect(v.some((x) => x.includes(both.id) && x.includes('and a deny'))).toBe(true);
  });

  it('flags raw PII or a token in logs, records or trail without printing the value', () => {
    const ssn = '123-45-6789';
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
    const v = violations(
      input({
        logs: [`{"msg":"oops","value":"${ssn}"}`],
        trail: [{ type: 'error', detail: `bearer ${token}` }],
        secrets: [
          { kind: 'SSN', value: ssn },
          { kind: 'bearer token', value: token },
        ],
      }),
      5,
    );
    expect(v).toHaveLength(2);
    expect(v.join(' ')).not.toContain(ssn);
    expect(v.join(' ')).not.toContain(token);
  });

  it('flags an explain answered 200 that left no explained event (7)', () => {
    const trail = [
      { type: 'explained', statement: "SELECT id FROM customers WHERE ssn = '[SSN]' AND 'run-1' <> ''" },
      // A refusal of the same statement is not its record.
      {
        type: 'request_refused',
        statement: "SELECT id FROM customers WHERE ssn = '[SSN]' AND 'run-2' <> ''",
      },
    ];
    expect(violations(input({ trail, answeredExplains: ['run-1'] }), 7)).toEqual([]);
    expect(violations(input({ trail, answeredExplains: ['run-1', 'run-2'] }), 7)).toEqual([
      'an explain answered 200 has no explained event (run-2)',
    ]);
  });

  describe('the AWS path (8), from the calls the service ran', () => {
    function awsRec(action: string, cls: 'read' | 'write', over: Partial<RequestRecord> = {}): RequestRecord {
      return rec({
        sql: 'unused',
        target: 'demo-aws',
        operation: { kind: 'aws', service: 'dynamodb', action, input: {} },
        classification: {
          kind: 'aws',
          class: cls,
          service: 'dynamodb',
          action,
          iamAction: `dynamodb:${action}`,
          accessLevel: cls === 'read' ? 'Read' : 'Write',
          resources: [],
        } as unknown as RequestRecord['classification'],
        decision: {
          outcome: 'allow',
          action: `aws:${cls}`,
          determiningPolicies: [],
          errors: [],
          policyVersion: 'v',
        },
        ...over,
      });
    }

    it('passes a read and a write that ran for their records, a read sent twice by the retry', () => {
      const read = awsRec('GetItem', 'read');
      const write = awsRec('PutItem', 'write');
      const i = input({
        requests: [read, write],
        awsCalls: [
          { action: 'dynamodb:GetItem', requestId: read.id },
          { action: 'dynamodb:GetItem', requestId: read.id },
          { action: 'dynamodb:PutItem', requestId: write.id },
        ],
      });
      expect(violations(i, 8)).toEqual([]);
      expect(checkInvariants(i).find((r) => r.id === 8)!.checked).toBe(3);
    });

    it('flags a call no Warden session signed, and one for a request with no record', () => {
      const v = violations(
        input({
          awsCalls: [{ action: 'dynamodb:Scan' }, { action: 'dynamodb:GetItem', requestId: 'r_gone' }],
        }),
        8,
      );
      expect(v).toEqual([
        'dynamodb:Scan was signed by no session Warden opened for a request',
        'dynamodb:GetItem ran for r_gone, which has no audit record',
      ]);
    });

    it('flags a write that ran unapproved, one still pending, and a call other than the recorded one', () => {
      const unapproved = awsRec('PutItem', 'write', {
        decision: {
          outcome: 'approval_required',
          action: 'aws:write',
          determiningPolicies: [],
          errors: [],
          policyVersion: 'v',
        },
        status: 'running',
      });
      const pending = awsRec('PutItem', 'write', { status: 'pending_approval' });
      const swapped = awsRec('GetItem', 'read');
      const v = violations(
        input({
          requests: [unapproved, pending, swapped],
          awsCalls: [
            { action: 'dynamodb:PutItem', requestId: unapproved.id },
            { action: 'dynamodb:PutItem', requestId: pending.id },
            { action: 'dynamodb:DeleteItem', requestId: swapped.id },
          ],
        }),
        8,
      );
      expect(v).toEqual([
        `dynamodb:PutItem ran for ${unapproved.id} (approval_required) without an allow or an approval`,
        `dynamodb:PutItem ran for ${pending.id}, recorded pending_approval`,
        `dynamodb:DeleteItem ran for ${swapped.id}, whose record is for dynamodb:GetItem`,
      ]);
    });

    it('flags a write that reached the service twice (a retry after a lost answer), and a read three times', () => {
      const write = awsRec('UpdateItem', 'write');
      const read = awsRec('Query', 'read');
      const v = violations(
        input({
          requests: [write, read],
          awsCalls: [
            { action: 'dynamodb:UpdateItem', requestId: write.id },
            { action: 'dynamodb:UpdateItem', requestId: write.id },
            { action: 'dynamodb:Query', requestId: read.id },
            { action: 'dynamodb:Query', requestId: read.id },
            { action: 'dynamodb:Query', requestId: read.id },
          ],
        }),
        8,
      );
      expect(v).toEqual([
        `${write.id} (not a read) reached the AWS service 2 times`,
        `${read.id} (a read) reached the AWS service 3 times`,
      ]);
    });
  });

  it('finds every secret that occurs, among thousands, in one pass', () => {
    const secrets = Array.from({ length: 5000 }, (_, i) => ({
      kind: 'email',
      value: `user${i}@example.com`,
    }));
    const text = `x user17@example.com y user4999@example.com z user50@example.org`;
    expect(
      findSecrets(text, secrets)
        .map((s) => s.value)
        .sort(),
    ).toEqual(['user17@example.com', 'user4999@example.com']);
  });
});
