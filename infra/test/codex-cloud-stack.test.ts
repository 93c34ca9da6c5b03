/**
 * Template tests of CodexCloudStack: one test per least-privilege or isolation claim, on the
 * default configuration (image built from the repository's Dockerfile as a CDK asset).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { RUNNER_CONTAINER_NAME } from '../lib/codex-cloud-stack.ts';
import { actionsOf, resourcesOf, roleGrants, synth } from './helpers.ts';
import type { Statement, Synthesized } from './helpers.ts';

let s: Synthesized;
let ids: {
  cluster: string;
  appTaskRole: string;
  appExecutionRole: string;
  runnerTaskRole: string;
  runnerExecutionRole: string;
  runnerSg: string;
  agentSg: string;
  internalAlbSg: string;
  appSg: string;
  albSg: string;
  efsSg: string;
  runnerLogs: string;
  appLogs: string;
};

beforeAll(() => {
  s = synth();
  const st = s.stack;
  ids = {
    cluster: s.logicalId(st.cluster),
    appTaskRole: s.logicalId(st.appTaskDefinition.taskRole),
    appExecutionRole: s.logicalId(st.appTaskDefinition.obtainExecutionRole()),
    runnerTaskRole: s.logicalId(st.runnerTaskDefinition.taskRole),
    runnerExecutionRole: s.logicalId(st.runnerTaskDefinition.obtainExecutionRole()),
    runnerSg: s.logicalId(st.setupSecurityGroup),
    agentSg: s.logicalId(st.agentSecurityGroup),
    internalAlbSg: s.logicalId(st.internalLoadBalancer!.connections.securityGroups[0]!),
    appSg: s.logicalId(st.appSecurityGroup),
    albSg: s.logicalId(st.loadBalancer.connections.securityGroups[0]!),
    efsSg: s.logicalId(st.fileSystem.connections.securityGroups[0]!),
    runnerLogs: s.logicalId(st.runnerLogGroup),
    appLogs: s.logicalId(st.appLogGroup),
  };
});
afterAll(() => s.cleanup());

const clusterCondition = (): unknown => ({ ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [ids.cluster, 'Arn'] } } });
const appStatements = (): Statement[] => roleGrants(s.template, ids.appTaskRole).statements;
const bySid = (sid: string): Statement => {
  const found = appStatements().filter((st) => st.Sid === sid);
  expect(found).toHaveLength(1);
  return found[0]!;
};
/** All statements of all roles in the template that allow an action. */
const allowing = (action: string): { role: string; statement: Statement }[] =>
  resourcesOf(s.template, 'AWS::IAM::Role').flatMap(([role]) =>
    roleGrants(s.template, role)
      .statements.filter((st) => st.Effect === 'Allow' && actionsOf(st).includes(action))
      .map((statement) => ({ role, statement })),
  );

describe('app task role (least privilege)', () => {
  test('holds exactly the EFS, RunTask, Describe/Stop, ListTasks, TagResource-on-launch, PassRole and presign statements', () => {
    const { statements, managedPolicyArns } = roleGrants(s.template, ids.appTaskRole);
    expect(managedPolicyArns).toEqual([]);
    expect(statements.map((st) => st.Sid).sort()).toEqual(
      [
        'ListRunnerTasks',
        'ManageRunnerTasks',
        'MountDataThroughAccessPoint',
        'PassRunnerRoles',
        'PresignEnvironmentArchives',
        'RunRunnerTasks',
        'TagRunnerTasksOnLaunch',
      ].sort(),
    );
    for (const st of statements) {
      expect(st.Effect).toBe('Allow');
      for (const a of actionsOf(st)) expect(a).not.toMatch(/\*/);
    }
  });

  test('ecs:RunTask is limited to the runner family ARN, on this cluster', () => {
    const st = bySid('RunRunnerTasks');
    expect(actionsOf(st)).toEqual(['ecs:RunTask']);
    expect(st.Resource).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':ecs:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          `:task-definition/${s.stack.runnerFamily}:*`,
        ],
      ],
    });
    expect(s.stack.runnerFamily).toBe('CodexCloud-runner');
    expect(st.Condition).toEqual(clusterCondition());
    // …and nothing else in the stack may run tasks.
    expect(allowing('ecs:RunTask').map((x) => x.role)).toEqual([ids.appTaskRole]);
  });

  test('the runner task definition uses that family', () => {
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Family: 'CodexCloud-runner',
      ContainerDefinitions: [Match.objectLike({ Name: RUNNER_CONTAINER_NAME })],
    });
  });

  test('iam:PassRole only for the runner execution and task roles, only to ecs-tasks.amazonaws.com', () => {
    const st = bySid('PassRunnerRoles');
    expect(actionsOf(st)).toEqual(['iam:PassRole']);
    expect(st.Resource).toEqual([
      { 'Fn::GetAtt': [ids.runnerExecutionRole, 'Arn'] },
      { 'Fn::GetAtt': [ids.runnerTaskRole, 'Arn'] },
    ]);
    expect(st.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    expect(allowing('iam:PassRole').map((x) => x.role)).toEqual([ids.appTaskRole]);
  });

  test('ecs:DescribeTasks and ecs:StopTask on tasks of this cluster, with the ecs:cluster condition', () => {
    const st = bySid('ManageRunnerTasks');
    expect(actionsOf(st).sort()).toEqual(['ecs:DescribeTasks', 'ecs:StopTask']);
    expect(st.Condition).toEqual(clusterCondition());
    expect(JSON.stringify(st.Resource)).toContain(`":task/",{"Ref":"${ids.cluster}"},"/*"`);
  });

  test('ecs:TagResource only on this cluster\'s tasks and only as part of RunTask (tags at launch)', () => {
    const st = bySid('TagRunnerTasksOnLaunch');
    expect(actionsOf(st)).toEqual(['ecs:TagResource']);
    expect(st.Condition).toEqual({ StringEquals: { 'ecs:CreateAction': 'RunTask' } });
    expect(JSON.stringify(st.Resource)).toContain(`":task/",{"Ref":"${ids.cluster}"},"/*"`);
    expect(allowing('ecs:TagResource').map((x) => x.role)).toEqual([ids.appTaskRole]);
  });

  test('ecs:ListTasks is conditioned on the cluster', () => {
    const st = bySid('ListRunnerTasks');
    expect(actionsOf(st)).toEqual(['ecs:ListTasks']);
    expect(st.Resource).toBe('*');
    expect(st.Condition).toEqual(clusterCondition());
  });

  test('EFS access only through the access point', () => {
    const st = bySid('MountDataThroughAccessPoint');
    expect(actionsOf(st).sort()).toEqual(['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite']);
    expect(st.Condition?.StringEquals?.['elasticfilesystem:AccessPointArn']).toBeDefined();
  });
});

describe('runner (no secrets, no permissions)', () => {
  test('the runner task role has no policy attached at all', () => {
    const { statements, managedPolicyArns } = roleGrants(s.template, ids.runnerTaskRole);
    expect(statements).toEqual([]);
    expect(managedPolicyArns).toEqual([]);
    // Not attached through any other policy resource either.
    const mentions = [
      ...resourcesOf(s.template, 'AWS::IAM::Policy'),
      ...resourcesOf(s.template, 'AWS::IAM::ManagedPolicy'),
    ].filter(([, p]) => JSON.stringify(p.Roles ?? p.Users ?? []).includes(ids.runnerTaskRole));
    expect(mentions).toEqual([]);
  });

  test('the runner execution role only pulls the image and writes its own log group', () => {
    const { statements, managedPolicyArns } = roleGrants(s.template, ids.runnerExecutionRole);
    expect(managedPolicyArns).toEqual([]);
    const actions = statements.flatMap(actionsOf).sort();
    expect(actions).toEqual(
      [
        'ecr:BatchCheckLayerAvailability',
        'ecr:BatchGetImage',
        'ecr:GetAuthorizationToken',
        'ecr:GetDownloadUrlForLayer',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ].sort(),
    );
    const logs = statements.find((st) => actionsOf(st).includes('logs:PutLogEvents'));
    expect(logs?.Resource).toEqual({ 'Fn::GetAtt': [ids.runnerLogs, 'Arn'] });
  });

  test('runner task definition: one container, no secrets, no environment of its own', () => {
    const [[, td]] = resourcesOf(s.template, 'AWS::ECS::TaskDefinition').filter(
      ([, p]) => p.Family === 'CodexCloud-runner',
    ) as [[string, Record<string, unknown>]];
    const containers = td.ContainerDefinitions as Record<string, unknown>[];
    expect(containers).toHaveLength(1);
    const c = containers[0]!;
    expect(c.Name).toBe('runner');
    expect(c.Command).toEqual(['runner', '--claim']);
    expect(c.Secrets).toBeUndefined();
    expect(c.Environment).toBeUndefined();
    expect(c.EnvironmentFiles).toBeUndefined();
    expect(c.PortMappings).toBeUndefined();
    expect(c.LogConfiguration).toEqual({
      LogDriver: 'awslogs',
      Options: {
        'awslogs-group': { Ref: ids.runnerLogs },
        'awslogs-stream-prefix': 'runner',
        'awslogs-region': { Ref: 'AWS::Region' },
      },
    });
    expect(c.LinuxParameters).toMatchObject({ Capabilities: { Drop: ['ALL'] }, InitProcessEnabled: true });
    expect(td).toMatchObject({
      Cpu: '2048',
      Memory: '8192',
      EphemeralStorage: { SizeInGiB: 50 },
      NetworkMode: 'awsvpc',
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
      TaskRoleArn: { 'Fn::GetAtt': [ids.runnerTaskRole, 'Arn'] },
    });
  });

  test('setup security group: no ingress, egress TCP 443 only', () => {
    const sg = s.template.findResources('AWS::EC2::SecurityGroup')[ids.runnerSg]!.Properties;
    expect(sg.SecurityGroupIngress).toBeUndefined();
    expect(sg.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
    ]);
    const ref = JSON.stringify({ 'Fn::GetAtt': [ids.runnerSg, 'GroupId'] });
    const standaloneIngress = resourcesOf(s.template, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, p]) => JSON.stringify(p.GroupId) === ref,
    );
    const standaloneEgress = resourcesOf(s.template, 'AWS::EC2::SecurityGroupEgress').filter(
      ([, p]) => JSON.stringify(p.GroupId) === ref,
    );
    expect(standaloneIngress).toEqual([]);
    expect(standaloneEgress).toEqual([]);
  });
});

describe('app', () => {
  test('the app container gets the three secrets from Secrets Manager', () => {
    const st = s.stack;
    const app = appContainer();
    expect(app.Secrets).toEqual([
      { Name: 'PRIVATE_KEY', ValueFrom: { Ref: s.logicalId(st.secrets.privateKey) } },
      { Name: 'WEBHOOK_SECRET', ValueFrom: { Ref: s.logicalId(st.secrets.webhookSecret) } },
      { Name: 'OPENAI_API_KEY', ValueFrom: { Ref: s.logicalId(st.secrets.openAiApiKey) } },
    ]);
    expect(resourcesOf(s.template, 'AWS::SecretsManager::Secret')).toHaveLength(3);
    // Only the app's execution role may read them.
    expect(allowing('secretsmanager:GetSecretValue').map((x) => x.role)).toEqual([ids.appExecutionRole]);
  });

  test('the app container environment follows the runtime contract', () => {
    const env = Object.fromEntries((appContainer().Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
    expect(env).toMatchObject({
      APP_ID: '123456',
      NODE_ENV: 'production',
      PORT: '3000',
      LOG_LEVEL: 'info',
      CODEX_PUBLIC_URL: 'https://codex.example.com',
      CODEX_DATA_DIR: '/data',
      CODEX_RUNNER_BACKEND: 'ecs',
      CODEX_ECS_CLUSTER: { 'Fn::GetAtt': [ids.cluster, 'Arn'] },
      CODEX_ECS_TASK_DEFINITION: 'CodexCloud-runner',
      CODEX_ECS_CONTAINER_NAME: 'runner',
      CODEX_ECS_SECURITY_GROUPS: { 'Fn::GetAtt': [ids.agentSg, 'GroupId'] },
      CODEX_ECS_SETUP_SECURITY_GROUPS: { 'Fn::GetAtt': [ids.runnerSg, 'GroupId'] },
      CODEX_ENV_BUCKET: { Ref: s.logicalId(s.stack.environmentBucket!) },
      AWS_REGION: { Ref: 'AWS::Region' },
    });
    // The app's own settings are left to its defaults unless given.
    for (const name of ['CODEX_CONCURRENCY', 'CODEX_MODEL', 'CODEX_REASONING_EFFORT', 'CODEX_MENTION', 'CODEX_TASK_TIMEOUT_MINUTES', 'CODEX_MAX_TOKENS', 'CODEX_ALLOWED_BOTS', 'GHE_HOST']) {
      expect(env[name]).toBeUndefined();
    }
    const subnets = JSON.stringify(env.CODEX_ECS_SUBNETS);
    expect(subnets).toContain('Fn::Join');
    for (const subnet of s.stack.vpc.privateSubnets) {
      expect(subnets).toContain(s.logicalId(subnet as unknown as { node: { defaultChild?: unknown } }));
    }
    for (const secretName of ['PRIVATE_KEY', 'WEBHOOK_SECRET', 'OPENAI_API_KEY']) expect(env[secretName]).toBeUndefined();
    expect(env.OPENAI_BASE_URL).toBeUndefined();
  });

  test('the app container mounts EFS at /data through the access point, with TLS and IAM', () => {
    const td = appTaskDefinition();
    expect(td.Volumes).toEqual([
      {
        Name: 'data',
        EFSVolumeConfiguration: {
          FilesystemId: { Ref: s.logicalId(s.stack.fileSystem) },
          TransitEncryption: 'ENABLED',
          AuthorizationConfig: { AccessPointId: { Ref: s.logicalId(s.stack.accessPoint) }, IAM: 'ENABLED' },
        },
      },
    ]);
    expect(appContainer().MountPoints).toEqual([{ ContainerPath: '/data', SourceVolume: 'data', ReadOnly: false }]);
    expect(appContainer().HealthCheck).toMatchObject({ Command: ['CMD', 'node', '-e', expect.stringContaining('/healthz')] });
  });

  test('the service runs exactly one task, never two at once, in private subnets', () => {
    s.template.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 1,
      LaunchType: 'FARGATE',
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 0, MaximumPercent: 100 }),
      NetworkConfiguration: {
        AwsvpcConfiguration: Match.objectLike({
          AssignPublicIp: 'DISABLED',
          SecurityGroups: [{ 'Fn::GetAtt': [ids.appSg, 'GroupId'] }],
        }),
      },
    });
  });

  test('app security group: ingress only from the two load balancers\' security groups, on the app port', () => {
    const sg = s.template.findResources('AWS::EC2::SecurityGroup')[ids.appSg]!.Properties;
    expect(sg.SecurityGroupIngress).toBeUndefined();
    const ingress = resourcesOf(s.template, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, p]) => JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [ids.appSg, 'GroupId'] }),
    );
    // (And the agent proxy's port from agent tasks: infra/test/environments.test.ts.)
    const app = ingress.filter(([, p]) => p.FromPort === 3000);
    expect(app.map(([, p]) => p.SourceSecurityGroupId)).toEqual([
      { 'Fn::GetAtt': [ids.albSg, 'GroupId'] },
      { 'Fn::GetAtt': [ids.internalAlbSg, 'GroupId'] },
    ]);
    expect(ingress.filter(([, p]) => p.FromPort !== 3000).map(([, p]) => [p.FromPort, p.SourceSecurityGroupId])).toEqual([
      [3128, { 'Fn::GetAtt': [ids.agentSg, 'GroupId'] }],
    ]);
    for (const [, p] of app) {
      expect(p).toMatchObject({ IpProtocol: 'tcp', FromPort: 3000, ToPort: 3000 });
      expect(p.CidrIp).toBeUndefined();
    }
  });

  test('app security group egress: HTTPS anywhere, NFS to the EFS security group only', () => {
    const sg = s.template.findResources('AWS::EC2::SecurityGroup')[ids.appSg]!.Properties;
    expect(sg.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
    ]);
    const egress = resourcesOf(s.template, 'AWS::EC2::SecurityGroupEgress').filter(
      ([, p]) => JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [ids.appSg, 'GroupId'] }),
    );
    expect(egress.map(([, p]) => p)).toEqual([
      expect.objectContaining({
        FromPort: 2049,
        ToPort: 2049,
        DestinationSecurityGroupId: { 'Fn::GetAtt': [ids.efsSg, 'GroupId'] },
      }),
    ]);
  });
});

describe('storage, logs, load balancer', () => {
  test('EFS is encrypted, reachable only from the app security group, uid 1000 access point', () => {
    s.template.hasResourceProperties('AWS::EFS::FileSystem', { Encrypted: true });
    s.template.hasResourceProperties('AWS::EFS::AccessPoint', {
      PosixUser: { Uid: '1000', Gid: '1000' },
      RootDirectory: { CreationInfo: { OwnerUid: '1000', OwnerGid: '1000', Permissions: '750' }, Path: '/codex-cloud' },
    });
    const efsRef = JSON.stringify({ 'Fn::GetAtt': [ids.efsSg, 'GroupId'] });
    const ingress = resourcesOf(s.template, 'AWS::EC2::SecurityGroupIngress').filter(([, p]) => JSON.stringify(p.GroupId) === efsRef);
    expect(ingress.map(([, p]) => p)).toEqual([
      expect.objectContaining({
        FromPort: 2049,
        ToPort: 2049,
        SourceSecurityGroupId: { 'Fn::GetAtt': [ids.appSg, 'GroupId'] },
      }),
    ]);
    expect(s.template.findResources('AWS::EC2::SecurityGroup')[ids.efsSg]!.Properties.SecurityGroupIngress).toBeUndefined();
  });

  test('the EFS file system policy allows only the app task role and refuses plain-text NFS', () => {
    const [[, fs]] = resourcesOf(s.template, 'AWS::EFS::FileSystem') as [[string, Record<string, unknown>]];
    const statements = (fs.FileSystemPolicy as { Statement: Statement[] & { Principal: unknown }[] }).Statement as (Statement & {
      Principal: unknown;
    })[];
    const allows = statements.filter((st) => st.Effect === 'Allow');
    expect(allows.map((st) => st.Principal)).toEqual([{ AWS: { 'Fn::GetAtt': [ids.appTaskRole, 'Arn'] } }]);
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  test('every log group has a retention (30 days by default)', () => {
    const groups = resourcesOf(s.template, 'AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(3);
    for (const [, g] of groups) expect(g.RetentionInDays).toBe(30);
  });

  test('HTTPS listener with the certificate, and HTTP redirects to HTTPS', () => {
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' }]),
    });
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555' }],
      SslPolicy: Match.stringLikeRegexp('^ELBSecurityPolicy-TLS13'),
      DefaultActions: [Match.objectLike({ Type: 'forward' })],
    });
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'redirect', RedirectConfig: { Port: '443', Protocol: 'HTTPS', StatusCode: 'HTTP_301' } }],
    });
    const listeners = resourcesOf(s.template, 'AWS::ElasticLoadBalancingV2::Listener');
    // The public ALB's 443 and 80, and the internal ALB's 443 (runner tasks).
    expect(listeners.map(([, l]) => l.Port).sort()).toEqual([443, 443, 80]);
  });

  test('the target group checks GET /healthz on the app port', () => {
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/healthz',
      Matcher: { HttpCode: '200' },
      Port: 3000,
      Protocol: 'HTTP',
      TargetType: 'ip',
    });
  });

  test('no lookups and no environment: the stack is environment-agnostic', () => {
    expect(s.stack.environment).toBe('aws://unknown-account/unknown-region');
    expect(Object.keys(s.app.node.tryGetContext('availability-zones:account=unknown-account:region=unknown-region') ?? {})).toEqual([]);
    const missing = s.app.synth().manifest.missing ?? [];
    expect(missing).toEqual([]);
  });

  test('the default image is the repository Dockerfile, staged (not built) as a linux/amd64 asset', () => {
    s.app.synth();
    const manifest = JSON.parse(readFileSync(join(s.outdir, `${s.stack.stackName}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string; platform?: string } }>;
    };
    const images = Object.values(manifest.dockerImages);
    // App and runner share the one image (same source, same hash).
    expect(images).toHaveLength(1);
    const source = images[0]!.source;
    expect(source.platform).toBe('linux/amd64');
    const staged = readdirSync(join(s.outdir, source.directory));
    expect(staged).toEqual(expect.arrayContaining(['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'bin']));
    // .dockerignore keeps dependencies, VCS data, build output and the CDK app out of the context.
    for (const excluded of ['node_modules', '.git', 'infra', 'dist', 'test', '.env']) expect(staged).not.toContain(excluded);
  });
});

function appTaskDefinition(): Record<string, unknown> {
  const [[, td]] = resourcesOf(s.template, 'AWS::ECS::TaskDefinition').filter(([, p]) => p.Family === 'CodexCloud-app') as [
    [string, Record<string, unknown>],
  ];
  return td;
}
function appContainer(): Record<string, unknown> {
  const containers = appTaskDefinition().ContainerDefinitions as Record<string, unknown>[];
  expect(containers).toHaveLength(1);
  return containers[0]!;
}
