import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createMasker, maskJsonLines, mergeCounts } from '../../lambdas/core/masking/index.js';
import {
  cardIssuer,
  ibanValid,
  ipv4Valid,
  luhnValid,
  ssnValid,
} from '../../lambdas/core/masking/validators.js';

const masker = createMasker({ hashKey: 'test-key' });
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

describe('masking validators', () => {
  it('accepts Luhn-valid numbers from known issuers only', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(cardIssuer('4111111111111111')).toBe('visa');
    expect(cardIssuer('5555555555554444')).toBe('mastercard');
    expect(cardIssuer('2223003122003222')).toBe('mastercard');
    expect(cardIssuer('378282246310005')).toBe('amex');
    expect(cardIssuer('6011111111111117')).toBe('discover');
    expect(cardIssuer('3530111333300000')).toBe('jcb');
    expect(cardIssuer('30569309025904')).toBe('diners');
    expect(cardIssuer('6200000000000005')).toBe('unionpay');
    expect(cardIssuer('3782822463100050')).toBeUndefined(); // Amex is 15 digits
    expect(cardIssuer('9111111111111111')).toBeUndefined();
  });

  it('rejects SSN areas 000, 666 and 900–999, group 00 and serial 0000', () => {
    expect(ssnValid('123', '45', '6789')).toBe(true);
    for (const [a, g, s] of [
      ['000', '45', '6789'],
      ['666', '45', '6789'],
      ['900', '45', '6789'],
      ['999', '45', '6789'],
      ['123', '00', '6789'],
      ['123', '45', '0000'],
    ]) {
      expect(ssnValid(a, g, s)).toBe(false);
    }
  });

  it('checks IBAN length per country and mod 97', () => {
    expect(ibanValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanValid('DE89370400440532013000')).toBe(true);
    expect(ibanValid('GB82WEST12345698765433')).toBe(false);
    expect(ibanValid('GB82WEST1234569876543')).toBe(false);
    expect(ibanValid('US82WEST12345698765432')).toBe(false);
  });

  it('takes dotted quads with octets up to 255 and no leading zeros', () => {
    expect(ipv4Valid('192.168.0.1')).toBe(true);
    expect(ipv4Valid('0.0.0.0')).toBe(true);
    expect(ipv4Valid('256.1.1.1')).toBe(false);
    expect(ipv4Valid('01.2.3.4')).toBe(false);
    expect(ipv4Valid('1.2.3')).toBe(false);
    expect(ipv4Valid('1.2.3.4.5')).toBe(false);
  });
});

describe('masking detectors', () => {
  it.each([
    ['card with spaces', 'pay 4111 1111 1111 1111 now', 'pay [CARD] now', 'CARD'],
    ['card with dashes', '5555-5555-5555-4444', '[CARD]', 'CARD'],
    ['amex 4-6-5', 'amex 3782 822463 10005', 'amex [CARD]', 'CARD'],
    ['bare card', 'card:4012888888881881.', 'card:[CARD].', 'CARD'],
    ['card and CVV', '4111 1111 1111 1111 123', '[CARD] 123', 'CARD'],
    ['email', 'mail Jane.Doe+x@mail.example.co.uk.', 'mail [EMAIL].', 'EMAIL'],
    ['E.164', 'call +44 20 7946 0958 now', 'call [PHONE] now', 'PHONE'],
    ['NANP parentheses', '(555) 123-4567', '[PHONE]', 'PHONE'],
    ['NANP dots', 'tel 555.123.4567', 'tel [PHONE]', 'PHONE'],
    ['UK national', '020 7946 0958', '[PHONE]', 'PHONE'],
    ['French national', '06 12 34 56 78', '[PHONE]', 'PHONE'],
    ['SSN', 'ssn 123-45-6789', 'ssn [SSN]', 'SSN'],
    ['IBAN grouped', 'GB82 WEST 1234 5698 7654 32', '[IBAN]', 'IBAN'],
    ['IBAN compact', 'iban=DE89370400440532013000;', 'iban=[IBAN];', 'IBAN'],
    ['AWS key id', 'AKIAIOSFODNN7EXAMPLE', '[AWS_ACCESS_KEY]', 'AWS_ACCESS_KEY'],
    [
      'AWS secret near the word secret',
      'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      'aws_secret_access_key=[AWS_SECRET_KEY]',
      'AWS_SECRET_KEY',
    ],
    ['JWT', `token ${JWT}`, 'token [JWT]', 'JWT'],
    [
      'bearer',
      'Authorization: Bearer abcDEF123456ghiJKL789',
      'Authorization: Bearer [BEARER_TOKEN]',
      'BEARER_TOKEN',
    ],
    ['IPv4 with port', 'from 10.0.0.12:8080', 'from [IPV4]:8080', 'IPV4'],
    ['IPv6 compressed', 'from 2001:db8::ff00:42:8329.', 'from [IPV6].', 'IPV6'],
    ['IPv6 mapped IPv4', '::ffff:192.0.2.128', '[IPV6]', 'IPV6'],
  ])('masks a %s', (_name, input, expected, type) => {
    const r = masker.maskText(input);
    expect(r.text).toBe(expected);
    expect(r.byType).toEqual({ [type]: 1 });
  });

  it('masks a multi-line PEM private key whole, and a truncated one through its base64', () => {
    const pem =
      '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oa\n-----END EC PRIVATE KEY-----';
    expect(masker.maskText(`key:\n${pem}\nend`).text).toBe('key:\n[PRIVATE_KEY]\nend');
    const cut = masker.maskText('-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEvQ');
    expect(cut.text).toBe('[PRIVATE_KEY]');
  });

  it.each([
    'ORD-2024-000123',
    '2024-01-15',
    '2024-01-15T12:34:56.789Z',
    '2024-01-15 12:34:56+05:30',
    '12:34:56',
    '123e4567-e89b-12d3-a456-426614174000',
    '1.2.3',
    '1.2.3.4.5',
    '999.1.1.1',
    'v1.2.3.4',
    '5551234567',
    '1705312345678',
    '12345678.90',
    '4111111111111112',
    '9111111111111111',
    '000-12-3456',
    '666-12-3456',
    '900-12-3456',
    '123-00-4567',
    '123-45-0000',
    'GB82WEST12345698765433',
    '94105-1234',
    '978-3-16-148410-0',
    '00:1A:2B:3C:4D:5E',
    'std::vector<int>',
    'user@localhost',
    'Bearer authentication',
    '3f786850e387550fdab836ed7e6dc881de23001b',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.',
    '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----',
  ])('leaves the look-alike %j untouched', (input) => {
    const r = masker.maskText(input);
    expect(r.text).toBe(input);
    expect(r.byType).toEqual({});
  });

  it('takes a 40-character string for a secret key only near "secret" or under a secret-named key', () => {
    const key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    expect(masker.maskText(`checksum ${key}`).byType).toEqual({});
    expect(masker.maskValue({ checksum: key }).value).toEqual({ checksum: key });
    expect(masker.maskValue({ SecretAccessKey: key }).value).toEqual({ SecretAccessKey: '[AWS_SECRET_KEY]' });
    // A hex digest has no upper case: not a secret key even when called one.
    const sha1 = '3f786850e387550fdab836ed7e6dc881de23001b';
    expect(masker.maskValue({ secret_sha1: sha1 }).value).toEqual({ secret_sha1: sha1 });
  });

  it('takes nine bare digits for an SSN only under an SSN-named key or column', () => {
    expect(masker.maskText('123456789').text).toBe('123456789');
    expect(masker.maskValue({ ssn: '123456789', n: '123456789' }).value).toEqual({
      ssn: '[SSN]',
      n: '123456789',
    });
    expect(masker.maskValue({ customer_ssn: 123456789 }).value).toEqual({ customer_ssn: '[SSN]' });
    expect(masker.maskValue({ ssn: '000456789' }).value).toEqual({ ssn: '000456789' });
    expect(masker.maskValue({ customerSsn: '123456789', classname: '123456789' }).value).toEqual({
      customerSsn: '[SSN]',
      classname: '123456789',
    });
  });

  it('masks a card number written as a JSON number, and no other number', () => {
    const r = masker.maskValue({ pan: 4111111111111111, id: 4111111111111112, amount: 12.5, n: 1e300 });
    expect(r.value).toEqual({ pan: '[CARD]', id: 4111111111111112, amount: 12.5, n: 1e300 });
    expect(r.byType).toEqual({ CARD: 1 });
  });

  it('counts every occurrence by type', () => {
    const r = masker.maskText('a@example.com b@example.com 4111 1111 1111 1111');
    expect(r.byType).toEqual({ EMAIL: 2, CARD: 1 });
  });
});

describe('masking strategies', () => {
  it('keeps the last four characters and the separators under partial', () => {
    const m = createMasker({
      hashKey: 'k',
      strategyByType: { CARD: 'partial', SSN: 'partial', EMAIL: 'partial', PHONE: 'partial', JWT: 'partial' },
    });
    expect(m.maskText('4111-1111-1111-1111').text).toBe('****-****-****-1111');
    expect(m.maskText('123-45-6789').text).toBe('***-**-6789');
    expect(m.maskText('jane@example.com').text).toBe('***@example.com');
    expect(m.maskText('(555) 123-4567').text).toBe('(***) ***-4567');
    // A token's tail identifies nothing: partial falls back to redact.
    expect(m.maskText(JWT).text).toBe('[JWT]');
  });

  it('hashes equal values to equal tokens, across formats, and depends on the key', () => {
    const m = createMasker({ hashKey: 'k1', strategyByType: { CARD: 'hash', EMAIL: 'hash' } });
    const a = m.maskText('4111 1111 1111 1111').text;
    expect(a).toMatch(/^hmac:[0-9a-f]{64}$/);
    expect(m.maskText('4111-1111-1111-1111').text).toBe(a);
    expect(m.maskText('4111111111111111').text).toBe(a);
    expect(m.maskText('Jane@Example.com').text).toBe(m.maskText('jane@example.com').text);
    expect(m.maskText('5555 5555 5555 4444').text).not.toBe(a);
    const other = createMasker({ hashKey: Buffer.from('k2'), strategyByType: { CARD: 'hash' } });
    expect(other.maskText('4111 1111 1111 1111').text).not.toBe(a);
  });

  it('redacts in free text when the strategy is null', () => {
    const m = createMasker({ hashKey: 'k', strategyByType: { EMAIL: 'null' } });
    expect(m.maskText('to jane@example.com').text).toBe('to [EMAIL]');
  });
});

describe('masking column rules', () => {
  const columns = [
    { name: 'email', table: 'customers', schema: 'public' },
    { name: 'ssn', table: 'customers' },
    { name: 'notes', table: 'orders', schema: 'sales' },
    { name: 'Phone' },
  ];
  const row = { email: 'x', ssn: '123456789', notes: 'hello', Phone: 'n/a', extra: 'jane@example.com' };

  function mask(
    rules: { column: string; strategy: 'redact' | 'partial' | 'hash' | 'null'; type?: string }[],
  ) {
    return createMasker({ hashKey: 'k', rules }).maskRows(columns, [row]);
  }

  it('matches bare names, *.name, table.name and schema.table.name, case-insensitively', () => {
    expect(mask([{ column: 'EMAIL', strategy: 'redact' }]).rows[0].email).toBe('[COLUMN]');
    expect(mask([{ column: '*.email', strategy: 'redact' }]).rows[0].email).toBe('[COLUMN]');
    expect(mask([{ column: 'customers.email', strategy: 'redact' }]).rows[0].email).toBe('[COLUMN]');
    expect(mask([{ column: 'public.customers.email', strategy: 'redact' }]).rows[0].email).toBe('[COLUMN]');
    expect(mask([{ column: 'orders.email', strategy: 'redact' }]).rows[0].email).toBe('x');
    // No schema reported: the relation is taken as public.
    expect(mask([{ column: 'public.customers.ssn', strategy: 'null' }]).rows[0].ssn).toBeNull();
    expect(mask([{ column: 'sales.*.notes', strategy: 'redact' }]).rows[0].notes).toBe('[COLUMN]');
    expect(mask([{ column: 'public.*.notes', strategy: 'redact' }]).rows[0].notes).toBe('hello');
    expect(mask([{ column: 'ema*', strategy: 'redact' }]).rows[0].email).toBe('[COLUMN]');
    // A column without a table is matched by * in the table position, not by a named table.
    expect(mask([{ column: '*.phone', strategy: 'redact' }]).rows[0].Phone).toBe('[COLUMN]');
    expect(mask([{ column: 'customers.phone', strategy: 'redact' }]).rows[0].Phone).toBe('n/a');
  });

  it('applies a rule whatever the content, counting under its type or the type found', () => {
    const r = createMasker({
      hashKey: 'k',
      rules: [
        { column: 'notes', strategy: 'redact', type: 'NOTE' },
        { column: 'contact', strategy: 'redact' },
      ],
    }).maskRows(
      [{ name: 'notes' }, { name: 'contact' }],
      [
        { notes: 'hello', contact: 'jane@example.com' },
        { notes: null, contact: 'someone' },
      ],
    );
    expect(r.rows).toEqual([
      { notes: '[NOTE]', contact: '[EMAIL]' },
      { notes: null, contact: '[COLUMN]' },
    ]);
    expect(r.byType).toEqual({ NOTE: 1, EMAIL: 1, COLUMN: 1 });
  });

  it('runs the detectors on columns without a rule and on keys no column describes', () => {
    const r = mask([{ column: 'email', strategy: 'hash', type: 'EMAIL' }]);
    expect(r.rows[0]).toEqual({
      email: expect.stringMatching(/^hmac:[0-9a-f]{64}$/),
      ssn: '[SSN]',
      notes: 'hello',
      Phone: 'n/a',
      extra: '[EMAIL]',
    });
    expect(r.byType).toEqual({ EMAIL: 2, SSN: 1 });
  });

  it('hashes a column rule value like the detector does, so columns join with free text', () => {
    const m = createMasker({
      hashKey: 'k',
      rules: [{ column: 'email', strategy: 'hash', type: 'EMAIL' }],
      strategyByType: { EMAIL: 'hash' },
    });
    const r = m.maskRows(
      [{ name: 'email' }, { name: 'note' }],
      [{ email: 'Jane@example.com', note: 'jane@example.com' }],
    );
    expect(r.rows[0].email).toBe(r.rows[0].note);
  });

  it('masks JSON and numeric values under a rule whole', () => {
    const m = createMasker({
      hashKey: 'k',
      rules: [{ column: 'profile', strategy: 'redact', type: 'PROFILE' }],
    });
    const r = m.maskRows([{ name: 'profile' }], [{ profile: { a: 1 } }, { profile: 42 }]);
    expect(r.rows).toEqual([{ profile: '[PROFILE]' }, { profile: '[PROFILE]' }]);
  });
});

describe('masking values', () => {
  it('masks strings inside objects and arrays, and object keys', () => {
    const r = masker.maskValue({
      users: [{ email: 'a@example.com', tags: ['ok', 'ip 10.1.2.3'] }],
      'b@example.com': true,
      n: null,
    });
    expect(r.value).toEqual({
      users: [{ email: '[EMAIL]', tags: ['ok', 'ip [IPV4]'] }],
      '[EMAIL]': true,
      n: null,
    });
    expect(r.byType).toEqual({ EMAIL: 2, IPV4: 1 });
  });

  it('keeps a __proto__ key as data without touching the prototype', () => {
    const input = JSON.parse('{"__proto__": {"polluted": "jane@example.com"}}') as unknown;
    const r = masker.maskValue(input);
    const out = r.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ polluted: '[EMAIL]' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('replaces what lies deeper than it inspects instead of passing it through', () => {
    let deep: unknown = 'jane@example.com';
    for (let i = 0; i < 1000; i++) deep = [deep];
    const r = masker.maskValue(deep);
    expect(JSON.stringify(r.value)).not.toContain('jane@example.com');
    expect(r.byType).toEqual({ TOO_DEEP: 1 });
  });

  it('leaves dates, booleans and plain numbers as they are', () => {
    const d = new Date(0);
    expect(masker.maskValue([d, true, 3, -1, 0.5]).value).toEqual([d, true, 3, -1, 0.5]);
  });
});

describe('masking idempotency', () => {
  const text =
    'jane@example.com 4111 1111 1111 1111 123-45-6789 +1 415 555 2671 GB82 WEST 1234 5698 7654 32 ' +
    `AKIAIOSFODNN7EXAMPLE 10.0.0.1 2001:db8::1 ${JWT} Bearer abcDEF123456ghiJKL789`;

  it.each(['redact', 'partial', 'hash', 'null'] as const)(
    'changes nothing and counts nothing when masking %s output again',
    (strategy) => {
      const m = createMasker({
        hashKey: 'k',
        strategyByType: Object.fromEntries(
          [
            'CARD',
            'EMAIL',
            'PHONE',
            'SSN',
            'IBAN',
            'AWS_ACCESS_KEY',
            'IPV4',
            'IPV6',
            'JWT',
            'BEARER_TOKEN',
          ].map((t) => [t, strategy]),
        ),
        rules: [{ column: 'secret_col', strategy }],
      });
      const once = m.maskText(text);
      expect(Object.values(once.byType).reduce((a, b) => a + b, 0)).toBe(10);
      const twice = m.maskText(once.text);
      expect(twice).toEqual({ text: once.text, byType: {} });

      const rows = m.maskRows(
        [{ name: 'secret_col' }, { name: 'free' }],
        [{ secret_col: 'John Smith 42', free: text }],
      );
      const again = m.maskRows([{ name: 'secret_col' }, { name: 'free' }], rows.rows);
      expect(again).toEqual({ rows: rows.rows, byType: {} });
    },
  );
});

describe('masking JSON lines', () => {
  async function run(input: string): Promise<{ out: string; counts: Record<string, number> }> {
    const output = new PassThrough();
    const chunks: string[] = [];
    output.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    const counts = await maskJsonLines(Readable.from([input.slice(0, 7), input.slice(7)]), output, {
      masker,
    });
    return { out: chunks.join(''), counts };
  }

  it('masks each JSON line as a value and other lines as text, line for line', async () => {
    const { out, counts } = await run(
      '{"email":"jane@example.com","n":1}\r\n\n"4111 1111 1111 1111"\nnot json: 123-45-6789\n[1,2]',
    );
    expect(out).toBe('{"email":"[EMAIL]","n":1}\n\n"[CARD]"\nnot json: [SSN]\n[1,2]\n');
    expect(counts).toEqual({ EMAIL: 1, CARD: 1, SSN: 1 });
  });

  it('reads integers too long for a double as their digits, so a 19-digit card is caught', async () => {
    const { out } = await run('{"pan": 4000000000000000006, "s": "x:1234567890123456,"}\n');
    expect(out).toBe('{"pan":"[CARD]","s":"x:1234567890123456,"}\n');
  });
});

describe('mergeCounts', () => {
  it('adds counts by type', () => {
    expect(mergeCounts({ EMAIL: 2, CARD: 1 }, { EMAIL: 1, SSN: 4 })).toEqual({ EMAIL: 3, CARD: 1, SSN: 4 });
  });
});
