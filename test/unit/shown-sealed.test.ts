/**
 * The shown form of a request (what is stored and shown) and the sealed exact form (what runs after
 * approval). Written as a prompt-injected agent would: raw values in literals of every kind, in
 * parameters, in sensitive-column contexts where no detector would recognise them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createKmsSealer, createLocalSealer, sealerFromEnv } from '../../lambdas/adapters/sealing.js';
import { initSqlClassifier } from '../../lambdas/core/classify/sql.js';
import { createMasker } from '../../lambdas/core/masking/index.js';
import { SealError } from '../../lambdas/core/sealing.js';
import { literalEnd, showOperation, showSql, WITHHELD_STATEMENT } from '../../lambdas/core/shown.js';
import type { ColumnRule } from '../../lambdas/core/masking/types.js';

const RULES: ColumnRule[] = [
  { column: 'customers.ssn', strategy: 'redact', type: 'SSN' },
  { column: 'customers.card_number', strategy: 'partial', type: 'CARD' },
  { column: 'customers.email', strategy: 'hash', type: 'EMAIL' },
];
const masker = createMasker({ rules: RULES, hashKey: 'k'.repeat(40) });
const ctx = { masker, rules: RULES };
const SSN = '583-05-0905';
const SSN_BARE = '583050905';
const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';

beforeAll(async () => {
  await initSqlClassifier();
});

const shown = (sql: string, parameters?: { name: string; value: string | number | null }[]) =>
  showSql({ kind: 'sql', sql, ...(parameters ? { parameters } : {}) }, ctx);

describe('shown form of SQL', () => {
  it('masks a literal compared with a sensitive column, whatever its shape', () => {
    const out = shown(`SELECT id FROM customers WHERE ssn = '${SSN_BARE}' AND status = 'active'`);
    expect(out.sql).not.toContain(SSN_BARE);
    expect(out.sql).toContain("status = 'active'"); // a neutral literal stays readable
    expect(out.sql).toMatch(/ssn = '\[SSN\]'/);
  });

  it('masks literals inside functions of a sensitive column, LIKE, IN lists, casts and aliases', () => {
    for (const sql of [
      `SELECT 1 FROM customers c WHERE substr(c.ssn, 1, 3) = '583'`,
      `SELECT 1 FROM customers WHERE ssn LIKE '583%'`,
      `SELECT 1 FROM customers WHERE ssn IN ('${SSN_BARE}', '111223333')`,
      `SELECT 1 FROM customers WHERE replace(ssn, '-', '') = '${SSN_BARE}'::text`,
      `SELECT 1 FROM public.customers x WHERE x.ssn = E'583\\x2d05\\x2d0905'`,
      `SELECT 1 FROM customers WHERE ssn = $$${SSN_BARE}$$`,
      `SELECT 1 FROM customers WHERE ssn = '583'\n  '050905'`,
      `SELECT 1 FROM customers WHERE ssn::bigint = ${SSN_BARE}`,
      `SELECT 1 FROM customers WHERE ssn = (SELECT '${SSN_BARE}')`,
      `SELECT 1 FROM customers WHERE ssn IN (SELECT x FROM (VALUES ('${SSN_BARE}')) v(x))`,
      `SELECT 1 FROM customers WHERE EXISTS (SELECT 1 FROM customers c2 WHERE c2.ssn = '${SSN_BARE}')`,
    ]) {
      const out = shown(sql).sql;
      expect(out, sql).not.toMatch(/583(?!%)|050905/);
    }
  });

  it('masks values of sensitive columns in UPDATE … SET, INSERT (with or without a column list) and DELETE', () => {
    const upd = shown(`UPDATE customers SET ssn = '${SSN_BARE}', name = 'Jane' WHERE id = 7`).sql;
    expect(upd).not.toContain(SSN_BARE);
    expect(upd).toContain("name = 'Jane'");
    expect(upd).toContain('id = 7');
    const ins = shown(`INSERT INTO customers (name, ssn) VALUES ('Jane', '${SSN_BARE}')`).sql;
    expect(ins).not.toContain(SSN_BARE);
    expect(ins).toContain("'Jane'");
    const noCols = shown(`INSERT INTO customers VALUES (1, 'Jane', '${SSN_BARE}')`).sql;
    expect(noCols).not.toContain(SSN_BARE);
    const del = shown(`DELETE FROM customers WHERE ssn = '${SSN_BARE}' AND id = 3`).sql;
    expect(del).not.toContain(SSN_BARE);
    expect(del).toContain('id = 3');
  });

  it('gives a hashed column its keyed token and a partial one its last four', () => {
    const out = shown(`SELECT 1 FROM customers WHERE email = '${EMAIL}' OR card_number = '${CARD}'`).sql;
    expect(out).not.toContain('jane.doe');
    expect(out).toMatch(/email = 'hmac:[0-9a-f]{64}'/);
    expect(out).toContain("'**** **** **** 1111'");
  });

  it('masks detector-shaped literals anywhere, and PII in comments and identifiers', () => {
    const out = shown(
      `SELECT '${EMAIL}' AS a, '${SSN}' AS b /* card ${CARD} */ FROM orders WHERE note = 'call ${EMAIL}' -- ${SSN}`,
    ).sql;
    for (const raw of [EMAIL, SSN, CARD, '4111111111111111']) expect(out).not.toContain(raw);
    expect(out).toContain('FROM orders');
  });

  it('masks parameters: by the column they are compared with, by their name, and by the detectors', () => {
    const out = shown('SELECT 1 FROM customers WHERE ssn = :s AND id = :id AND note = :n', [
      { name: 's', value: SSN_BARE },
      { name: 'id', value: 7 },
      { name: 'n', value: `mail ${EMAIL}` },
    ]);
    expect(JSON.stringify(out.parameters)).not.toContain(SSN_BARE);
    expect(JSON.stringify(out.parameters)).not.toContain(EMAIL);
    expect(out.parameters?.find((p) => p.name === 'id')?.value).toBe(7);
    const byName = shown('SELECT 1 FROM customers WHERE id = :id', [{ name: 'ssn', value: SSN_BARE }]);
    expect(JSON.stringify(byName.parameters)).not.toContain(SSN_BARE);
    expect(shown('SELECT :x', [{ name: 'x', value: SSN }]).parameters?.[0].value).not.toBe(SSN);
  });

  it('keeps non-ASCII text aligned (byte offsets from the parser)', () => {
    const out = shown(`SELECT 'é ü' AS x FROM customers WHERE name = 'Zoë' AND ssn = '${SSN_BARE}'`).sql;
    expect(out).toContain("'é ü'");
    expect(out).toContain("name = 'Zoë'");
    expect(out).not.toContain(SSN_BARE);
  });

  it('leaves a statement with nothing sensitive byte for byte as sent', () => {
    const sql = "UPDATE orders SET status = 'shipped' WHERE id = 1 AND amount > 10.5";
    expect(shown(sql).sql).toBe(sql);
  });

  it('withholds every literal of unparseable text (it may be kept in the trail of its refusal)', () => {
    const out = shown(`SELEC '${SSN_BARE}', ${SSN_BARE} FROM customers WHERE ssn = $$${SSN_BARE}$$`, [
      { name: 'p', value: SSN_BARE },
    ]);
    expect(JSON.stringify(out)).not.toContain(SSN_BARE);
    expect(out.sql).toContain('SELEC');
  });

  it('finds where each kind of literal ends', () => {
    const cases: [string, string][] = [
      ["'a''b' x", "'a''b'"],
      ["E'a\\'b' x", "E'a\\'b'"],
      ['$t$ a $t$ x', '$t$ a $t$'],
      ["U&'d' x", "U&'d'"],
      ['-12.5e3 x', '-12.5e3'],
      ['0x1F x', '0x1F'],
      ["'a'\n 'b' x", "'a'\n 'b'"],
    ];
    for (const [text, token] of cases) expect(literalEnd(text, 0), text).toBe(token.length);
    expect(literalEnd("'unterminated", 0)).toBe(-1);
    expect(WITHHELD_STATEMENT).toMatch(/withheld/);
  });
});

describe('shown form of AWS input and MCP arguments', () => {
  it('masks AWS input and MCP tool arguments with the detectors', () => {
    const aws = showOperation(
      {
        kind: 'aws',
        service: 'dynamodb',
        action: 'PutItem',
        input: { Item: { email: { S: EMAIL }, ssn: { S: SSN } } },
      },
      ctx,
    );
    expect(JSON.stringify(aws)).not.toMatch(/jane\.doe|583-05-0905/);
    const mcp = showOperation(
      { kind: 'mcp', tool: 'echo', argumentsJson: JSON.stringify({ message: `card ${CARD}` }) },
      ctx,
    );
    expect(JSON.stringify(mcp)).not.toContain(CARD);
  });
});

describe('sealing the exact form', () => {
  const key = Buffer.alloc(32, 9);
  const payload = {
    operation: { kind: 'sql' as const, sql: `UPDATE customers SET ssn = '${SSN_BARE}' WHERE id = 1` },
    justification: `customer ${EMAIL} asked`,
  };

  it('round-trips byte for byte and keeps nothing readable in the envelope', async () => {
    const sealer = createLocalSealer(key);
    const sealed = await sealer.seal('r_aaaaaaaaaaaa', payload);
    expect(JSON.stringify(sealed)).not.toMatch(/583050905|jane/);
    expect(await sealer.open('r_aaaaaaaaaaaa', sealed)).toEqual(payload);
    // Two seals of the same payload share nothing (fresh data key and IV each time).
    const again = await sealer.seal('r_aaaaaaaaaaaa', payload);
    expect(again.data).not.toBe(sealed.data);
    expect(again.key).not.toBe(sealed.key);
  });

  it('refuses an altered envelope, one moved to another request, and a wrong key', async () => {
    const sealer = createLocalSealer(key);
    const sealed = await sealer.seal('r_aaaaaaaaaaaa', payload);
    const flip = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      b[0] ^= 1;
      return b.toString('base64');
    };
    await expect(sealer.open('r_aaaaaaaaaaaa', { ...sealed, data: flip(sealed.data) })).rejects.toThrow(
      SealError,
    );
    await expect(sealer.open('r_aaaaaaaaaaaa', { ...sealed, tag: flip(sealed.tag) })).rejects.toThrow(
      SealError,
    );
    await expect(sealer.open('r_aaaaaaaaaaaa', { ...sealed, key: flip(sealed.key) })).rejects.toThrow(
      SealError,
    );
    await expect(sealer.open('r_bbbbbbbbbbbb', sealed)).rejects.toThrow(SealError);
    await expect(createLocalSealer(Buffer.alloc(32, 1)).open('r_aaaaaaaaaaaa', sealed)).rejects.toThrow(
      SealError,
    );
  });

  it('uses KMS GenerateDataKey and Decrypt with the request id as encryption context', async () => {
    const calls: { name: string; input: Record<string, unknown> }[] = [];
    const plain = Buffer.alloc(32, 3);
    const client = {
      send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        calls.push({ name: command.constructor.name, input: command.input });
        if (command.constructor.name === 'GenerateDataKeyCommand')
          return { Plaintext: new Uint8Array(plain), CiphertextBlob: new Uint8Array([1, 2, 3]) };
        return { Plaintext: new Uint8Array(plain) };
      },
    };
    const sealer = createKmsSealer({
      keyId: 'arn:aws:kms:eu-west-1:111122223333:key/seal',
      client: client as never,
    });
    const sealed = await sealer.seal('r_cccccccccccc', payload);
    expect(await sealer.open('r_cccccccccccc', sealed)).toEqual(payload);
    expect(calls.map((c) => c.name)).toEqual(['GenerateDataKeyCommand', 'DecryptCommand']);
    for (const c of calls)
      expect(c.input.EncryptionContext).toEqual({ warden: 'warden:request:r_cccccccccccc' });
    expect(calls[0].input.KeySpec).toBe('AES_256');
  });

  it('does not start without a sealing key, or with a short one', () => {
    expect(() => sealerFromEnv({})).toThrow(/no sealing key/);
    expect(() => sealerFromEnv({ WARDEN_SEAL_KEY: 'c2hvcnQ' })).toThrow(/32 bytes/);
    expect(() => sealerFromEnv({ WARDEN_SEAL_KEY: key.toString('base64url') })).not.toThrow();
  });
});
