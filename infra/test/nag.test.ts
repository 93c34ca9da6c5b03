/**
 * cdk-nag (AWS Solutions rules) over the stack: no unacknowledged finding, every acknowledgment
 * carries a reason, and the check does catch a violation (so the zero is meaningful).
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import cdkNag from 'cdk-nag';
import { buildApp } from './helpers.ts';
import type { CodexCloudStackProps } from '../lib/codex-cloud-stack.ts';

const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

/** Synthesizes with the AwsSolutions pack registered (as bin/app.ts does) and returns its report. */
function nagReport(props: Partial<CodexCloudStackProps> = {}, extra?: (stack: Stack) => void) {
  const { app, stack, outdir } = buildApp(props);
  cleanups.push(() => rmSync(outdir, { recursive: true, force: true }));
  extra?.(stack);
  const pack = new cdkNag.AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(pack);
  let synthError: unknown;
  try {
    app.synth();
  } catch (e) {
    synthError = e;
  }
  const report = pack.validateScope(app);
  return { report, synthError, stack };
}

const describeViolations = (violations: { ruleName: string; violatingResources: { constructPath?: string }[] }[]) =>
  violations.map((v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);

describe('cdk-nag AwsSolutionsChecks', () => {
  test('the default stack has no unacknowledged finding, and synth succeeds with the pack', () => {
    const { report, synthError } = nagReport();
    expect(describeViolations(report.violations)).toEqual([]);
    expect(report.success).toBe(true);
    expect(synthError).toBeUndefined();
  });

  test('so does a stack with ECR images, HTTP egress, DNS record and custom sizes', () => {
    const { report, synthError } = nagReport({
      image: { kind: 'uri', uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/codex-cloud:v1' },
      runnerImage: { kind: 'uri', uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/codex-runner@sha256:' + 'a'.repeat(64) },
      allowHttpEgress: true,
      hostedZone: { zoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com' },
      runnerCpu: 4096,
      runnerMemoryMiB: 16384,
      natGateways: 2,
    });
    expect(describeViolations(report.violations)).toEqual([]);
    expect(synthError).toBeUndefined();
  });

  test('so does a stack without agent isolation and without the environment cache', () => {
    const { report, synthError } = nagReport({ agentNetworkIsolation: false, environmentCache: false });
    expect(describeViolations(report.violations)).toEqual([]);
    expect(synthError).toBeUndefined();
  });

  test('every acknowledgment in the stack names a rule and gives a specific reason', () => {
    const { stack } = nagReport();
    const acks: [string, string][] = [];
    for (const c of stack.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) acks.push(...Object.entries(m.data as Record<string, string>));
      }
    }
    // (aws-cdk-lib acknowledges some of its own CloudFormation-Validate rules; ours are AwsSolutions.)
    const ours = acks.filter(([id]) => id.includes('AwsSolutions'));
    expect(ours.length).toBeGreaterThanOrEqual(10);
    for (const [id, reason] of ours) {
      expect(id).toMatch(/^(Annotation::)?AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(reason.length).toBeGreaterThan(60);
    }
  });

  test('the check catches a violation: an extra security group open to the world fails synth', () => {
    const { report, synthError } = nagReport({}, (stack) => {
      const sg = new ec2.SecurityGroup(stack, 'OpenToTheWorld', { vpc: (stack as unknown as { vpc: ec2.IVpc }).vpc });
      sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    });
    expect(report.success).toBe(false);
    expect(describeViolations(report.violations)).toContainEqual(expect.stringMatching(/^AwsSolutions-EC23 @ .*OpenToTheWorld/));
    expect(synthError).toBeDefined();
  });
});
