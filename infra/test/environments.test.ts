/**
 * Template tests of the environment split (DESIGN.md, "Environments"; issue 12): the setup and
 * agent security groups, the environment bucket, its gateway endpoint, the app's presign scope,
 * and how each part is turned off.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS_PREFIX } from '../lib/codex-cloud-stack.ts';
import { actionsOf, resourcesOf, roleGrants, synth } from './helpers.ts';
import type { Synthesized } from './helpers.ts';

const synthesized: Synthesized[] = [];
afterAll(() => synthesized.forEach((x) => x.cleanup()));
function make(props: Parameters<typeof synth>[0] = {}): Synthesized {
  const x = synth(props);
  synthesized.push(x);
  return x;
}

type Rule = Record<string, unknown>;
const getAtt = (id: string): unknown => ({ 'Fn::GetAtt': [id, 'GroupId'] });
/** Every egress rule of a security group: inline ones and standalone AWS::EC2::SecurityGroupEgress. */
function egressOf(s: Synthesized, sgId: string): Rule[] {
  const inline = (s.template.findResources('AWS::EC2::SecurityGroup')[sgId]!.Properties.SecurityGroupEgress ?? []) as Rule[];
  const ref = JSON.stringify(getAtt(sgId));
  const standalone = resourcesOf(s.template, 'AWS::EC2::SecurityGroupEgress')
    .filter(([, p]) => JSON.stringify(p.GroupId) === ref)
    .map(([, p]) => p);
  return [...inline, ...standalone];
}
function ingressOf(s: Synthesized, sgId: string): Rule[] {
  const inline = (s.template.findResources('AWS::EC2::SecurityGroup')[sgId]!.Properties.SecurityGroupIngress ?? []) as Rule[];
  const ref = JSON.stringify(getAtt(sgId));
  return [...inline, ...resourcesOf(s.template, 'AWS::EC2::SecurityGroupIngress').filter(([, p]) => JSON.stringify(p.GroupId) === ref).map(([, p]) => p)];
}
function appEnvironment(s: Synthesized): Record<string, unknown> {
  const td = resourcesOf(s.template, 'AWS::ECS::TaskDefinition').find(([, p]) => p.Family === 'CodexCloud-app')![1];
  const [container] = td.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  return Object.fromEntries(container!.Environment.map((e) => [e.Name, e.Value]));
}

describe('default: setup and agent tasks in separate security groups', () => {
  let s: Synthesized;
  let agentSg: string;
  let setupSg: string;
  let internalAlbSg: string;
  beforeAll(() => {
    s = make();
    agentSg = s.logicalId(s.stack.agentSecurityGroup);
    setupSg = s.logicalId(s.stack.setupSecurityGroup);
    internalAlbSg = s.logicalId(s.stack.internalLoadBalancer!.connections.securityGroups[0]!);
  });

  test('the agent security group has no egress to 0.0.0.0/0 or ::/0, no AllowAllOutbound, no ingress', () => {
    expect(agentSg).not.toBe(setupSg);
    expect(s.stack.agentSecurityGroup.allowAllOutbound).toBe(false);
    const egress = egressOf(s, agentSg);
    for (const rule of egress) {
      expect(rule.CidrIp).not.toBe('0.0.0.0/0');
      expect(rule.CidrIpv6).toBeUndefined();
      expect(rule.IpProtocol).not.toBe('-1');
    }
    // No CIDR destination at all: security groups and the S3 prefix list only.
    expect(egress.length).toBeGreaterThan(0);
    expect(egress.filter((r) => r.CidrIp !== undefined || r.CidrIpv6 !== undefined)).toEqual([]);
    expect(ingressOf(s, agentSg)).toEqual([]);
  });

  test('the agent task may reach only the internal ALB, the S3 prefix list and the ECR/Logs endpoints, on 443', () => {
    const real = egressOf(s, agentSg);
    for (const rule of real.filter((r) => r.FromPort !== 3128)) expect(rule).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 });
    const endpointSgs = ['EcrApiEndpoint', 'EcrDockerEndpoint', 'LogsEndpoint'].map((id) => {
      const endpoint = s.stack.vpc.node.findChild(id) as unknown as { connections: { securityGroups: { node: { defaultChild?: unknown } }[] } };
      return getAtt(s.logicalId(endpoint.connections.securityGroups[0]!));
    });
    expect(real.filter((r) => r.DestinationSecurityGroupId).map((r) => r.DestinationSecurityGroupId)).toEqual(
      expect.arrayContaining([getAtt(internalAlbSg), ...endpointSgs]),
    );
    // …and the app itself only on the agent proxy's port (HTTP CONNECT, `agent_network` allowlists).
    const appSg = getAtt(s.logicalId(s.stack.appSecurityGroup));
    expect(real.filter((r) => JSON.stringify(r.DestinationSecurityGroupId) === JSON.stringify(appSg))).toEqual([
      expect.objectContaining({ FromPort: 3128, ToPort: 3128, IpProtocol: 'tcp' }),
    ]);
    expect(real.filter((r) => r.DestinationSecurityGroupId)).toHaveLength(5);
    const prefixLists = real.filter((r) => r.DestinationPrefixListId);
    expect(prefixLists).toHaveLength(1);
    // The region's S3 prefix list, looked up at deploy time.
    expect(JSON.stringify(prefixLists[0]!.DestinationPrefixListId)).toContain('PrefixLists.0.PrefixListId');
    const lookup = resourcesOf(s.template, 'Custom::AWS').find(([id]) => id.startsWith('S3PrefixListLookup'));
    expect(JSON.stringify(lookup)).toContain('com.amazonaws.');
    expect(JSON.stringify(lookup)).toContain('.s3');
  });

  test('the setup security group allows HTTPS out to anywhere, and nothing in', () => {
    const egress = egressOf(s, setupSg);
    expect(egress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 })]);
    expect(ingressOf(s, setupSg)).toEqual([]);
  });

  test('the internal ALB accepts HTTPS from the two runner groups only, with the app certificate, and the app URL resolves to it in the VPC', () => {
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
    const sources = ingressOf(s, internalAlbSg).map((r) => [r.SourceSecurityGroupId, r.FromPort, r.CidrIp]);
    expect(sources).toEqual(expect.arrayContaining([[getAtt(setupSg), 443, undefined], [getAtt(agentSg), 443, undefined]]));
    expect(sources).toHaveLength(2);
    s.template.hasResourceProperties('AWS::Route53::HostedZone', {
      Name: 'codex.example.com.',
      VPCs: [Match.objectLike({ VPCId: { Ref: s.logicalId(s.stack.vpc) } })],
    });
    s.template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'codex.example.com.',
      Type: 'A',
      AliasTarget: Match.objectLike({
        DNSName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([{ 'Fn::GetAtt': [s.logicalId(s.stack.internalLoadBalancer!), 'DNSName'] }])]) }),
      }),
    });
  });

  test('a gateway endpoint for S3 and interface endpoints (private DNS) for ECR and CloudWatch Logs', () => {
    const endpoints = resourcesOf(s.template, 'AWS::EC2::VPCEndpoint').map(([, p]) => [JSON.stringify(p.ServiceName), p.VpcEndpointType, p.PrivateDnsEnabled]);
    expect(endpoints.filter(([name, type]) => (name as string).includes('.s3') && type === 'Gateway')).toHaveLength(1);
    for (const service of ['.ecr.api', '.ecr.dkr', '.logs']) {
      expect(endpoints.filter(([name, type, dns]) => (name as string).includes(service) && type === 'Interface' && dns === true)).toHaveLength(1);
    }
  });

  test('the environment bucket is encrypted, private, SSL-only, and expires archives after 2 days', () => {
    const bucketId = s.logicalId(s.stack.environmentBucket!);
    const bucket = s.template.findResources('AWS::S3::Bucket')[bucketId]!;
    expect(bucket.Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual(
      expect.arrayContaining([expect.objectContaining({ Prefix: ENVIRONMENTS_PREFIX, ExpirationInDays: 2, Status: 'Enabled' })]),
    );
    const policy = resourcesOf(s.template, 'AWS::S3::BucketPolicy').find(([, p]) => JSON.stringify(p.Bucket) === JSON.stringify({ Ref: bucketId }))![1];
    expect((policy.PolicyDocument as { Statement: Rule[] }).Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    expect(appEnvironment(s).CODEX_ENV_BUCKET).toEqual({ Ref: bucketId });
  });

  test('the app may presign only GET and PUT under environments/ of that bucket; no other role touches S3 objects', () => {
    const bucketId = s.logicalId(s.stack.environmentBucket!);
    const appRole = s.logicalId(s.stack.appTaskDefinition.taskRole);
    const statements = roleGrants(s.template, appRole).statements.filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')));
    expect(statements).toHaveLength(1);
    const [st] = statements;
    expect(st).toMatchObject({ Sid: 'PresignEnvironmentArchives', Effect: 'Allow' });
    expect(st!.Condition).toBeUndefined();
    expect(actionsOf(st!).sort()).toEqual(['s3:GetObject', 's3:PutObject']);
    expect(st!.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${ENVIRONMENTS_PREFIX}*`]] });
    for (const [role] of resourcesOf(s.template, 'AWS::IAM::Role')) {
      if (role === appRole) continue;
      const s3Actions = roleGrants(s.template, role).statements.flatMap(actionsOf).filter((a) => a.startsWith('s3:'));
      expect([role, s3Actions]).toEqual([role, []]);
    }
  });

  test('the app gets both groups: CODEX_ECS_SECURITY_GROUPS (agent) and CODEX_ECS_SETUP_SECURITY_GROUPS (setup)', () => {
    const env = appEnvironment(s);
    expect(env.CODEX_ECS_SECURITY_GROUPS).toEqual(getAtt(agentSg));
    expect(env.CODEX_ECS_SETUP_SECURITY_GROUPS).toEqual(getAtt(setupSg));
  });

  test('the agent proxy: the app registers as app.codex-cloud.internal and gets CODEX_AGENT_PROXY_PORT/URL; only agent tasks may connect', () => {
    const env = appEnvironment(s);
    expect(env.CODEX_AGENT_PROXY_PORT).toBe('3128');
    expect(env.CODEX_AGENT_PROXY_URL).toBe('http://app.codex-cloud.internal:3128');
    s.template.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'codex-cloud.internal' });
    s.template.hasResourceProperties('AWS::ServiceDiscovery::Service', {
      Name: 'app',
      DnsConfig: Match.objectLike({ DnsRecords: [{ TTL: 10, Type: 'A' }] }),
    });
    const appSg = s.logicalId(s.stack.appSecurityGroup);
    const proxyIngress = ingressOf(s, appSg).filter((r) => r.FromPort === 3128);
    expect(proxyIngress.map((r) => r.SourceSecurityGroupId)).toEqual([getAtt(agentSg)]);
    expect(proxyIngress.every((r) => r.CidrIp === undefined)).toBe(true);
  });

  test('the VPC default security group is restricted', () => {
    s.template.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });
});

describe('turning it off', () => {
  test('agentNetworkIsolation off: the agent task gets the setup group; no internal ALB, no interface endpoints', () => {
    const s = make({ agentNetworkIsolation: false });
    expect(s.stack.agentSecurityGroup).toBe(s.stack.setupSecurityGroup);
    expect(s.stack.internalLoadBalancer).toBeUndefined();
    const env = appEnvironment(s);
    expect(env.CODEX_ECS_SECURITY_GROUPS).toEqual(env.CODEX_ECS_SETUP_SECURITY_GROUPS);
    expect(resourcesOf(s.template, 'AWS::EC2::VPCEndpoint').map(([, p]) => p.VpcEndpointType)).toEqual(['Gateway']);
    s.template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    s.template.resourceCountIs('Custom::AWS', 0);
    s.template.resourceCountIs('AWS::ServiceDiscovery::Service', 0);
    expect(env.CODEX_AGENT_PROXY_PORT).toBeUndefined();
    expect(env.CODEX_ENV_BUCKET).toBeDefined();
  });

  test('environmentCache off as well: no bucket, no presign permission, one runner task per job', () => {
    const s = make({ agentNetworkIsolation: false, environmentCache: false });
    s.template.resourceCountIs('AWS::S3::Bucket', 0);
    const env = appEnvironment(s);
    expect(env.CODEX_ENV_BUCKET).toBeUndefined();
    expect(env.CODEX_ECS_SETUP_SECURITY_GROUPS).toBeUndefined();
    const appRole = s.logicalId(s.stack.appTaskDefinition.taskRole);
    expect(roleGrants(s.template, appRole).statements.flatMap(actionsOf).filter((a) => a.startsWith('s3:'))).toEqual([]);
  });

  test('agentProxyPort 0: no proxy, no service discovery, no rule to the app', () => {
    const s = make({ agentProxyPort: 0 });
    expect(appEnvironment(s).CODEX_AGENT_PROXY_URL).toBeUndefined();
    s.template.resourceCountIs('AWS::ServiceDiscovery::Service', 0);
    const appSg = JSON.stringify(getAtt(s.logicalId(s.stack.appSecurityGroup)));
    expect(egressOf(s, s.logicalId(s.stack.agentSecurityGroup)).filter((r) => JSON.stringify(r.DestinationSecurityGroupId) === appSg)).toEqual([]);
  });

  test('environmentExpirationDays sets the lifecycle rule', () => {
    const s = make({ environmentExpirationDays: 7 });
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: ENVIRONMENTS_PREFIX, ExpirationInDays: 7 })]) },
    });
  });
});
