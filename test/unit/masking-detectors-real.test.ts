/**
 * The formats issue 14 found missing, the look-alikes an attacker (or an ordinary table) would
 * put next to them, and the per-target phone region wired from configuration.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambdas/core/config.js';
import { createMasker } from '../../lambdas/core/masking/index.js';

const masker = createMasker({ hashKey: 'real' });
const typesIn = (text: string, m = masker): Record<string, number> => m.maskText(text).byType;

describe('detectors on formats real data uses', () => {
  it.each([
    ['CARD', '213176828496175'], // JCB 15
    ['CARD', '180016070420458'],
    ['CARD', '3528000700000000'], // JCB 16
    ['CARD', '3598899323053410'],
    ['CARD', '630427373398'], // Maestro 12
    ['CARD', '501864667909'],
    ['CARD', '675984103431'],
    ['CARD', '2221 0000 0000 0009'], // Mastercard 2-series
    ['CARD', '2200 0000 0000 0004'], // Mir
    ['CARD', '6200 0000 0000 0005'], // UnionPay
    ['PHONE', '+46 (0)8 928 571 38'],
    ['PHONE', '+41 (0)96 471 07 95'],
    ['PHONE', '345-899-3560x4587'],
    ['PHONE', '259.735.7502x459'],
    ['PHONE', '030 12345678'],
    ['PHONE', '(020) 7946 0958'],
    ['PHONE', '083 564 9312'],
    ['PHONE', '0490 75 40 81'],
    ['PHONE', '001-253-366-9781'],
    ['IBAN', 'gb82west12345698765432'], // lower case
    ['IBAN', 'GB82-WEST-1234-5698-7654-32'],
    ['IBAN', 'de89 3704 0044 0532 0130 00'],
    ['SSN', '123 45 6789'],
    ['EMAIL', 'jane+billing@mail.eu.example.com'],
    ['EMAIL', 'jörg.müller@bücher.de'],
    ['EMAIL', 'user@xn--80ak6aa92e.xn--p1ai'],
  ])('finds %s in %s, alone and in a sentence', (type, value) => {
    expect(typesIn(value)).toEqual({ [type]: 1 });
    const out = masker.maskText(`ref: ${value}, thanks`).text;
    expect(out).toBe(`ref: [${type}], thanks`);
  });

  it.each([
    ['Phone: 780 6326'],
    ['Mobile: 432 03 163'],
    ['Can someone call me on 9472 7916?'],
    ['082 490 1693-Office'],
    ['416 60 039 office'],
    ["They're not answering at 0680 298 70 63"],
  ])('finds a labelled national phone in %s', (text) => {
    expect(typesIn(text)).toEqual({ PHONE: 1 });
  });

  it.each([['ssn 123456789'], ['SSN: 123456789'], ['social security number 123456789'], ['SS# 123456789']])(
    'finds nine bare digits after an SSN label: %s',
    (text) => {
      expect(masker.maskText(text).text).toMatch(/\[SSN\]$/);
    },
  );

  it('finds bare numbers under a column named for them', () => {
    const r = masker.maskRows(
      [{ name: 'customer_ssn' }, { name: 'mobile_phone' }],
      [{ customer_ssn: '123456789', mobile_phone: '5551234' }],
    );
    expect(r.rows[0]).toEqual({ customer_ssn: '[SSN]', mobile_phone: '[PHONE]' });
  });
});

describe('look-alikes that must stay as they are', () => {
  const LOOK_ALIKES = [
    'order ORD-2024-000123 shipped',
    'Order #5403926876 confirmed', // bare ten digits: an id, not a phone
    'invoice INV-202401-00042 total 1,234,567.89 EUR',
    'amount 4111111111111112 cents', // Luhn fails
    'epoch 1700000000123 ms, 1700000000 s',
    '2024-01-15 12:34:56+05:30',
    '2024-01-15T10:00:00.000Z',
    '15/01/2024 10:30, 15.01.2024, 20240115103000',
    'id 123e4567-e89b-12d3-a456-426614174000',
    'version 10.2.3.4567 and v2.14.1-rc.3, build 2024.01.15.1234',
    'ISBN 978-3-16-148410-0, ISBN-10 0-306-40615-2',
    'tracking 1Z999AA10123456784, 9400 1000 0000 0000 0000 00, 7489 2046 1234',
    'from 999.1.1.1 and 10.0.0.300',
    'ZIP 94103-1234, tax id 12-3456789',
    'ssn 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567, 123-45-0000',
    'account 123456789 and ssn-like 123 456 789',
    'IBAN-like GB82 WEST 1234 5698 7654 33 (bad checksum)',
    'coords 52.5200, 13.4050; ratio 3.14159265358979',
    'call at 10:30, room 2-345-6789-1',
    "My driver's license number is 2270-66-1551",
    'phone-like 181-46-1967-56 and 0254 686 65',
  ];
  it.each(LOOK_ALIKES)('leaves %s untouched', (text) => {
    expect(masker.maskText(text)).toEqual({ text, byType: {} });
  });

  it('a phone next to a look-alike is still found, and the look-alike kept', () => {
    expect(masker.maskText('order 12345 555-123-4567').text).toBe('order 12345 [PHONE]');
    expect(masker.maskText('call 555-123-4567 at 10:30').text).toBe('call [PHONE] at 10:30');
  });

  it('junk numbers cannot exhaust the phone check and let a real one through', () => {
    const junk = Array.from(
      { length: 400 },
      (_, i) =>
        `0${String(100 + (i % 800)).padStart(3, '0')} ${String(1000 + i * 7).slice(-3)} ${String(3000 + i * 13).slice(-4)}`,
    ).join(' ; ');
    const out = masker.maskText(`${junk} ; (020) 7946 0958 ; 0161 496 0000`).text;
    expect(out).not.toContain('7946 0958');
    expect(out).not.toContain('496 0000');
  });
});

describe('per-target phone region', () => {
  it('reads national numbers in the configured region', () => {
    const de = createMasker({ hashKey: 'real', phoneRegion: 'DE' });
    expect(typesIn('Rückruf unter 030-12345678 bitte', de)).toEqual({ PHONE: 1 });
    expect(typesIn('Rückruf unter 030-12345678 bitte')).toEqual({});
  });

  it('rejects a region libphonenumber does not know', () => {
    expect(() => createMasker({ hashKey: 'real', phoneRegion: 'XX' })).toThrow(/region/);
  });

  it('is configured per target as masking.phoneRegion, US by default', () => {
    const target = {
      kind: 'sql',
      resourceArn: 'arn:aws:rds:us-east-1:123456789012:cluster:db',
      database: 'app',
      secrets: { read: 'r', write: 'w' },
    };
    const cfg = parseConfig({
      targets: { us: target, de: { ...target, masking: { rules: [], phoneRegion: 'DE' } } },
    });
    expect(cfg.targets.us.masking.phoneRegion).toBe('US');
    expect(cfg.targets.de.masking.phoneRegion).toBe('DE');
    expect(() =>
      parseConfig({ targets: { x: { ...target, masking: { rules: [], phoneRegion: 'Germany' } } } }),
    ).toThrow(/region/);
  });
});
