#!/usr/bin/env node
/**
 * The CDK app: one `CodexCloudStack` configured from context (see infra/README.md), checked with
 * cdk-nag's AWS Solutions rules (any unacknowledged finding fails `cdk synth` and `cdk deploy`).
 * Run through the CDK CLI: `npm run synth -- -c domainName=… -c certificateArn=…`.
 */
import { App, Validations } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import { CodexCloudStack } from '../lib/codex-cloud-stack.ts';
import { propsFromContext } from '../lib/context.ts';

const app = new App();
try {
  const props = propsFromContext((key) => app.node.tryGetContext(key));
  new CodexCloudStack(app, props.stackName, {
    ...props,
    description: 'codex-cloud: GitHub App with coding-agent runner tasks on ECS Fargate',
  });
} catch (error) {
  // A configuration mistake: one line naming it, not a stack trace.
  process.stderr.write(`codex-cloud infra: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
Validations.of(app).addPlugins(new cdkNag.AwsSolutionsChecks(app, { verbose: true }));
app.synth();
