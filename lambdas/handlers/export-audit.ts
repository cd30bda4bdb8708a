/**
 * The scheduled audit export: ExportTableToPointInTime of the Audit table into the audit lake
 * bucket (DYNAMODB_JSON, SSE-KMS), which the Glue table and Athena's named queries read. DynamoDB
 * does the work from the PITR backup; this function only asks for it, so it needs no read access.
 * The local twin writes the same layout with lib/local/audit-export.ts.
 */
import {
  DynamoDBClient,
  ExportTableToPointInTimeCommand,
  type ExportTableToPointInTimeCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { ScheduledEvent } from 'aws-lambda';
import { AUDIT_LAKE_PARTITION } from '../../lib/audit-schema.js';
import { logJson } from '../middleware/http.js';

export interface ExportSettings {
  readonly tableArn: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly kmsKeyArn: string;
}

export function exportSettingsFromEnv(env: NodeJS.ProcessEnv): ExportSettings {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  return {
    tableArn: need('AUDIT_TABLE_ARN'),
    bucket: need('AUDIT_BUCKET'),
    prefix: env.AUDIT_EXPORT_PREFIX ?? 'exports/',
    kmsKeyArn: need('AUDIT_KMS_KEY_ARN'),
  };
}

/** `dt=YYYY-MM-DD` (UTC): the Hive-style partition the Glue table projects (lib/audit-schema.ts). */
export function exportPartition(at: Date): string {
  return `${AUDIT_LAKE_PARTITION}=${at.toISOString().slice(0, 10)}`;
}

/**
 * The export request for one scheduled event. EventBridge retries deliver the same event id, and
 * DynamoDB treats a repeated ClientToken as the same export, so a retry never exports twice. The
 * export lands in the partition of the event's date: `<prefix>dt=YYYY-MM-DD/AWSDynamoDB/<id>/…`.
 */
export function exportRequest(
  settings: ExportSettings,
  event: Pick<ScheduledEvent, 'id' | 'time'>,
  now: Date = new Date(),
): ExportTableToPointInTimeCommandInput {
  const time = Date.parse(event.time);
  const base = settings.prefix.replace(/\/+$/, '');
  return {
    TableArn: settings.tableArn,
    S3Bucket: settings.bucket,
    S3Prefix: `${base ? `${base}/` : ''}${exportPartition(Number.isNaN(time) ? now : new Date(time))}`,
    S3SseAlgorithm: 'KMS',
    S3SseKmsKeyId: settings.kmsKeyArn,
    ExportFormat: 'DYNAMODB_JSON',
    ExportType: 'FULL_EXPORT',
    ...(Number.isNaN(time) ? {} : { ExportTime: new Date(time) }),
    ClientToken: `warden-audit-${event.id}`.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64),
  };
}

let settings: ExportSettings | undefined;
let client: DynamoDBClient | undefined;

export const handler = async (event: ScheduledEvent): Promise<{ exportArn?: string; status?: string }> => {
  settings ??= exportSettingsFromEnv(process.env);
  client ??= new DynamoDBClient({});
  const out = await client.send(new ExportTableToPointInTimeCommand(exportRequest(settings, event)));
  const description = out.ExportDescription;
  logJson({
    level: 'info',
    msg: 'audit export started',
    exportArn: description?.ExportArn,
    status: description?.ExportStatus,
  });
  return { exportArn: description?.ExportArn, status: description?.ExportStatus };
};
