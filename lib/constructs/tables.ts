/**
 * Every DynamoDB table of Warden, built from the shared definitions in lib/tables.ts (the same ones
 * the local twin uses): on-demand, point-in-time recovery, customer-managed KMS key, deletion
 * protection, TTL where items expire. Construct ids are the logical names: renaming one replaces
 * the table.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { ALL_TABLES, type KeyDefinition, type TableDefinition } from '../tables.js';

export interface WardenTablesProps {
  readonly encryptionKey: kms.IKey;
  /** @default ALL_TABLES */
  readonly definitions?: readonly TableDefinition[];
}

function attribute(key: KeyDefinition): dynamodb.Attribute {
  return {
    name: key.name,
    type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
  };
}

export class WardenTables extends Construct {
  private readonly tables = new Map<string, dynamodb.Table>();
  readonly definitions: readonly TableDefinition[];

  constructor(scope: Construct, id: string, props: WardenTablesProps) {
    super(scope, id);
    this.definitions = props.definitions ?? ALL_TABLES;
    for (const def of this.definitions) {
      const table = new dynamodb.Table(this, def.logicalName, {
        partitionKey: attribute(def.partitionKey),
        ...(def.sortKey ? { sortKey: attribute(def.sortKey) } : {}),
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: props.encryptionKey,
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
        ...(def.timeToLiveAttribute ? { timeToLiveAttribute: def.timeToLiveAttribute } : {}),
      });
      for (const gsi of def.globalSecondaryIndexes ?? []) {
        table.addGlobalSecondaryIndex({
          indexName: gsi.indexName,
          partitionKey: attribute(gsi.partitionKey),
          ...(gsi.sortKey ? { sortKey: attribute(gsi.sortKey) } : {}),
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      this.tables.set(def.logicalName, table);
    }
  }

  /** The table built from `def`; throws if it is not part of this construct. */
  table(def: TableDefinition): dynamodb.Table {
    const t = this.tables.get(def.logicalName);
    if (!t) throw new Error(`no table ${def.logicalName}`);
    return t;
  }

  all(): ReadonlyArray<{ def: TableDefinition; table: dynamodb.Table }> {
    return this.definitions.map((def) => ({ def, table: this.table(def) }));
  }
}
