/** Context parsing (lib/context.ts) and the pure helpers (lib/validation.ts). */
import { describe, expect, test } from '@jest/globals';
import * as logs from 'aws-cdk-lib/aws-logs';
import { propsFromContext } from '../lib/context.ts';
import type { ContextKey } from '../lib/context.ts';
import { parseEcrImageUri, validateFargateSize } from '../lib/validation.ts';

const REQUIRED = {
  domainName: 'codex.example.com',
  certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234',
  githubAppId: '424242',
};
const from = (ctx: Record<string, unknown>) => propsFromContext((key: ContextKey) => ctx[key]);

describe('propsFromContext', () => {
  test('the three required values alone give defaults everywhere else', () => {
    expect(from(REQUIRED)).toEqual({ stackName: 'CodexCloud', ...REQUIRED });
  });

  test('githubAppId may be left out only for the first deploy, with the app scaled to zero', () => {
    const { githubAppId: _, ...first } = REQUIRED;
    expect(from({ ...first, appDesiredCount: '0' })).toEqual({ stackName: 'CodexCloud', ...first, appDesiredCount: 0 });
    expect(() => from(first)).toThrow('context value "githubAppId" is required (e.g. -c githubAppId=123456), unless the app is scaled to zero for the first deploy (-c appDesiredCount=0)');
    expect(() => from({ ...first, appDesiredCount: 1 })).toThrow(/"githubAppId" is required/);
  });

  test("the app's settings: concurrency, model, effort, mention, limits, bots (list or JSON array), GHE host", () => {
    expect(
      from({
        ...REQUIRED,
        concurrency: '6',
        model: 'o4-mini',
        reasoningEffort: 'low',
        mention: '@helper',
        taskTimeoutMinutes: 45,
        maxTokens: '1000000',
        allowedBots: ' renovate[bot], dependabot[bot] ',
        gheHost: 'github.acme.corp:8443',
      }),
    ).toMatchObject({
      concurrency: 6,
      model: 'o4-mini',
      reasoningEffort: 'low',
      mention: '@helper',
      taskTimeoutMinutes: 45,
      maxTokens: 1_000_000,
      allowedBots: ['renovate[bot]', 'dependabot[bot]'],
      gheHost: 'github.acme.corp:8443',
    });
    expect(from({ ...REQUIRED, allowedBots: ['renovate[bot]'] }).allowedBots).toEqual(['renovate[bot]']);
  });

  test('string values from -c are converted; JSON numbers and booleans are accepted too', () => {
    const props = from({
      ...REQUIRED,
      stackName: 'CodexStaging',
      githubAppId: '424242',
      appDesiredCount: '0',
      imageUri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/codex:1',
      runnerImageUri: 'ghcr.io/acme/runner:2',
      runnerCpu: 4096,
      runnerMemoryMiB: '16384',
      runnerEphemeralStorageGiB: '120',
      logRetentionDays: '90',
      allowHttpEgress: 'true',
      environmentCache: 'true',
      agentNetworkIsolation: 'false',
      environmentExpirationDays: '3',
      agentProxyPort: '0',
      natGateways: 2,
      openAiBaseUrl: 'https://llm.example.com/v1',
      logLevel: 'debug',
      hostedZoneId: 'Z123',
      hostedZoneName: 'example.com',
    });
    expect(props).toEqual({
      ...REQUIRED,
      stackName: 'CodexStaging',
      githubAppId: '424242',
      appDesiredCount: 0,
      image: { kind: 'uri', uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/codex:1' },
      runnerImage: { kind: 'uri', uri: 'ghcr.io/acme/runner:2' },
      runnerCpu: 4096,
      runnerMemoryMiB: 16384,
      runnerEphemeralStorageGiB: 120,
      logRetention: logs.RetentionDays.THREE_MONTHS,
      allowHttpEgress: true,
      environmentCache: true,
      agentNetworkIsolation: false,
      environmentExpirationDays: 3,
      agentProxyPort: 0,
      natGateways: 2,
      openAiBaseUrl: 'https://llm.example.com/v1',
      logLevel: 'debug',
      hostedZone: { zoneId: 'Z123', zoneName: 'example.com' },
    });
    expect(from({ ...REQUIRED, allowHttpEgress: false }).allowHttpEgress).toBe(false);
  });

  test.each([
    [{ certificateArn: REQUIRED.certificateArn }, /"domainName" is required/],
    [{ domainName: REQUIRED.domainName }, /"certificateArn" is required/],
    [{ ...REQUIRED, domainName: 'https://codex.example.com' }, /"domainName" must be a DNS name/],
    [{ ...REQUIRED, certificateArn: 'arn:aws:iam::123456789012:role/x' }, /"certificateArn" must be an ACM certificate ARN/],
    [{ ...REQUIRED, runnerCpu: '2 vCPU' }, /"runnerCpu" must be a non-negative integer/],
    [{ ...REQUIRED, allowHttpEgress: 'yes' }, /"allowHttpEgress" must be true or false/],
    [{ ...REQUIRED, agentNetworkIsolation: 'off' }, /"agentNetworkIsolation" must be true or false/],
    [{ ...REQUIRED, environmentExpirationDays: '0' }, /"environmentExpirationDays" must be a positive integer/],
    [{ ...REQUIRED, logRetentionDays: '31' }, /"logRetentionDays" must be one of 1, 3, 5, 7, 14, 30/],
    [{ ...REQUIRED, githubAppId: 'my-app' }, /"githubAppId" must be the GitHub App's numeric id/],
    [{ ...REQUIRED, stackName: 'codex_cloud' }, /"stackName" must start with a letter/],
    [{ ...REQUIRED, hostedZoneId: 'Z123' }, /"hostedZoneId" and "hostedZoneName" go together/],
    [{ ...REQUIRED, openAiBaseUrl: 'not a url' }, /"openAiBaseUrl" must be a URL/],
    [{ ...REQUIRED, concurrency: '0' }, /"concurrency" must be a positive integer, got 0/],
    [{ ...REQUIRED, maxTokens: '4M' }, /"maxTokens" must be a non-negative integer/],
    [{ ...REQUIRED, reasoningEffort: 'max' }, /"reasoningEffort" must be one of minimal, low, medium, high, xhigh/],
    [{ ...REQUIRED, mention: 'codex' }, /"mention" must be @ followed by a name/],
    [{ ...REQUIRED, allowedBots: 'renovate[bot],not a login' }, /"allowedBots" must be comma-separated GitHub logins .* got "not a login"/],
    [{ ...REQUIRED, gheHost: 'https://github.acme.corp' }, /"gheHost" must be a host name/],
  ])('refuses %j', (ctx, message) => {
    expect(() => from(ctx)).toThrow(message);
  });
});

describe('validateFargateSize', () => {
  test.each([
    [256, 512],
    [256, 2048],
    [512, 4096],
    [1024, 2048],
    [2048, 8192],
    [4096, 30720],
    [8192, 61440],
    [16384, 122880],
  ])('accepts %i CPU units with %i MiB', (cpu, mem) => {
    expect(validateFargateSize('runner', cpu, mem)).toEqual({ cpu, memoryMiB: mem });
  });

  test.each([
    [256, 1536],
    [512, 512],
    [2048, 17408],
    [8192, 18432],
    [1000, 2048],
  ])('refuses %i CPU units with %i MiB', (cpu, mem) => {
    expect(() => validateFargateSize('runner', cpu, mem)).toThrow(/runner/);
  });
});

describe('parseEcrImageUri', () => {
  test('tag, digest, nested repository, default tag, China partition', () => {
    expect(parseEcrImageUri('123456789012.dkr.ecr.us-east-1.amazonaws.com/codex-cloud:v1')).toEqual({
      account: '123456789012',
      region: 'us-east-1',
      partition: 'aws',
      repositoryName: 'codex-cloud',
      tagOrDigest: 'v1',
    });
    const digest = `sha256:${'c'.repeat(64)}`;
    expect(parseEcrImageUri(`123456789012.dkr.ecr.eu-central-1.amazonaws.com/team/runner@${digest}`)).toMatchObject({
      repositoryName: 'team/runner',
      tagOrDigest: digest,
    });
    expect(parseEcrImageUri('123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/codex')?.tagOrDigest).toBe('latest');
    expect(parseEcrImageUri('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/codex:1')?.partition).toBe('aws-cn');
  });

  test('other registries are not ECR', () => {
    for (const uri of ['ghcr.io/acme/codex:1', 'node:24-trixie-slim', 'public.ecr.aws/acme/codex:1', 'example.com/123456789012.dkr.ecr.us-east-1.amazonaws.com/x']) {
      expect(parseEcrImageUri(uri)).toBeUndefined();
    }
  });
});
