/**
 * The local twin's audit lake: the Audit table written the way DynamoDB's ExportTableToPointInTime
 * writes it (format DYNAMODB_JSON) into the partition of its date, as the scheduled Lambda asks:
 * `<root>/exports/dt=YYYY-MM-DD/AWSDynamoDB/<exportId>/data/<file>.json.gz`, one
 * `{"Item": {…attribute values…}}` per line, plus the manifests beside it. Auditors' queries then
 * run over these files in DuckDB through the schema the Glue table declares (lib/audit-schema.ts).
 */
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AUDIT_LAKE_PARTITION, AUDIT_LAKE_TABLE, duckdbItemType } from '../audit-schema.js';
import { exportPartition } from '../../lambdas/handlers/export-audit.js';

/** Same prefix the stack's export uses in the lake bucket (lib/constructs/audit-lake.ts). */
export const EXPORTS_DIR = 'exports';

export interface AuditExport {
  readonly exportId: string;
  /** `<root>/exports/dt=YYYY-MM-DD/AWSDynamoDB/<exportId>` */
  readonly dir: string;
  readonly dataFiles: readonly string[];
  readonly itemCount: number;
  readonly exportTime: string;
}

export interface ExportOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** The lake's root; exports go under `<root>/exports/`. */
  readonly root: string;
  /** @default true (DynamoDB's exports are gzip'd) */
  readonly gzip?: boolean;
  readonly now?: Date;
}

/** Like DynamoDB's export ids: a time-ordered prefix and a random part. */
function newExportId(now: Date): string {
  return `${now.getTime().toString().padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}

/** Scans the table (consistent) and writes one full export. */
export async function exportAuditTable(options: ExportOptions): Promise<AuditExport> {
  const now = options.now ?? new Date();
  const gzip = options.gzip ?? true;
  const exportId = newExportId(now);
  const dir = join(resolve(options.root), EXPORTS_DIR, exportPartition(now), 'AWSDynamoDB', exportId);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });

  const lines: string[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await options.client.send(
      new ScanCommand({
        TableName: options.tableName,
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    // The low-level client's AttributeValue maps are exactly DYNAMODB_JSON's typed attributes.
    for (const item of out.Items ?? []) lines.push(JSON.stringify({ Item: item }));
    start = out.LastEvaluatedKey;
  } while (start);

  const text = lines.length ? `${lines.join('\n')}\n` : '';
  const content = gzip ? gzipSync(text) : Buffer.from(text, 'utf8');
  const file = join(dataDir, `${randomBytes(8).toString('hex')}.json${gzip ? '.gz' : ''}`);
  writeFileSync(file, content);
  const md5 = createHash('md5').update(content).digest('hex');
  const exportTime = now.toISOString();
  writeFileSync(
    join(dir, 'manifest-files.json'),
    `${JSON.stringify({ itemCount: lines.length, md5Checksum: md5, dataFileS3Key: file })}\n`,
  );
  writeFileSync(
    join(dir, 'manifest-summary.json'),
    JSON.stringify({
      version: '2020-06-30',
      exportArn: `local:export/${exportId}`,
      startTime: exportTime,
      endTime: new Date().toISOString(),
      tableArn: `local:table/${options.tableName}`,
      exportTime,
      s3Prefix: EXPORTS_DIR,
      outputFormat: 'DYNAMODB_JSON',
      itemCount: lines.length,
    }),
  );
  return { exportId, dir, dataFiles: [file], itemCount: lines.length, exportTime };
}

const PARTITION_DIR = new RegExp(`^${AUDIT_LAKE_PARTITION}=\\d{4}-\\d{2}-\\d{2}$`);

/** Every export directory under the lake root (`exports/dt=…/AWSDynamoDB/<id>`), oldest first. */
function exportDirs(root: string): string[] {
  const base = join(resolve(root), EXPORTS_DIR);
  if (!existsSync(base)) return [];
  const dirs: Array<{ id: string; dir: string }> = [];
  for (const partition of readdirSync(base).filter((p) => PARTITION_DIR.test(p))) {
    const exports = join(base, partition, 'AWSDynamoDB');
    if (!existsSync(exports)) continue;
    for (const id of readdirSync(exports)) dirs.push({ id, dir: join(exports, id) });
  }
  // Export ids start with the export time, so they order exports across partitions.
  return dirs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((d) => d.dir);
}

/** Data files of every export under the lake root, oldest export first. */
export function exportDataFiles(root: string): string[] {
  const out: string[] = [];
  for (const dir of exportDirs(root)) {
    const data = join(dir, 'data');
    if (!existsSync(data) || !statSync(data).isDirectory()) continue;
    for (const f of readdirSync(data).sort()) if (/\.json(\.gz)?$/.test(f)) out.push(join(data, f));
  }
  return out;
}

/** Keeps the newest `keep` exports (each is a full snapshot; the queries de-duplicate anyway). */
export function pruneExports(root: string, keep: number): void {
  const dirs = exportDirs(root);
  for (const dir of dirs.slice(0, Math.max(0, dirs.length - keep))) {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ScheduledExports {
  /** Exports now (serialised with the timer's runs). */
  exportNow(): Promise<AuditExport>;
  stop(): Promise<void>;
}

/** The twin's stand-in for the scheduled export Lambda: a full export every `intervalMs`. */
export function scheduleAuditExports(
  options: ExportOptions & { intervalMs: number; keep?: number; log?: (line: string) => void },
): ScheduledExports {
  let chain: Promise<unknown> = Promise.resolve();
  const run = (): Promise<AuditExport> => {
    const next = chain.then(async () => {
      const done = await exportAuditTable({ ...options, now: new Date() });
      pruneExports(options.root, options.keep ?? 3);
      return done;
    });
    chain = next.catch(() => undefined);
    return next;
  };
  const timer = setInterval(() => {
    run().catch((error: unknown) => options.log?.(`audit export failed: ${String(error)}`));
  }, options.intervalMs);
  timer.unref();
  return {
    exportNow: run,
    async stop() {
      clearInterval(timer);
      await chain;
    },
  };
}

/** SQL literal for a path (DuckDB string). */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export interface LakeQueryResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
}

export interface AuditLake {
  /** Runs SQL over `audit_export` (the Glue table's name and shape); `?` parameters bind in order. */
  query(sql: string, parameters?: readonly string[]): Promise<LakeQueryResult>;
  close(): void;
}

/**
 * DuckDB over the export files, through the Glue table's declared columns: one column `item`, a
 * struct of typed attributes, read from `{"Item": …}` lines, and the partition column `dt` read
 * from the Hive-style path, as Athena's partition projection gives it. Undeclared attributes are
 * ignored, as the JSON SerDe in Athena ignores them.
 */
export async function openAuditLake(files: readonly string[]): Promise<AuditLake> {
  if (files.length === 0) throw new Error('no audit export files to query');
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const list = `[${files.map(literal).join(', ')}]`;
  await conn.run(
    `CREATE VIEW ${AUDIT_LAKE_TABLE} AS SELECT "Item" AS item, ${AUDIT_LAKE_PARTITION} FROM read_json(${list}, format = 'newline_delimited', columns = {"Item": '${duckdbItemType()}'}, hive_partitioning = true, hive_types = {'${AUDIT_LAKE_PARTITION}': VARCHAR})`,
  );
  return {
    async query(sql, parameters = []) {
      const prepared = await conn.prepare(sql);
      parameters.forEach((p, i) => prepared.bindVarchar(i + 1, p));
      const reader = await prepared.runAndReadAll();
      return {
        columns: reader.columnNames(),
        rows: reader.getRowObjectsJson() as Record<string, unknown>[],
      };
    },
    close() {
      conn.closeSync();
      db.closeSync();
    },
  };
}
