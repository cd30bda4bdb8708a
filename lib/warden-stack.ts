/**
 * The stack `cdk deploy` creates: one WardenGateway configured from props or CDK context.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { settingsFromContext, type WardenSettingsInput } from './config.js';
import { PROJECT_ROOT } from './constructs/gateway-function.js';
import { WardenGateway } from './constructs/warden-gateway.js';

export interface WardenStackProps extends StackProps {
  /** @default read from CDK context (see lib/config.ts settingsFromContext) */
  readonly settings?: WardenSettingsInput;
}

export class WardenStack extends Stack {
  readonly gateway: WardenGateway;

  constructor(scope: Construct, id: string, props: WardenStackProps = {}) {
    super(scope, id, {
      description: 'Warden: identity-aware gateway between AI agents and production data',
      ...props,
    });
    this.gateway = new WardenGateway(this, 'Warden', props.settings ?? settingsFromContext(this.node));
  }
}

/**
 * The context cdk.json gives the CLI (feature flags), for apps built in-process (tests, the local
 * twin) so they synthesize what `cdk synth` does.
 */
export function wardenAppContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return { ...cdkJson.context };
}
