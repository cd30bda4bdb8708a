/**
 * `warden login`, `warden logout` and `warden whoami`: signing in to a gateway's IdP and the
 * stored sign-in every other command then uses for that --url (bin/cli-login.ts does the OAuth).
 */
import type { Command } from 'commander';
import { UsageError, gatewayUrl } from './cli-client.js';
import { context, examples, globals, positiveIntOption, useStoredTokens, wantsJson } from './cli-common.js';
import { CredentialStore } from './cli-credentials.js';
import { login, logout, storedAccessToken } from './cli-login.js';

export function register(program: Command): void {
  useStoredTokens((url) => storedAccessToken(url));

  examples(
    program
      .command('login')
      .description("sign in to the gateway's identity provider and keep the token for that --url")
      .option('--device', 'use the device authorization grant (sign in on another device)')
      .option('--no-browser', 'do not open a browser: print the URL to open')
      .option(
        '--scope <scopes>',
        "scopes to ask for (default: the gateway's, plus offline_access where offered)",
      )
      .option(
        '--redirect-uri <url>',
        "the loopback redirect URI registered at the IdP (default: the gateway's, else http://127.0.0.1:<any port>/callback)",
      )
      .option('--timeout <seconds>', 'how long to wait for the sign-in', positiveIntOption('--timeout'), 300)
      .action(
        async (
          o: { device?: boolean; browser: boolean; scope?: string; redirectUri?: string; timeout: number },
          cmd: Command,
        ) => {
          const g = globals(cmd);
          if (g.as !== undefined)
            throw new UsageError('--as names a dev user of the local twin: drop it to sign in');
          if (g.token !== undefined) throw new UsageError('--token given: nothing to sign in for');
          const url = gatewayUrl(g.url);
          const done = await login(url, {
            browser: o.browser,
            timeoutSeconds: o.timeout,
            ...(o.device ? { device: true } : {}),
            ...(o.scope ? { scope: o.scope } : {}),
            ...(o.redirectUri ? { redirectUri: o.redirectUri } : {}),
          });
          const who = done.login.username ?? done.login.subject ?? 'unknown';
          if (wantsJson(cmd)) {
            const { accessToken: _a, refreshToken: _r, idToken: _i, ...shown } = done.login;
            process.stdout.write(
              `${JSON.stringify({ gateway: url, signedIn: true, path: done.path, ...shown })}\n`,
            );
          } else {
            const until = done.login.expiresAt
              ? `; token valid until ${new Date(done.login.expiresAt * 1000).toISOString()}`
              : '';
            const renew = done.login.refreshToken ? ', renewed automatically' : '';
            process.stdout.write(`Signed in to ${url} as ${who}${until}${renew}.\nSaved in ${done.path}\n`);
          }
        },
      ),
    [
      'npx warden login --url https://warden.example.com',
      'npx warden login --url https://warden.example.com --device',
      'npx warden login --url http://127.0.0.1:8080 --no-browser',
    ],
  );

  examples(
    program
      .command('logout')
      .description('forget the sign-in for --url (and revoke its tokens where the IdP allows)')
      .action(async (_o: unknown, cmd: Command) => {
        const url = gatewayUrl(globals(cmd).url);
        const done = await logout(url);
        if (done.warning) process.stderr.write(`warden: ${done.warning}\n`);
        if (wantsJson(cmd)) {
          process.stdout.write(`${JSON.stringify({ gateway: url, ...done })}\n`);
        } else if (!done.signedIn) {
          process.stdout.write(`Not signed in to ${url}; nothing to forget.\n`);
        } else {
          const revoked = done.revoked.length ? ` (revoked at the IdP: ${done.revoked.join(', ')})` : '';
          process.stdout.write(`Signed out of ${url}${revoked}.\n`);
        }
      }),
    ['npx warden logout --url https://warden.example.com'],
  );

  examples(
    program
      .command('whoami')
      .description('who the CLI acts as for --url, and where its token comes from')
      .action(async (_o: unknown, cmd: Command) => {
        const ctx = await context(cmd);
        let claims: Record<string, unknown> = {};
        try {
          claims = ctx.token ? jwtClaims(ctx.token) : {};
        } catch {
          // an opaque token: nothing to show but its source
        }
        const stored = ctx.source === 'login' ? new CredentialStore().get(ctx.url) : undefined;
        const name =
          ['preferred_username', 'username', 'email', 'upn']
            .map((k) => claims[k])
            .find((v) => typeof v === 'string') ??
          stored?.username ??
          claims.sub;
        const info = {
          gateway: ctx.url,
          source: ctx.source,
          user: name,
          sub: claims.sub,
          issuer: claims.iss ?? stored?.issuer,
          groups: claims.groups,
          expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : undefined,
        };
        if (wantsJson(cmd)) {
          process.stdout.write(`${JSON.stringify(info)}\n`);
          return;
        }
        const from = {
          flag: '--token',
          env: 'WARDEN_TOKEN',
          login: '`warden login`',
          'dev-user': "the local twin's dev-user grant",
        }[ctx.source ?? 'flag'];
        const groups = Array.isArray(info.groups) ? ` (groups: ${info.groups.join(', ')})` : '';
        process.stdout.write(
          `${String(info.user ?? 'unknown')}${groups} at ${ctx.url}, token from ${from}` +
            `${info.expiresAt ? `, expires ${info.expiresAt}` : ''}\n` +
            '(read from the token itself; the gateway checks it on every call)\n',
        );
      }),
    ['npx warden whoami', 'npx warden whoami --url https://warden.example.com --json'],
  );
}

/** A JWT's payload, unverified: only for showing who a token names (the gateway verifies it). */
function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (!part) return {};
  const parsed = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
}
