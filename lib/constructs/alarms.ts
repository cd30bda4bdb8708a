/**
 * The alarms an operator needs: the API answering 5xx, functions throttled or failing, approval
 * executions failing or timing out, audit exports failing, and a policy set made active around
 * `warden policy push`. All notify one encrypted SNS topic.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { UNRECORDED_POLICY_SET } from '../../lambdas/core/trail.js';
import type { GatewayFunction } from './gateway-function.js';

export interface WardenAlarmsProps {
  readonly httpApi: apigw.HttpApi;
  readonly functions: Readonly<Record<string, GatewayFunction>>;
  readonly stateMachine: sfn.IStateMachine;
  /** The function whose errors mean an audit export failed. */
  readonly exportFunction: GatewayFunction;
  /** The functions that load policy sets (each logs a set it finds unrecorded). */
  readonly policyLoaders: readonly GatewayFunction[];
  /** @default no subscription */
  readonly email?: string;
}

export class WardenAlarms extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: WardenAlarmsProps) {
    super(scope, id);
    const key = new kms.Key(this, 'TopicKey', {
      description: 'Warden: alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const stack = Stack.of(this);
    const cloudwatchPrincipal = new iam.ServicePrincipal('cloudwatch.amazonaws.com');
    // Only this account's alarms: without these conditions any account's CloudWatch could use the
    // key or publish to the topic (the confused-deputy problem).
    const fromOwnAlarms = {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: {
        'aws:SourceArn': stack.formatArn({
          service: 'cloudwatch',
          resource: 'alarm',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      },
    };
    // CloudWatch publishes to an encrypted topic only if it may use the topic's key.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [cloudwatchPrincipal],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromOwnAlarms,
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', { masterKey: key, enforceSSL: true });
    // A topic policy replaces SNS's default one, and enforceSSL's policy only denies: without this
    // allow, CloudWatch may not publish and no alarm ever notifies anyone.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [cloudwatchPrincipal],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: fromOwnAlarms,
      }),
    );
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));

    const five = Duration.minutes(5);
    this.add('Api5xx', 'The API answered 5xx', props.httpApi.metricServerError({ period: five }), 5);
    for (const [name, fn] of Object.entries(props.functions)) {
      this.add(
        `${name}Throttles`,
        `The ${name} function was throttled`,
        fn.fn.metricThrottles({ period: five }),
        1,
      );
      this.add(`${name}Errors`, `The ${name} function failed`, fn.fn.metricErrors({ period: five }), 1);
    }
    this.add(
      'ApprovalFailed',
      'An approval execution failed',
      props.stateMachine.metricFailed({ period: five }),
      1,
    );
    this.add(
      'ApprovalTimedOut',
      'An approval execution hit the state machine timeout',
      props.stateMachine.metricTimedOut({ period: five }),
      1,
    );
    this.add(
      'AuditExportFailed',
      'Starting the audit export failed (the lake is missing a day)',
      props.exportFunction.fn.metricErrors({ period: Duration.hours(1) }),
      1,
    );
    // A set made active with no policy_pushed event (a raw write of the Policies table): every
    // function that loads it logs UNRECORDED_POLICY_SET (lambdas/core/policy-provider.ts).
    const unrecorded = { namespace: 'Warden', metricName: 'PolicySetUnrecorded' };
    props.policyLoaders.forEach((fn, i) => {
      new logs.MetricFilter(this, `PolicySetUnrecorded${i}`, {
        logGroup: fn.logGroup,
        metricNamespace: unrecorded.namespace,
        metricName: unrecorded.metricName,
        filterPattern: logs.FilterPattern.stringValue('$.msg', '=', UNRECORDED_POLICY_SET),
        metricValue: '1',
      });
    });
    this.add(
      'PolicySetUnrecorded',
      'A policy set was made active around warden policy push (no policy_pushed event): run warden policy verify',
      new cloudwatch.Metric({ ...unrecorded, statistic: 'Sum', period: five }),
      1,
    );
  }

  private add(id: string, description: string, metric: cloudwatch.IMetric, threshold: number): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: `Warden: ${description}`,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
