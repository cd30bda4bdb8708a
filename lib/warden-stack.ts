/**
 * The stack `cdk deploy` creates: one WardenGateway configured from props or CDK context.
 */
import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { settingsFromContext, type WardenSettingsInput } from './config.js';
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
