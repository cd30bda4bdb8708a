/**
 * The local twin's STS: answers AssumeRole (STS Query protocol, XML) for the roles the
 * configuration's AWS targets name, with temporary credentials, and remembers each session's
 * inline policy, source identity and tags so the enforcing endpoint (./aws-enforcer.ts) can
 * evaluate every call made with those credentials the way IAM would.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keepAliveWithMargin } from './listen.js';

/** A role the twin can assume: its identity policy allows the target's services, nothing else. */
export interface LocalRole {
  readonly roleArn: string;
  readonly account: string;
  readonly services: readonly string[];
}

export interface LocalSession {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly role: LocalRole;
  readonly roleSessionName: string;
  readonly sourceIdentity?: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The inline session policy, parsed; undefined when none was passed. */
  readonly policy?: unknown;
  readonly expiresAt: Date;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>` */
  readonly assumedRoleArn: string;
}

/** Sessions by access key id, shared by the STS and the enforcing endpoint. */
export class SessionRegistry {
  readonly #sessions = new Map<string, LocalSession>();
  add(session: LocalSession): void {
    this.#sessions.set(session.accessKeyId, session);
  }
  get(accessKeyId: string): LocalSession | undefined {
    return this.#sessions.get(accessKeyId);
  }
  /** Every session issued, oldest first (tests and the dev console). */
  all(): LocalSession[] {
    return [...this.#sessions.values()];
  }
}

/** Roles in the identity policy form IAM would hold for them. */
export function identityPolicy(role: LocalRole): unknown {
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: role.services.map((s) => `${s}:*`), Resource: '*' }],
  };
}

export interface LocalSts {
  readonly url: string;
  readonly registry: SessionRegistry;
  close(): Promise<void>;
}

class StsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^[\w+=,.@-]{2,64}$/;
const SESSION_POLICY_MAX_CHARS = 2048;

export async function startLocalSts(options: {
  readonly host?: string;
  readonly roles: readonly LocalRole[];
  readonly registry?: SessionRegistry;
  /** @default 3600 */
  readonly maxDurationSeconds?: number;
}): Promise<LocalSts> {
  const registry = options.registry ?? new SessionRegistry();
  const roles = new Map(options.roles.map((r) => [r.roleArn, r]));
  const maxDuration = options.maxDurationSeconds ?? 3600;

  const assumeRole = (params: URLSearchParams): string => {
    const roleArn = params.get('RoleArn') ?? '';
    const role = roles.get(roleArn);
    if (!role) {
      throw new StsError(
        403,
        'AccessDenied',
        `User: arn:aws:iam::000000000000:user/local-twin is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    }
    const sessionName = params.get('RoleSessionName') ?? '';
    if (!NAME.test(sessionName)) {
      throw new StsError(
        400,
        'ValidationError',
        `RoleSessionName "${sessionName}" must match [\\w+=,.@-]{2,64}`,
      );
    }
    const sourceIdentity = params.get('SourceIdentity') ?? undefined;
    if (sourceIdentity !== undefined && (!NAME.test(sourceIdentity) || sourceIdentity.startsWith('aws:'))) {
      throw new StsError(
        400,
        'ValidationError',
        `SourceIdentity "${sourceIdentity}" must match [\\w+=,.@-]{2,64}`,
      );
    }
    const duration = Number(params.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(duration) || duration < 900 || duration > maxDuration) {
      throw new StsError(400, 'ValidationError', `DurationSeconds must be 900-${maxDuration}`);
    }
    let policy: unknown;
    const policyText = params.get('Policy');
    if (policyText !== null) {
      if (policyText.length > SESSION_POLICY_MAX_CHARS) {
        throw new StsError(
          400,
          'PackedPolicyTooLarge',
          'Packed size of the session policy exceeds the limit',
        );
      }
      try {
        policy = JSON.parse(policyText);
      } catch {
        throw new StsError(400, 'MalformedPolicyDocument', 'The session policy is not valid JSON');
      }
      const statements = (policy as { Statement?: unknown })?.Statement;
      if ((policy as { Version?: unknown })?.Version !== '2012-10-17' || statements === undefined) {
        throw new StsError(
          400,
          'MalformedPolicyDocument',
          'The session policy needs Version 2012-10-17 and Statement',
        );
      }
    }
    const tags: Record<string, string> = {};
    for (let i = 1; params.has(`Tags.member.${i}.Key`); i++) {
      tags[params.get(`Tags.member.${i}.Key`)!] = params.get(`Tags.member.${i}.Value`) ?? '';
    }
    const roleName = roleArn.split('/').pop()!;
    const session: LocalSession = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(48).toString('base64'),
      role,
      roleSessionName: sessionName,
      ...(sourceIdentity ? { sourceIdentity } : {}),
      tags,
      ...(policy !== undefined ? { policy } : {}),
      expiresAt: new Date(Date.now() + duration * 1000),
      assumedRoleArn: `arn:aws:sts::${role.account}:assumed-role/${roleName}/${sessionName}`,
    };
    registry.add(session);
    return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    ${sourceIdentity ? `<SourceIdentity>${xml(sourceIdentity)}</SourceIdentity>` : ''}
    <AssumedRoleUser>
      <Arn>${xml(session.assumedRoleArn)}</Arn>
      <AssumedRoleId>AROA${randomBytes(8).toString('hex').toUpperCase()}:${xml(sessionName)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${session.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${xml(session.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${xml(session.sessionToken)}</SessionToken>
      <Expiration>${session.expiresAt.toISOString()}</Expiration>
    </Credentials>
    <PackedPolicySize>${policyText ? Math.ceil((policyText.length / SESSION_POLICY_MAX_CHARS) * 100) : 0}</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>
</AssumeRoleResponse>`;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: string) => {
        res.writeHead(status, { 'content-type': 'text/xml' });
        res.end(body);
      };
      try {
        if (!req.headers.authorization?.startsWith('AWS4-HMAC-SHA256 ')) {
          throw new StsError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
        }
        const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const action = params.get('Action');
        if (action !== 'AssumeRole') {
          throw new StsError(400, 'InvalidAction', `The local STS answers AssumeRole only, not ${action}`);
        }
        reply(200, assumeRole(params));
      } catch (error) {
        const e = error instanceof StsError ? error : new StsError(500, 'InternalFailure', String(error));
        reply(
          e.status,
          `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${e.status < 500 ? 'Sender' : 'Receiver'}</Type><Code>${e.code}</Code><Message>${xml(e.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
        );
      }
    });
  });
  keepAliveWithMargin(server);
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function xml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
