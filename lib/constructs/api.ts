/**
 * The public HTTP API: an API Gateway HTTP API (v2 payload) in front of the api function, with
 * throttling and access logs on its default stage.
 *
 * No API Gateway JWT authorizer, on purpose: MCP clients discover how to sign in from the 401 itself
 * (`WWW-Authenticate: Bearer resource_metadata="…/.well-known/oauth-protected-resource"`, RFC 9728),
 * and an authorizer answers 401 before the function can add that header. The approval page must also
 * answer an unauthenticated GET with a sign-in redirect. So the function verifies every token itself
 * (aws-jwt-verify, JWKS cached across invocations) — one place, the same on AWS and in the local twin.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigwv1 from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The routes of DESIGN.md's public contract; anything else reaches the function through `$default`. */
export const API_ROUTES: ReadonlyArray<{ readonly method: apigw.HttpMethod; readonly path: string }> = [
  { method: apigw.HttpMethod.GET, path: '/healthz' },
  { method: apigw.HttpMethod.POST, path: '/v1/targets/{target}/sql' },
  { method: apigw.HttpMethod.POST, path: '/v1/targets/{target}/aws' },
  { method: apigw.HttpMethod.POST, path: '/v1/targets/{target}/explain' },
  { method: apigw.HttpMethod.POST, path: '/v1/targets/{target}/access-requests' },
  { method: apigw.HttpMethod.GET, path: '/v1/requests/{id}' },
  { method: apigw.HttpMethod.GET, path: '/v1/approvals' },
  { method: apigw.HttpMethod.POST, path: '/v1/approvals/{id}/decision' },
  { method: apigw.HttpMethod.GET, path: '/approve/{id}' },
  { method: apigw.HttpMethod.POST, path: '/approve/{id}' },
  { method: apigw.HttpMethod.GET, path: '/approvals' },
  { method: apigw.HttpMethod.GET, path: '/v1/sessions' },
  { method: apigw.HttpMethod.GET, path: '/v1/sessions/{id}' },
  { method: apigw.HttpMethod.POST, path: '/mcp' },
  { method: apigw.HttpMethod.GET, path: '/mcp' },
  { method: apigw.HttpMethod.DELETE, path: '/mcp' },
  { method: apigw.HttpMethod.GET, path: '/.well-known/oauth-protected-resource' },
];

export interface WardenApiProps {
  readonly handler: lambda.IFunction;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

export class WardenApi extends Construct {
  readonly httpApi: apigw.HttpApi;
  readonly stage: apigw.HttpStage;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: WardenApiProps) {
    super(scope, id);
    const integration = new HttpLambdaIntegration('Handler', props.handler, {
      payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
    });
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'Warden: identity-aware gateway',
      createDefaultStage: false,
      defaultIntegration: integration,
    });
    for (const route of API_ROUTES) {
      this.httpApi.addRoutes({ path: route.path, methods: [route.method], integration });
    }
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        // No query string, headers or body: they may carry tokens or PII.
        format: apigwv1.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            method: '$context.httpMethod',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            responseLength: '$context.responseLength',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            userAgent: '$context.identity.userAgent',
          }),
        ),
      },
    });
  }

  /** `https://{id}.execute-api.{region}.amazonaws.com` (no trailing slash). */
  get url(): string {
    return this.httpApi.apiEndpoint;
  }
}
