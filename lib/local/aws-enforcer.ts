/**
 * The local twin's IAM enforcement: an endpoint in front of the embedded DynamoDB (dynalite) that
 * accepts only calls signed with credentials from the local STS (./sts.ts), verifies the SigV4
 * signature with the session's secret, and evaluates the call's IAM action and resources against
 * the session policy and the role's identity policy with an IAM policy simulator
 * (@cloud-copilot/iam-simulate): explicit deny > allow > implicit deny. Denied calls get DynamoDB's
 * AccessDeniedException; allowed calls are forwarded unchanged.
 *
 * `startAwsTwin` starts both and the demo table the `demo-aws` target reads and writes.
 */
import { createHash, createHmac, timingSafeEqual, type BinaryLike } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { SignatureV4 } from '@smithy/signature-v4';
import type { WardenConfigInput } from '../../lambdas/core/config.js';
import type { TableDefinition } from '../tables.js';
import { createTables } from './dynamodb.js';
import { identityPolicy, SessionRegistry, startLocalSts, type LocalRole, type LocalSession } from './sts.js';
import { keepAliveWithMargin } from './listen.js';

export interface EnforcementDecision {
  readonly at: string;
  readonly accessKeyId: string;
  readonly principal?: string;
  readonly action: string;
  readonly resources: readonly string[];
  readonly allowed: boolean;
  readonly reason: string;
}

export interface AwsEnforcer {
  readonly url: string;
  /** Every call the endpoint saw, allowed or not, in order. */
  readonly decisions: readonly EnforcementDecision[];
  close(): Promise<void>;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData): BinaryLike =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? Buffer.from(d)
      : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

/** SHA-256 and HMAC from node:crypto, in the shape SignatureV4 takes. */
class NodeSha256 {
  readonly #hash;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

class DeniedCall extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The resources a DynamoDB call touches, as IAM evaluates them. */
function dynamoResources(body: Record<string, any>, region: string, account: string): string[] {
  const table = (name: string) =>
    name.startsWith('arn:') ? name : `arn:aws:dynamodb:${region}:${account}:table/${name}`;
  if (typeof body.TableName === 'string') {
    const t = table(body.TableName);
    return [typeof body.IndexName === 'string' ? `${t}/index/${body.IndexName}` : t];
  }
  if (body.RequestItems && typeof body.RequestItems === 'object')
    return Object.keys(body.RequestItems).map(table);
  if (Array.isArray(body.TransactItems)) {
    return body.TransactItems.flatMap((item: Record<string, any>) =>
      Object.values(item).map((v: any) => table(String(v?.TableName ?? ''))),
    );
  }
  if (typeof body.ResourceArn === 'string') return [body.ResourceArn];
  // ListTables and friends are wildcard-only in IAM.
  return ['*'];
}

async function decide(
  session: LocalSession,
  action: string,
  resource: string,
  region: string,
): Promise<{ allowed: boolean; reason: string }> {
  const result = await runSimulation(
    {
      request: {
        principal: session.assumedRoleArn,
        action,
        resource: { resource, accountId: session.role.account },
        contextVariables: {
          'aws:RequestedRegion': region,
          ...(session.sourceIdentity ? { 'aws:SourceIdentity': session.sourceIdentity } : {}),
        },
      },
      identityPolicies: [{ name: 'role', policy: identityPolicy(session.role) }],
      ...(session.policy !== undefined ? { sessionPolicy: session.policy } : {}),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error')
    return { allowed: false, reason: `cannot evaluate: ${result.errors.message}` };
  if (result.overallResult === 'Allowed') return { allowed: true, reason: 'allowed by the session policy' };
  return {
    allowed: false,
    reason:
      result.overallResult === 'ExplicitlyDenied'
        ? 'with an explicit deny'
        : `because no session policy allows the ${action} action`,
  };
}

export async function startAwsEnforcer(options: {
  readonly host?: string;
  readonly registry: SessionRegistry;
  /** dynalite's endpoint: allowed calls are forwarded here. */
  readonly dynamoEndpoint: string;
}): Promise<AwsEnforcer> {
  const decisions: EnforcementDecision[] = [];

  const check = async (req: IncomingMessage, body: Buffer): Promise<EnforcementDecision> => {
    const auth = AUTH.exec(req.headers.authorization ?? '');
    if (!auth)
      throw new DeniedCall('MissingAuthenticationTokenException', 'Request is missing Authentication Token');
    const [, accessKeyId, , region, service, signedHeaders, signature] = auth;
    const session = options.registry.get(accessKeyId);
    const token = req.headers['x-amz-security-token'];
    if (!session || token !== session.sessionToken) {
      throw new DeniedCall(
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    if (session.expiresAt.getTime() < Date.now()) {
      throw new DeniedCall('ExpiredTokenException', 'The security token included in the request is expired');
    }
    // The signature proves the caller holds the session's secret, not just its (public) key id.
    const headers: Record<string, string> = {};
    for (const name of signedHeaders.split(';')) headers[name] = String(req.headers[name] ?? '');
    const amzDate = headers['x-amz-date'] ?? '';
    const signingDate = new Date(
      amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
    );
    const url = new URL(req.url ?? '/', 'http://local');
    const signer = new SignatureV4({
      credentials: {
        accessKeyId,
        secretAccessKey: session.secretAccessKey,
        sessionToken: session.sessionToken,
      },
      region,
      service,
      sha256: NodeSha256,
    });
    const [hostname, port] = (headers.host ?? '').split(':');
    const resigned = await signer.sign(
      {
        method: req.method ?? 'POST',
        protocol: 'http:',
        hostname,
        ...(port ? { port: Number(port) } : {}),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body: body.toString('utf8'),
      },
      { signingDate, signingRegion: region, signingService: service },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers.authorization))?.[1] ?? '';
    if (
      expected.length !== signature.length ||
      !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))
    ) {
      throw new DeniedCall(
        'InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided.',
      );
    }

    const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    let parsed: Record<string, any> = {};
    try {
      parsed = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch {
      throw new DeniedCall('SerializationException', 'Start of structure or map found where not expected');
    }
    const action = `dynamodb:${op}`;
    const resources = dynamoResources(parsed, region, session.role.account);
    for (const resource of resources) {
      const { allowed, reason } = await decide(session, action, resource, region);
      if (!allowed) {
        return {
          at: new Date().toISOString(),
          accessKeyId,
          principal: session.assumedRoleArn,
          action,
          resources,
          allowed,
          reason: `User: ${session.assumedRoleArn} is not authorized to perform: ${action} on resource: ${resource} ${reason}`,
        };
      }
    }
    return {
      at: new Date().toISOString(),
      accessKeyId,
      principal: session.assumedRoleArn,
      action,
      resources,
      allowed: true,
      reason: 'allowed by the session policy',
    };
  };

  const deny = (res: ServerResponse, code: string, message: string) => {
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify({ __type: `com.amazon.coral.service#${code}`, message }));
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void (async () => {
        let decision: EnforcementDecision;
        try {
          decision = await check(req, body);
        } catch (error) {
          const e = error instanceof DeniedCall ? error : new DeniedCall('InternalFailure', String(error));
          decisions.push({
            at: new Date().toISOString(),
            accessKeyId: '-',
            action: String(req.headers['x-amz-target'] ?? ''),
            resources: [],
            allowed: false,
            reason: e.message,
          });
          deny(res, e.code, e.message);
          return;
        }
        decisions.push(decision);
        if (!decision.allowed) {
          deny(res, 'AccessDeniedException', decision.reason);
          return;
        }
        const forwarded = await fetch(options.dynamoEndpoint, {
          method: req.method,
          headers: {
            'content-type': String(req.headers['content-type'] ?? 'application/x-amz-json-1.0'),
            'x-amz-target': String(req.headers['x-amz-target'] ?? ''),
            authorization: String(req.headers.authorization ?? ''),
            'x-amz-date': String(req.headers['x-amz-date'] ?? ''),
          },
          body,
        });
        const out = Buffer.from(await forwarded.arrayBuffer());
        res.writeHead(forwarded.status, {
          'content-type': forwarded.headers.get('content-type') ?? 'application/x-amz-json-1.0',
          ...(forwarded.headers.get('x-amz-crc32')
            ? { 'x-amz-crc32': forwarded.headers.get('x-amz-crc32')! }
            : {}),
        });
        res.end(out);
      })().catch((error: unknown) => {
        if (!res.headersSent) deny(res, 'InternalFailure', String(error));
        else res.end();
      });
    });
  });
  keepAliveWithMargin(server);
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    decisions,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The table the `demo-aws` target reads and (with approval) writes. */
export const DEMO_AWS_TABLE: TableDefinition = {
  logicalName: 'DemoInventory',
  partitionKey: { name: 'sku', type: 'S' },
  globalSecondaryIndexes: [{ indexName: 'byWarehouse', partitionKey: { name: 'warehouse', type: 'S' } }],
};
export const DEMO_AWS_TABLE_NAME = 'demo-inventory';

const DEMO_ITEMS = [
  {
    sku: 'WID-001',
    name: 'Widget',
    warehouse: 'north',
    quantity: 120,
    supplierContact: 'ops@acme-supplies.example',
  },
  {
    sku: 'WID-002',
    name: 'Widget XL',
    warehouse: 'north',
    quantity: 35,
    supplierContact: 'ops@acme-supplies.example',
  },
  {
    sku: 'GAD-100',
    name: 'Gadget',
    warehouse: 'south',
    quantity: 0,
    supplierContact: 'sales@gadgetry.example',
  },
  { sku: 'GIZ-042', name: 'Gizmo', warehouse: 'south', quantity: 7, supplierContact: '+44 20 7946 0958' },
];

export interface AwsTwin {
  readonly stsUrl: string;
  readonly enforcerUrl: string;
  readonly registry: SessionRegistry;
  readonly enforcer: AwsEnforcer;
  /** Set on the gateway process: STS for the executor, and the enforcer for its DynamoDB client only. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

/** The AWS targets' roles, as the local STS knows them. */
export function rolesOf(config: WardenConfigInput): LocalRole[] {
  return Object.values(config.targets).flatMap((t) =>
    t.kind === 'aws' ? [{ roleArn: t.roleArn, account: t.account, services: t.services }] : [],
  );
}

export async function startAwsTwin(options: {
  readonly host?: string;
  readonly dynamoEndpoint: string;
  readonly dynamoClient: DynamoDBClient;
  readonly config: WardenConfigInput;
}): Promise<AwsTwin> {
  await createTables(options.dynamoClient, [DEMO_AWS_TABLE], () => DEMO_AWS_TABLE_NAME);
  await options.dynamoClient.send(
    new BatchWriteItemCommand({
      RequestItems: {
        [DEMO_AWS_TABLE_NAME]: DEMO_ITEMS.map((item) => ({ PutRequest: { Item: marshall(item) } })),
      },
    }),
  );
  const registry = new SessionRegistry();
  const sts = await startLocalSts({ host: options.host, roles: rolesOf(options.config), registry });
  const enforcer = await startAwsEnforcer({
    host: options.host,
    registry,
    dynamoEndpoint: options.dynamoEndpoint,
  });
  return {
    stsUrl: sts.url,
    enforcerUrl: enforcer.url,
    registry,
    enforcer,
    env: { AWS_ENDPOINT_URL_STS: sts.url, WARDEN_AWS_ENDPOINT_URL_DYNAMODB: enforcer.url },
    async close() {
      await enforcer.close();
      await sts.close();
    },
  };
}
