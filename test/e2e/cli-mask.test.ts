/** `npx warden mask` as users run it: JSON lines in, masked JSON lines out, counts on stderr. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function runMask(input: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/warden.js', 'mask'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ stdout, stderr, code }));
    child.stdin.end(input);
  });
}

describe('warden mask', () => {
  it('masks each JSON line with the default detectors and reports counts on stderr', async () => {
    const lines = [
      { id: 'ORD-2024-000123', email: 'ada@example.com', note: 'paid with 4111 1111 1111 1111' },
      { ssn: '123-45-6789', iban: 'DE89 3704 0044 0532 0130 00', at: '2024-01-15T10:00:00Z' },
      'call +44 20 7946 0958 from 10.0.0.1',
      // Formats the detectors learned from data nobody here wrote (issue 14).
      {
        note: 'Mobile: 0490 75 40 81, desk (020) 7946 0958x12, fax 345-899-3560x4587',
        iban: 'gb82-west-1234-5698-7654-32',
        ssn: '123 45 6789',
        memo: 'ssn 078051120',
        cards: ['213176828496175', '3530111333300000', '630490017740292441'],
        email: 'jörg.müller+news@bücher.example.de',
      },
      { order: 'ORD-2024-000123', total: '1234.56', at: '2024-01-15 12:34:56', isbn: '978-3-16-148410-0' },
    ];
    const { stdout, stderr, code } = await runMask(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    expect(code).toBe(0);
    const out = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out).toHaveLength(5);
    expect(out[0]).toEqual({ id: 'ORD-2024-000123', email: '[EMAIL]', note: 'paid with [CARD]' });
    expect(out[1].at).toBe('2024-01-15T10:00:00Z');
    expect(JSON.stringify(out)).not.toMatch(
      /ada@example|4111 1111|123-45-6789|DE89 3704|7946 0958|10\.0\.0\.1/,
    );
    expect(out[3]).toEqual({
      note: 'Mobile: [PHONE], desk [PHONE], fax [PHONE]',
      iban: '[IBAN]',
      ssn: '[SSN]',
      memo: 'ssn [SSN]',
      cards: ['[CARD]', '[CARD]', '[CARD]'],
      email: '[EMAIL]',
    });
    expect(out[4]).toEqual(lines[4]);
    const counts = JSON.parse(stderr.trim().split('\n').pop()!).masked;
    expect(counts).toEqual({ EMAIL: 2, CARD: 4, SSN: 3, IBAN: 2, PHONE: 4, IPV4: 1 });
  });
});
