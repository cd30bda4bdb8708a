#!/usr/bin/env node
/**
 * The CDK app: `npx cdk synth|deploy [-c wardenConfig=warden.config.json] [-c oidcIssuer=…]`.
 * Environment-agnostic unless CDK_DEFAULT_ACCOUNT/REGION are known (the CLI sets them when it has
 * credentials), so synth works on a fresh clone with none. cdk-nag's AwsSolutions pack checks it.
 */
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { WardenStack } from '../lib/warden-stack.js';

const app = new App();
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;
new WardenStack(app, (app.node.tryGetContext('stackName') as string | undefined) ?? 'Warden', {
  ...(account && region ? { env: { account, region } } : {}),
});
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
app.synth();
