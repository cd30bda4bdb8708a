/**
 * Warden's KMS keys. Separate keys keep separate audiences: functions decrypt tables with the data
 * key; auditors get the lake key (exports, Athena results) without being able to read live tables;
 * the HMAC key signs cookies and links without its secret ever leaving KMS.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export class WardenKeys extends Construct {
  /** Encrypts the DynamoDB tables. */
  readonly data: kms.Key;
  /** Encrypts the audit lake bucket and Athena results. */
  readonly lake: kms.Key;
  /** HMAC_256 for GenerateMac/VerifyMac (cookies, CSRF tokens, links). */
  readonly hmac: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.data = new kms.Key(this, 'DataKey', {
      description: 'Warden: DynamoDB tables',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
    this.lake = new kms.Key(this, 'LakeKey', {
      description: 'Warden: audit lake exports and Athena results',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
    // KMS cannot rotate HMAC keys automatically; rotating means a new key and a grace period in
    // which VerifyMac tries both (see docs/deploy.md).
    this.hmac = new kms.Key(this, 'HmacKey', {
      description: 'Warden: HMAC for session cookies, CSRF tokens and approval links',
      keySpec: kms.KeySpec.HMAC_256,
      keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
  }
}
