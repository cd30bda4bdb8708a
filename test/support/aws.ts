/** The demo AWS target's DynamoDB table as it stands, read past Warden (the twin's own store). */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';

/** The item with `sku` in the demo inventory table, undefined when there is none. */
export async function demoAwsItem(
  twin: { readonly dynamoEndpoint: string },
  sku: string,
): Promise<Record<string, unknown> | undefined> {
  const ddb = new DynamoDBClient({
    endpoint: twin.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' },
  });
  try {
    const out = await ddb.send(
      new GetItemCommand({ TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: sku } } }),
    );
    return out.Item ? unmarshall(out.Item) : undefined;
  } finally {
    ddb.destroy();
  }
}
