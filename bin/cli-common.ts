/**
 * What every command shares: the global options (--url, --token, --as, --session, --json), how a
 * command finds its gateway and credentials, how answers are printed (tables for people on a
 * terminal, JSON with --json or when piped), and option parsers whose errors name their flag.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { jsonShowingInvisible, revealInvisible } from '../lambdas/core/invisible.js';
import {
  CliError,
  EXIT,
  UsageError,
  call,
  devToken,
  gatewayUrl,
  isLoopback,
  type CliContext,
} from './cli-client.js';

export interface GlobalOptions {
  readonly url?: string;
  readonly token?: string;
  readonly as?: string;
  readonly session?: string;
  readonly json?: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** A stored sign-in for this gateway, if any (`warden login`, registered by bin/login-cli.ts). */
export type StoredTokenLookup = (url: string) => Promise<string | undefined>;
let storedToken: StoredTokenLookup = async () => undefined;
export function useStoredTokens(lookup: StoredTokenLookup): void {
  storedToken = lookup;
}

/**
 * The gateway and a bearer token: --token, else WARDEN_TOKEN, else the sign-in `warden login`
 * stored for the URL (refreshed when it expires), else (local twin only) a dev user's token (--as,
 * default alice). `--as` names a dev user, so it is refused next to an explicit token instead of
 * being silently overridden by one.
 */
export async function context(cmd: Command): Promise<CliContext> {
  const o = globals(cmd);
  const url = gatewayUrl(o.url);
  const session = o.session ? { session: o.session } : {};
  if (o.as !== undefined) {
    if (o.token !== undefined) throw new UsageError('--as and --token both given: use one of them');
    if (process.env.WARDEN_TOKEN) {
      throw new UsageError(
        `--as ${o.as} given while WARDEN_TOKEN is set: unset WARDEN_TOKEN to act as ${o.as}, or drop --as`,
      );
    }
    if (!isLoopback(url)) {
      throw new UsageError(
        `--as works only against a local twin (127.0.0.1, localhost, ::1); ${url} is not one. ` +
          `Sign in with \`warden login --url ${url}\`, or pass a token from its IdP with --token or WARDEN_TOKEN.`,
      );
    }
    return { url, token: await devToken(url, o.as), source: 'dev-user', ...session };
  }
  if (o.token !== undefined) return { url, token: o.token, source: 'flag', ...session };
  if (process.env.WARDEN_TOKEN) return { url, token: process.env.WARDEN_TOKEN, source: 'env', ...session };
  const stored = await storedToken(url);
  if (stored) return { url, token: stored, source: 'login', ...session };
  if (isLoopback(url)) return { url, token: await devToken(url, 'alice'), source: 'dev-user', ...session };
  throw new CliError(
    `no credentials for ${url}: sign in with \`warden login --url ${url}\`, or pass a token with --token or WARDEN_TOKEN`,
    EXIT.unreachable,
  );
}

/** JSON when asked for, or when stdout is not a terminal (pipes, files, other programs). */
export function wantsJson(cmd: Command): boolean {
  return Boolean(globals(cmd).json) || !process.stdout.isTTY;
}

function errorText(status: number, body: unknown): string {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const e = (body as { error: { code?: string; message?: string }; requestId?: string }).error;
    const id = (body as { requestId?: string }).requestId;
    return `${status} ${e?.code ?? 'error'}: ${e?.message ?? JSON.stringify(body)}${id ? ` (request ${id})` : ''}`;
  }
  return `${status}: ${typeof body === 'string' ? body.slice(0, 500) : JSON.stringify(body)}`;
}

/**
 * Prints a gateway answer: JSON as is (errors included, on stdout, so scripts can parse them),
 * or for a person the formatter's text, errors on stderr. Sets the exit code from the status.
 */
export function emit(
  cmd: Command,
  res: { status: number; body: unknown },
  human: (body: any) => string,
): void {
  const failed = res.status >= 400;
  // Statements, justifications and results may hide bidi overrides, zero-width characters or
  // terminal escapes: JSON writes them as \uXXXX escapes, text shows them as ⟨U+202E⟩.
  if (wantsJson(cmd)) {
    process.stdout.write(`${jsonShowingInvisible(res.body)}\n`);
    if (failed) process.exitCode = exitFor(res.status);
  } else if (failed) {
    throw new CliError(errorText(res.status, res.body), exitFor(res.status));
  } else {
    process.stdout.write(`${revealInvisible(human(res.body)).text}\n`);
  }
  if (!failed && res.status === 202) process.exitCode = EXIT.pending;
}

function exitFor(status: number): number {
  return status === 401 ? EXIT.unreachable : EXIT.refused;
}

/** GET/POST and print. */
export async function request(
  cmd: Command,
  method: string,
  path: string,
  body: unknown,
  human: (body: any) => string,
): Promise<void> {
  emit(cmd, await call(await context(cmd), method, path, body), human);
}

/** A commander option parser for a JSON value whose error names the flag. */
export function jsonOption(flag: string): (value: string) => unknown {
  return (value) => {
    try {
      return JSON.parse(value) as unknown;
    } catch (error) {
      throw new InvalidArgumentError(`${flag}: not valid JSON: ${(error as Error).message}`);
    }
  };
}

export function positiveIntOption(flag: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1) {
      throw new InvalidArgumentError(
        `${flag}: expected a positive whole number, got ${JSON.stringify(value)}`,
      );
    }
    return Number(value);
  };
}

/** Help text appended under a command's own: a few examples. */
export function examples(cmd: Command, lines: readonly string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
