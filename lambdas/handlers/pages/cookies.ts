/**
 * Signed, short-lived cookies for the approval page. A cookie is `base64url(JSON).mac`, where the
 * MAC covers a purpose label too, so a sign-in cookie can never be replayed as a session cookie.
 * Nothing secret goes in them (no tokens): they are tamper-evident, not encrypted.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { Signer } from '../../adapters/signing.js';
import { header } from '../../middleware/http.js';

export type CookiePurpose = 'session' | 'login';

/** Over this a browser may drop the cookie silently; refuse it loudly instead. */
const MAX_COOKIE_BYTES = 3800;

export interface CookieSettings {
  /** False only for plain http on loopback (the local twin). */
  readonly secure: boolean;
}

export function cookieName(purpose: CookiePurpose, settings: CookieSettings): string {
  // `__Host-` pins the cookie to this host and path / (no Domain); browsers require Secure for it.
  return `${settings.secure ? '__Host-' : ''}warden_${purpose}`;
}

/** Base URLs on which cookies may go without `Secure`: plain http to this very machine. */
export function isLoopbackHttp(baseUrl: string): boolean {
  const url = new URL(baseUrl);
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

export function readCookie(event: APIGatewayProxyEventV2, name: string): string | undefined {
  // Payload v2 splits cookies into `cookies`; a raw Cookie header is read as a fallback.
  const pairs = event.cookies ?? (header(event, 'cookie') ?? '').split(/;\s*/);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

export function serializeCookie(
  name: string,
  value: string,
  settings: CookieSettings,
  maxAgeSeconds: number,
): string {
  const parts = [`${name}=${value}`, 'Path=/', `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`];
  parts.push('HttpOnly', 'SameSite=Lax');
  if (settings.secure) parts.push('Secure');
  return parts.join('; ');
}

export function clearCookie(name: string, settings: CookieSettings): string {
  return serializeCookie(name, '', settings, 0);
}

/** Signs `payload` (which must carry `exp`, in epoch seconds) into a cookie value. */
export async function sealCookie(
  signer: Signer,
  purpose: CookiePurpose,
  payload: { exp: number } & Record<string, unknown>,
): Promise<string> {
  const data = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const value = `${data}.${await signer.sign(`${purpose}.${data}`)}`;
  if (value.length > MAX_COOKIE_BYTES)
    throw new RangeError(`${purpose} cookie would exceed ${MAX_COOKIE_BYTES} bytes`);
  return value;
}

/** The payload of a cookie this deployment signed for `purpose`, or undefined if forged or expired. */
export async function openCookie<T extends { exp: number }>(
  signer: Signer,
  purpose: CookiePurpose,
  value: string | undefined,
  now: Date,
): Promise<T | undefined> {
  if (!value || value.length > MAX_COOKIE_BYTES) return undefined;
  const dot = value.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const data = value.slice(0, dot);
  if (!/^[A-Za-z0-9_-]+$/.test(data)) return undefined;
  if (!(await signer.verify(`${purpose}.${data}`, value.slice(dot + 1)))) return undefined;
  let payload: T;
  try {
    payload = JSON.parse(Buffer.from(data, 'base64url').toString('utf8')) as T;
  } catch {
    return undefined;
  }
  if (typeof payload?.exp !== 'number' || payload.exp * 1000 <= now.getTime()) return undefined;
  return payload;
}
