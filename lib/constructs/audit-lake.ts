/**
 * The audit lake: a scheduled ExportTableToPointInTime of the Audit table into an encrypted bucket,
 * a Glue table over the export format, and an Athena workgroup with the named queries auditors
 * start from. DynamoDB keeps recent events for the API (TTL); the lake keeps them for years.
 *
 * The lake bucket has S3 Object Lock (default retention, GOVERNANCE unless configured), so nobody,
 * Warden's functions included, can delete or overwrite an export before its retention ends; no
 * lifecycle rule expires a version earlier. Exports are partitioned by date (`dt=YYYY-MM-DD`) and
 * the Glue table projects that partition, so no crawler runs and queries read only the dates they
 * name. Athena's results live in a bucket of their own, without the lock, and expire.
 */
import { Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { auditQueries } from '../audit-queries.js';
import { AUDIT_LAKE_COLUMNS, AUDIT_LAKE_PARTITION, AUDIT_LAKE_TABLE } from '../audit-schema.js';
import { GatewayFunction } from './gateway-function.js';

/** Where exports land in the bucket: `exports/dt=YYYY-MM-DD/`, then DynamoDB's `AWSDynamoDB/<exportId>/…`. */
export const AUDIT_EXPORT_PREFIX = 'exports/';
export const ATHENA_RESULTS_PREFIX = 'athena-results/';

export interface AuditLakeProps {
  readonly auditTable: dynamodb.ITable;
  readonly key: kms.IKey;
  /** EventBridge schedule expression, e.g. `rate(1 day)` or `cron(15 2 * * ? *)`. */
  readonly schedule: string;
  /** Days exports are kept. */
  readonly retentionDays: number;
  /** Object Lock mode of the lake bucket's default retention. @default 'GOVERNANCE' */
  readonly objectLockMode?: 'GOVERNANCE' | 'COMPLIANCE';
  /** Days each export is locked against deletion and overwrite. @default retentionDays */
  readonly objectLockDays?: number;
  /** First export date the Glue table's partition projection covers (YYYY-MM-DD). @default '2024-01-01' */
  readonly firstExportDate?: string;
  readonly logRetention: logs.RetentionDays;
}

export class AuditLake extends Construct {
  readonly bucket: s3.Bucket;
  /** Athena query results: KMS-encrypted, not locked, expired after 30 days. */
  readonly resultsBucket: s3.Bucket;
  readonly accessLogsBucket: s3.Bucket;
  readonly exportFunction: GatewayFunction;
  readonly database: glue.CfnDatabase;
  readonly table: glue.CfnTable;
  readonly workGroup: athena.CfnWorkGroup;
  readonly namedQueries: athena.CfnNamedQuery[];
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: AuditLakeProps) {
    super(scope, id);
    const stack = Stack.of(this);

    // S3 server access logs cannot be delivered to an SSE-KMS bucket, hence S3-managed keys here.
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const lockDays = props.objectLockDays ?? props.retentionDays;
    const lockRetention =
      (props.objectLockMode ?? 'GOVERNANCE') === 'COMPLIANCE'
        ? s3.ObjectLockRetention.compliance(Duration.days(lockDays))
        : s3.ObjectLockRetention.governance(Duration.days(lockDays));
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: lockRetention,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'lake/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'exports',
          prefix: AUDIT_EXPORT_PREFIX,
          transitions: [
            { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) },
          ],
          expiration: Duration.days(props.retentionDays),
        },
        // A version made noncurrent (overwritten, or behind a delete marker) outlives its lock.
        { id: 'old-versions', noncurrentVersionExpiration: Duration.days(lockDays) },
        { id: 'uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });

    this.resultsBucket = new s3.Bucket(this, 'Results', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'results/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'athena-results', prefix: ATHENA_RESULTS_PREFIX, expiration: Duration.days(30) },
        { id: 'uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });

    this.exportFunction = new GatewayFunction(this, 'Export', {
      entry: 'lambdas/handlers/export-audit.ts',
      // It reads the trail and writes JSON lines: no parser, no Cedar, no IAM data in its bundle.
      loadsClassifiers: false,
      description: 'Warden: exports the audit table to the audit lake',
      memorySize: 256,
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
      environment: {
        AUDIT_BUCKET: this.bucket.bucketName,
        AUDIT_EXPORT_PREFIX,
        AUDIT_TABLE_ARN: props.auditTable.tableArn,
        AUDIT_KMS_KEY_ARN: props.key.keyArn,
      },
    });
    // Exporting needs no read access to items: DynamoDB reads the PITR backup itself.
    this.exportFunction.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:ExportTableToPointInTime'],
        resources: [props.auditTable.tableArn],
      }),
    );
    this.exportFunction.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:DescribeExport'],
        resources: [`${props.auditTable.tableArn}/export/*`],
      }),
    );
    this.exportFunction.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:PutObjectAcl'],
        resources: [this.bucket.arnForObjects(`${AUDIT_EXPORT_PREFIX}*`)],
      }),
    );
    props.key.grant(this.exportFunction, 'kms:GenerateDataKey', 'kms:Encrypt');

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Warden: export the audit table to the lake',
      schedule: events.Schedule.expression(props.schedule),
    });
    this.schedule.addTarget(
      new targets.LambdaFunction(this.exportFunction.fn, {
        retryAttempts: 2,
        maxEventAge: Duration.hours(2),
      }),
    );

    const dbName = Names.uniqueResourceName(this, { maxLength: 64, separator: '_' }).toLowerCase();
    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: { name: dbName, description: 'Warden audit lake' },
    });
    this.table = new glue.CfnTable(this, 'Table', {
      catalogId: stack.account,
      databaseName: dbName,
      tableInput: {
        name: AUDIT_LAKE_TABLE,
        description: 'Warden audit events, DynamoDB export format (DYNAMODB_JSON), by export date',
        tableType: 'EXTERNAL_TABLE',
        partitionKeys: [{ name: AUDIT_LAKE_PARTITION, type: 'string', comment: 'export date, YYYY-MM-DD' }],
        parameters: {
          classification: 'json',
          compressionType: 'gzip',
          EXTERNAL: 'TRUE',
          // Partition projection: Athena computes the dt=… partitions itself; no crawler, no
          // MSCK REPAIR, and a query names the dates it reads.
          'projection.enabled': 'true',
          [`projection.${AUDIT_LAKE_PARTITION}.type`]: 'date',
          [`projection.${AUDIT_LAKE_PARTITION}.format`]: 'yyyy-MM-dd',
          [`projection.${AUDIT_LAKE_PARTITION}.range`]: `${props.firstExportDate ?? '2024-01-01'},NOW`,
          [`projection.${AUDIT_LAKE_PARTITION}.interval`]: '1',
          [`projection.${AUDIT_LAKE_PARTITION}.interval.unit`]: 'DAYS',
          'storage.location.template': `${this.bucket.s3UrlForObject(AUDIT_EXPORT_PREFIX)}${AUDIT_LAKE_PARTITION}=\${${AUDIT_LAKE_PARTITION}}/`,
        },
        storageDescriptor: {
          // Exports nest under dt=…/AWSDynamoDB/<id>/data/; manifests alongside parse to `item` = NULL,
          // which the queries skip.
          location: this.bucket.s3UrlForObject(AUDIT_EXPORT_PREFIX),
          columns: AUDIT_LAKE_COLUMNS.map((c) => ({ ...c })),
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: {
            serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
            parameters: { 'ignore.malformed.json': 'true', 'case.insensitive': 'true' },
          },
        },
      },
    });
    this.table.node.addDependency(this.database);

    const wgName = Names.uniqueResourceName(this, { maxLength: 120, separator: '-' });
    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: wgName,
      description: 'Warden audit queries',
      state: 'ENABLED',
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: 100 * 1024 ** 3,
        resultConfiguration: {
          outputLocation: this.resultsBucket.s3UrlForObject(ATHENA_RESULTS_PREFIX),
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: props.key.keyArn },
        },
      },
    });

    this.namedQueries = auditQueries().map((q) => {
      const named = new athena.CfnNamedQuery(this, `Query-${q.name}`, {
        name: q.name,
        description: q.description,
        database: dbName,
        workGroup: wgName,
        queryString: q.sql,
      });
      named.node.addDependency(this.workGroup);
      named.node.addDependency(this.database);
      return named;
    });
  }
}
