/** Template tests of the stack's options: images by URI, sizes, HTTP egress, first deploy, DNS, errors. */
import { afterAll, describe, expect, test } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import { actionsOf, buildApp, resourcesOf, roleGrants, synth } from './helpers.ts';
import type { Synthesized } from './helpers.ts';

const made: Synthesized[] = [];
const make = (...args: Parameters<typeof synth>): Synthesized => {
  const s = synth(...args);
  made.push(s);
  return s;
};
afterAll(() => made.forEach((s) => s.cleanup()));

const containerOf = (s: Synthesized, family: string): Record<string, unknown> => {
  const td = resourcesOf(s.template, 'AWS::ECS::TaskDefinition').find(([, p]) => p.Family === family)?.[1];
  if (!td) throw new Error(`no task definition ${family}`);
  return (td.ContainerDefinitions as Record<string, unknown>[])[0]!;
};

describe('images by URI', () => {
  test('ECR URIs: the image references the repository and each execution role may pull only from it', () => {
    const s = make({
      image: { kind: 'uri', uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/codex-cloud:v1.2.3' },
      runnerImage: { kind: 'uri', uri: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/runner@sha256:${'b'.repeat(64)}` },
    });
    const appImage = JSON.stringify(containerOf(s, 'CodexCloud-app').Image);
    expect(appImage).toContain('123456789012.dkr.ecr.eu-west-1.');
    expect(appImage).toContain('/codex-cloud:v1.2.3');
    const runnerImage = JSON.stringify(containerOf(s, 'CodexCloud-runner').Image);
    expect(runnerImage).toContain(`/team/runner@sha256:${'b'.repeat(64)}`);

    const pull = (roleId: string) =>
      roleGrants(s.template, roleId).statements.find((st) => actionsOf(st).includes('ecr:BatchGetImage'))?.Resource;
    expect(pull(s.logicalId(s.stack.runnerTaskDefinition.obtainExecutionRole()))).toBe(
      'arn:aws:ecr:eu-west-1:123456789012:repository/team/runner',
    );
    expect(JSON.stringify(pull(s.logicalId(s.stack.appTaskDefinition.obtainExecutionRole())))).toContain(
      ':ecr:eu-west-1:123456789012:repository/codex-cloud',
    );
    // No asset to build.
    expect(s.app.synth().getStackByName('CodexCloud').assets.filter((a) => a.packaging === 'container-image')).toEqual([]);
  });

  test('other registries are pulled anonymously: no ECR permission at all', () => {
    // (The agent task, without internet, can only pull from ECR: isolation off.)
    const s = make({ image: { kind: 'uri', uri: 'ghcr.io/example/codex-cloud:1.0.0' }, agentNetworkIsolation: false });
    expect(containerOf(s, 'CodexCloud-app').Image).toBe('ghcr.io/example/codex-cloud:1.0.0');
    expect(containerOf(s, 'CodexCloud-runner').Image).toBe('ghcr.io/example/codex-cloud:1.0.0');
    const runnerExec = roleGrants(s.template, s.logicalId(s.stack.runnerTaskDefinition.obtainExecutionRole()));
    expect(runnerExec.statements.flatMap(actionsOf).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
  });
});

describe('options', () => {
  test('runner size, storage and log retention are configurable', () => {
    const s = make({
      runnerCpu: 4096,
      runnerMemoryMiB: 16384,
      runnerEphemeralStorageGiB: 100,
      logRetention: logs.RetentionDays.ONE_WEEK,
    });
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Family: 'CodexCloud-runner',
      Cpu: '4096',
      Memory: '16384',
      EphemeralStorage: { SizeInGiB: 100 },
    });
    for (const [, g] of resourcesOf(s.template, 'AWS::Logs::LogGroup')) expect(g.RetentionInDays).toBe(7);
  });

  test('allowHttpEgress adds TCP 80 to the runner security group, and nothing else', () => {
    const s = make({ allowHttpEgress: true });
    const sg = s.template.findResources('AWS::EC2::SecurityGroup')[s.logicalId(s.stack.setupSecurityGroup)]!.Properties;
    expect(sg.SecurityGroupEgress.map((r: { FromPort: number }) => r.FromPort).sort()).toEqual([443, 80]);
    expect(sg.SecurityGroupIngress).toBeUndefined();
  });

  test('first deploy: appDesiredCount 0 needs no GitHub App id', () => {
    const s = make({ appDesiredCount: 0, githubAppId: undefined });
    s.template.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 0 });
    const env = containerOf(s, 'CodexCloud-app').Environment as { Name: string }[];
    expect(env.map((e) => e.Name)).not.toContain('APP_ID');
  });

  test('openAiBaseUrl and logLevel reach the app environment only', () => {
    const s = make({ openAiBaseUrl: 'https://llm.example.com/v1', logLevel: 'debug' });
    const env = containerOf(s, 'CodexCloud-app').Environment as { Name: string; Value: string }[];
    expect(env).toEqual(
      expect.arrayContaining([
        { Name: 'OPENAI_BASE_URL', Value: 'https://llm.example.com/v1' },
        { Name: 'LOG_LEVEL', Value: 'debug' },
      ]),
    );
    expect(containerOf(s, 'CodexCloud-runner').Environment).toBeUndefined();
  });

  test("the app's settings (concurrency, model, limits, bots, GHE host) reach the app environment only", () => {
    const s = make({
      concurrency: 8,
      model: 'o4-mini',
      reasoningEffort: 'high',
      mention: '@helper',
      taskTimeoutMinutes: 90,
      maxTokens: 2_000_000,
      allowedBots: ['renovate[bot]', 'dependabot[bot]'],
      gheHost: 'github.acme.corp',
    });
    const env = Object.fromEntries((containerOf(s, 'CodexCloud-app').Environment as { Name: string; Value: string }[]).map((e) => [e.Name, e.Value]));
    expect(env).toMatchObject({
      CODEX_CONCURRENCY: '8',
      CODEX_MODEL: 'o4-mini',
      CODEX_REASONING_EFFORT: 'high',
      CODEX_MENTION: '@helper',
      CODEX_TASK_TIMEOUT_MINUTES: '90',
      CODEX_MAX_TOKENS: '2000000',
      CODEX_ALLOWED_BOTS: 'renovate[bot],dependabot[bot]',
      GHE_HOST: 'github.acme.corp',
    });
    expect(containerOf(s, 'CodexCloud-runner').Environment).toBeUndefined();
  });

  test('hostedZone creates an alias record for the domain, without a lookup', () => {
    const s = make({ hostedZone: { zoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com' } });
    s.template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'codex.example.com.',
      Type: 'A',
      HostedZoneId: 'Z0123456789ABCDEFGHIJ',
      AliasTarget: Match.objectLike({ DNSName: Match.anyValue() }),
    });
    expect(s.app.synth().manifest.missing ?? []).toEqual([]);
  });
});

describe('invalid props are refused at synth time', () => {
  test.each([
    ['two app tasks', { appDesiredCount: 2 }, /appDesiredCount must be 0 or 1/],
    ['one app task without APP_ID', { githubAppId: undefined }, /githubAppId is required/],
    ['a CPU value Fargate does not offer', { runnerCpu: 3000 }, /runner CPU must be one of/],
    ['memory outside the CPU value\'s range', { runnerCpu: 2048, runnerMemoryMiB: 2048 }, /runner memory 2048 MiB is not valid with 2048 CPU units/],
    ['less ephemeral storage than Fargate allows', { runnerEphemeralStorageGiB: 20 }, /runnerEphemeralStorageGiB must be an integer from 21 to 200/],
    ['agent isolation without the environment cache', { environmentCache: false }, /agentNetworkIsolation needs environmentCache/],
    ['agent isolation with a runner image outside ECR', { runnerImage: { kind: 'uri' as const, uri: 'ghcr.io/example/runner:1' } }, /agentNetworkIsolation needs the runner image in Amazon ECR/],
    ['an archive expiry of zero days', { environmentExpirationDays: 0 }, /environmentExpirationDays must be a positive integer/],
    ['the agent proxy on the app\'s port', { agentProxyPort: 3000 }, /agentProxyPort must be a port number other than the app's 3000/],
  ])('%s', (_name, props, message) => {
    expect(() => buildApp(props)).toThrow(message);
  });
});
