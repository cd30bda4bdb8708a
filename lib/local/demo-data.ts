/**
 * The demo database of the local twin: a small shop (`customers`, `orders`) full of generated,
 * realistic-looking PII so masking has something real to find, and the two database roles Warden's
 * secrets map to. Everything is fake and reproducible: values come from a seeded PRNG, card numbers
 * pass Luhn, SSNs have valid-format areas, IBANs carry correct mod-97 check digits, emails use the
 * reserved example.* domains and phone numbers the fictional 555-01xx / Ofcom drama ranges.
 */
import { createHash } from 'node:crypto';
import { parseConfig, type SqlTargetConfig } from '../../lambdas/core/config.js';
import {
  catalogueSql,
  generateMaskingSql,
  type CatalogueColumn,
} from '../../lambdas/core/masking/db-profiles.js';
import { demoConfig } from './demo-config.js';
/** What seeding needs of a database: PGlite, or an adapter over a `pg` client. */
export interface SqlDatabase {
  exec(sql: string): Promise<unknown>;
  query<T>(sql: string): Promise<{ rows: T[] }>;
}

export interface DemoTarget {
  readonly resourceArn: string;
  readonly database: string;
  readonly secrets: {
    readonly read: string;
    readonly write: string;
    readonly maskedRead: string;
    readonly maskedWrite: string;
  };
  /** The twin's administrator (the PGlite superuser): `warden db setup --apply` / `db check`. */
  readonly adminSecret: string;
}

// Secrets Manager appends a 6-character suffix to every secret ARN.
const SECRET = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:';

/** The demo target as the executor and the local Data API endpoint know it. */
export const DEMO_TARGET: DemoTarget = {
  resourceArn: 'arn:aws:rds:us-east-1:000000000000:cluster:warden-demo',
  database: 'demo',
  secrets: {
    read: `${SECRET}warden-demo-ro-Ab12Cd`,
    write: `${SECRET}warden-demo-rw-Ef34Gh`,
    maskedRead: `${SECRET}warden-demo-masked-ro-Ij56Kl`,
    maskedWrite: `${SECRET}warden-demo-masked-rw-Mn78Op`,
  },
  adminSecret: `${SECRET}warden-demo-admin-Qr90St`,
};

export const DEMO_READ_ROLE = 'warden_ro';
export const DEMO_WRITE_ROLE = 'warden_rw';
export const DEMO_MASKED_READ_ROLE = 'warden_masked_ro';
export const DEMO_MASKED_WRITE_ROLE = 'warden_masked_rw';
/** PGlite's superuser. */
export const DEMO_ADMIN_ROLE = 'postgres';

/** Secret ARN → the database role it logs in as (the `secrets` option of the Data API twin). */
export const DEMO_ROLES: Readonly<Record<string, { readonly role: string }>> = {
  [DEMO_TARGET.secrets.read]: { role: DEMO_READ_ROLE },
  [DEMO_TARGET.secrets.write]: { role: DEMO_WRITE_ROLE },
  [DEMO_TARGET.secrets.maskedRead]: { role: DEMO_MASKED_READ_ROLE },
  [DEMO_TARGET.secrets.maskedWrite]: { role: DEMO_MASKED_WRITE_ROLE },
  [DEMO_TARGET.adminSecret]: { role: DEMO_ADMIN_ROLE },
};

export interface SeedOptions {
  /** @default 2000 */
  readonly customers?: number;
  /** PRNG seed; the same seed gives the same rows. @default 20240601 */
  readonly seed?: number;
  /** The SQL target whose database setup is applied. @default the demo target */
  readonly target?: SqlTargetConfig;
  /**
   * The fingerprint `seedDemoDatabase` returned when it last set up this database: when the setup
   * it generates now is the same, it is not applied again (a restart of the twin on its data dir).
   */
  readonly appliedSetup?: string;
}

/** mulberry32: tiny, fast, good enough for fake data, and reproducible across platforms. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const int = (r: Random, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const digits = (r: Random, n: number): string => Array.from({ length: n }, () => int(r, 0, 9)).join('');

const FIRST_NAMES = [
  'James',
  'Mary',
  'Robert',
  'Patricia',
  'John',
  'Jennifer',
  'Michael',
  'Linda',
  'David',
  'Elizabeth',
  'William',
  'Barbara',
  'Richard',
  'Susan',
  'Joseph',
  'Jessica',
  'Thomas',
  'Sarah',
  'Charles',
  'Karen',
  'Ana',
  'Lukas',
  'Sophie',
  'Chloé',
  'Mateo',
  'Aisha',
  'Wei',
  'Yuki',
  'Priya',
  'Olumide',
  'Siobhan',
  'Søren',
  'Zoë',
  'Hannah',
  'Noah',
  'Emma',
  'Liam',
  'Olivia',
  'Léa',
  'Jonas',
] as const;
const LAST_NAMES = [
  'Smith',
  'Johnson',
  'Williams',
  'Brown',
  'Jones',
  'Garcia',
  'Miller',
  'Davis',
  'Rodriguez',
  'Martinez',
  'Müller',
  'Schmidt',
  'Schneider',
  'Fischer',
  'Dubois',
  'Lefèvre',
  'Moreau',
  'Taylor',
  'Wilson',
  "O'Brien",
  "O'Connor",
  'Nguyen',
  'Kim',
  'Patel',
  'Okafor',
  'Kowalski',
  'Rossi',
  'Andersen',
  'Tanaka',
  'Chen',
  'Hughes',
  'Murphy',
  'Evans',
  'Walker',
  'Wright',
  'Clarke',
] as const;
const EMAIL_DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.example.com'] as const;
const ORDER_STATUSES = [
  'pending',
  'paid',
  'paid',
  'shipped',
  'delivered',
  'delivered',
  'refunded',
  'cancelled',
] as const;

function luhnCheckDigit(payload: string): number {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    let d = Number(payload[payload.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/** A 16-digit Visa or Mastercard number with a valid Luhn digit, grouped by dashes or spaces. */
export function fakeCardNumber(r: Random): string {
  const prefix = r() < 0.55 ? '4' : r() < 0.75 ? String(int(r, 51, 55)) : String(int(r, 2221, 2720));
  const payload = prefix + digits(r, 15 - prefix.length);
  const number = payload + luhnCheckDigit(payload);
  const sep = r() < 0.5 ? '-' : ' ';
  return number.match(/.{4}/g)!.join(sep);
}

/** AAA-GG-SSSS with an area that is never 000, 666 or 9xx, and no zero group or serial. */
export function fakeSsn(r: Random): string {
  let area = int(r, 1, 899);
  if (area === 666) area = 665;
  const group = int(r, 1, 99);
  const serial = int(r, 1, 9999);
  return `${String(area).padStart(3, '0')}-${String(group).padStart(2, '0')}-${String(serial).padStart(4, '0')}`;
}

function mod97(numeric: string): number {
  return Number(BigInt(numeric) % 97n);
}

/** Letters → numbers as ISO 13616 wants (A=10 … Z=35). */
function ibanNumeric(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
}

export function ibanCheckDigits(country: string, bban: string): string {
  return String(98 - mod97(ibanNumeric(bban + country + '00'))).padStart(2, '0');
}

/** A DE, GB or FR IBAN with correct check digits (and, for FR, a correct RIB key). */
export function fakeIban(r: Random): string {
  const country = pick(r, ['DE', 'GB', 'FR'] as const);
  let bban: string;
  if (country === 'DE') {
    bban = digits(r, 8) + digits(r, 10);
  } else if (country === 'GB') {
    const bank = pick(r, ['NWBK', 'BARC', 'LOYD', 'HBUK', 'MIDL'] as const);
    bban = bank + digits(r, 6) + digits(r, 8);
  } else {
    const bank = digits(r, 5);
    const branch = digits(r, 5);
    const account = digits(r, 11);
    const key = 97 - Number((89n * BigInt(bank) + 15n * BigInt(branch) + 3n * BigInt(account)) % 97n);
    bban = bank + branch + account + String(key).padStart(2, '0');
  }
  const iban = country + ibanCheckDigits(country, bban) + bban;
  return r() < 0.5 ? iban : iban.match(/.{1,4}/g)!.join(' ');
}

function fakePhone(r: Random): string {
  const npa = `${int(r, 2, 9)}${digits(r, 2)}`;
  const line = `01${digits(r, 2)}`;
  switch (int(r, 0, 3)) {
    case 0:
      return `+1${npa}555${line}`;
    case 1:
      return `(${npa}) 555-${line}`;
    case 2:
      return `+1 ${npa}-555-${line}`;
    default:
      return `+44 20 7946 0${digits(r, 3)}`;
  }
}

function emailLocal(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/ø/g, 'o')
    .replace(/[^A-Za-z]/g, '')
    .toLowerCase();
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const START = Date.UTC(2022, 0, 1);
const END = Date.UTC(2024, 11, 31);

/**
 * Creates and fills the demo tables, then applies the generated database setup (roles, masking
 * views, grants, role settings). Idempotent: a database that already has the customers table keeps
 * its rows; the setup is applied again.
 */
/** Creates and fills the demo tables when absent, then applies the database setup; returns the setup's fingerprint. */
export async function seedDemoDatabase(db: SqlDatabase, options: SeedOptions = {}): Promise<string> {
  const customerCount = options.customers ?? 2000;
  const r = prng(options.seed ?? 20240601);

  const existing = await db.query<{ t: string | null }>(`select to_regclass('public.customers')::text as t`);
  if (existing.rows[0]?.t == null) {
    await db.exec(`
      BEGIN;
      CREATE TABLE public.customers (
        id serial PRIMARY KEY,
        name text NOT NULL,
        email text NOT NULL,
        phone text,
        card_number text,
        ssn text,
        iban text,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE public.orders (
        id serial PRIMARY KEY,
        customer_id integer NOT NULL REFERENCES public.customers(id),
        order_number text NOT NULL UNIQUE,
        amount numeric(10,2) NOT NULL,
        status text NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE INDEX orders_customer_id_idx ON public.orders (customer_id);
      COMMIT;`);

    const customers: string[] = [];
    const orders: string[] = [];
    const orderSeqByYear = new Map<number, number>();
    for (let id = 1; id <= customerCount; id++) {
      const first = pick(r, FIRST_NAMES);
      const last = pick(r, LAST_NAMES);
      const created = START + Math.floor(r() * (END - START));
      const email = `${emailLocal(first)}.${emailLocal(last)}${int(r, 1, 999)}@${pick(r, EMAIL_DOMAINS)}`;
      // Some customers have no card or IBAN on file, as real tables do.
      const card = r() < 0.85 ? sqlString(fakeCardNumber(r)) : 'NULL';
      const iban = r() < 0.6 ? sqlString(fakeIban(r)) : 'NULL';
      customers.push(
        `(${id}, ${sqlString(`${first} ${last}`)}, ${sqlString(email)}, ${sqlString(fakePhone(r))}, ` +
          `${card}, ${sqlString(fakeSsn(r))}, ${iban}, ${sqlString(new Date(created).toISOString())})`,
      );
      const orderCount = int(r, 0, 5);
      for (let k = 0; k < orderCount; k++) {
        const at = created + Math.floor(r() * (END - created));
        const year = new Date(at).getUTCFullYear();
        const seq = (orderSeqByYear.get(year) ?? 0) + 1;
        orderSeqByYear.set(year, seq);
        const amount = (int(r, 500, 250_000) / 100).toFixed(2);
        orders.push(
          `(${id}, 'ORD-${year}-${String(seq).padStart(6, '0')}', ${amount}, ` +
            `${sqlString(pick(r, ORDER_STATUSES))}, ${sqlString(new Date(at).toISOString())})`,
        );
      }
    }
    const statements = ['BEGIN;'];
    for (let i = 0; i < customers.length; i += 500) {
      statements.push(
        `INSERT INTO public.customers (id, name, email, phone, card_number, ssn, iban, created_at) VALUES ${customers
          .slice(i, i + 500)
          .join(',\n')};`,
      );
    }
    for (let i = 0; i < orders.length; i += 500) {
      statements.push(
        `INSERT INTO public.orders (customer_id, order_number, amount, status, created_at) VALUES ${orders
          .slice(i, i + 500)
          .join(',\n')};`,
      );
    }
    statements.push(
      `SELECT setval('public.customers_id_seq', (SELECT coalesce(max(id), 1) FROM public.customers));`,
      'COMMIT;',
    );
    await db.exec(statements.join('\n'));
  }

  // Roles, masking views, grants and role settings: the SQL `warden db setup demo` generates.
  return applyDbSetup(db, options.target ?? demoSqlTarget(), options.appliedSetup);
}

/** The demo SQL target's configuration, parsed (defaults filled in). */
export function demoSqlTarget(): SqlTargetConfig {
  const target = parseConfig(demoConfig()).targets.demo;
  if (target.kind !== 'sql') throw new Error('the demo target is not a SQL target');
  return target;
}

/**
 * Applies the generated setup to the database directly, in one transaction (the twin's
 * stand-in for `warden db setup --apply`, which sends the same statements through the Data API).
 */
export async function applyDbSetup(
  db: SqlDatabase,
  target: SqlTargetConfig,
  skipIfApplied?: string,
): Promise<string> {
  const catalogue = await db.query<CatalogueColumn>(catalogueSql(target));
  const statements = generateMaskingSql(target, catalogue.rows);
  // The generated setup depends on the target's configuration and the catalogue it was built from.
  const fingerprint = createHash('sha256').update(statements.join(';\n')).digest('hex');
  if (fingerprint === skipIfApplied) return fingerprint;
  try {
    await db.exec(['BEGIN', ...statements, 'COMMIT'].join(';\n'));
  } catch (error) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return fingerprint;
}
