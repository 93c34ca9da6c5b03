/**
 * `CodexCloudStack`: codex-cloud on Amazon ECS Fargate.
 *
 * - app: one Fargate task (`codex-cloud serve`) in private subnets behind an internet-facing ALB
 *   (HTTPS, HTTP→HTTPS redirect), SQLite on EFS at /data, the GitHub App and OpenAI secrets from
 *   Secrets Manager;
 * - runner: a Fargate task definition (`codex-cloud runner --claim`) that the app starts with
 *   ecs:RunTask, one task per coding task; no secrets, no IAM permissions, egress HTTPS only.
 *
 * The stack is environment-agnostic and does no lookups, so `cdk synth` works offline; the image
 * asset (default) is only built by `cdk deploy`.
 */
import { fileURLToPath } from 'node:url';
import { ArnFormat, Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { parseEcrImageUri, validateFargateSize } from './validation.ts';

/**
 * Where a container image comes from.
 * - `asset`: built by `cdk deploy` from a directory holding a Dockerfile (docker must run on the
 *   deploying machine; `cdk synth` only stages the files and never needs docker), pushed to the
 *   CDK bootstrap ECR repository; always built for linux/amd64.
 * - `uri`: an image reference that already exists. An Amazon ECR URI
 *   (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@sha256:…]`) grants the tasks' execution
 *   roles pull access on that repository; any other reference (e.g. `ghcr.io/org/image:tag`) is
 *   pulled anonymously.
 */
export type CodexImageSource =
  | { readonly kind: 'asset'; readonly directory: string; readonly file?: string }
  | { readonly kind: 'uri'; readonly uri: string };

/** A Route 53 public hosted zone in which the stack creates an alias record for `domainName`. */
export interface CodexHostedZone {
  /** Hosted zone id, e.g. `Z0123456789ABCDEFGHIJ`. */
  readonly zoneId: string;
  /** The zone's domain name, e.g. `example.com` (must be `domainName` or a parent of it). */
  readonly zoneName: string;
}

/** Properties of {@link CodexCloudStack}. Sizes use ECS units: CPU units (1024 = 1 vCPU), MiB, GiB. */
export interface CodexCloudStackProps extends StackProps {
  /** Public DNS name of the app, e.g. `codex.example.com`; the app's URL is `https://<domainName>`. */
  readonly domainName: string;
  /** ARN of an ACM certificate for `domainName`, in the region the stack is deployed to. */
  readonly certificateArn: string;
  /**
   * The GitHub App's numeric id (`APP_ID`). Required when `appDesiredCount` is 1: the app cannot
   * start without it. Leave it out for the first deploy (`appDesiredCount: 0`).
   */
  readonly githubAppId?: string;
  /**
   * Number of app tasks: 1 (default) or 0. SQLite is single-writer, so never more than one; use 0
   * for the first deploy, before the secrets hold their values.
   * @default 1
   */
  readonly appDesiredCount?: number;
  /** Image for the app and, unless `runnerImage` is set, the runner. @default built from the repository's Dockerfile */
  readonly image?: CodexImageSource;
  /** Image for runner tasks (bring your own: `FROM <our image>` plus toolchains, keep the entrypoint). @default `image` */
  readonly runnerImage?: CodexImageSource;
  /** App task CPU units. @default 512 */
  readonly appCpu?: number;
  /** App task memory in MiB. @default 1024 */
  readonly appMemoryMiB?: number;
  /** Runner task CPU units. @default 2048 (2 vCPU) */
  readonly runnerCpu?: number;
  /** Runner task memory in MiB. @default 8192 (8 GiB) */
  readonly runnerMemoryMiB?: number;
  /** Runner task ephemeral storage in GiB (21–200; 20 GiB are included in the Fargate price). @default 50 */
  readonly runnerEphemeralStorageGiB?: number;
  /** Retention of every log group the stack creates (app, runner, VPC flow logs). @default 30 days */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Let runner tasks open plain HTTP (TCP 80) connections too. Off by default: GitHub, npm, PyPI,
   * crates.io, Maven Central, the ECR/CloudWatch endpoints and the app's own URL are all HTTPS.
   * @default false
   */
  readonly allowHttpEgress?: boolean;
  /** NAT gateways (the runner needs egress). 1 is cheapest; use 2 for one per AZ. @default 1 */
  readonly natGateways?: number;
  /** `OPENAI_BASE_URL` for the app (an OpenAI-compatible endpoint on HTTPS). @default the SDK's default */
  readonly openAiBaseUrl?: string;
  /** `LOG_LEVEL` for the app (pino level). @default 'info' */
  readonly logLevel?: string;
  /** When set, the stack creates an A alias record `domainName` → ALB in this zone. @default no DNS record */
  readonly hostedZone?: CodexHostedZone;
  /** Tasks that run at once, i.e. runner tasks at most (`CODEX_CONCURRENCY`). @default the app's (2) */
  readonly concurrency?: number;
  /** Default model (`CODEX_MODEL`). @default the app's */
  readonly model?: string;
  /** Reasoning effort (`CODEX_REASONING_EFFORT`: minimal, low, medium, high, xhigh). @default the model's */
  readonly reasoningEffort?: string;
  /** The mention the app answers to (`CODEX_MENTION`). @default '@codex' */
  readonly mention?: string;
  /** Wall-clock limit of one task in minutes (`CODEX_TASK_TIMEOUT_MINUTES`). @default the app's (60) */
  readonly taskTimeoutMinutes?: number;
  /** Token budget of one task (`CODEX_MAX_TOKENS`). @default the app's (4,000,000) */
  readonly maxTokens?: number;
  /** Bot logins whose mentions may start tasks (`CODEX_ALLOWED_BOTS`). @default none */
  readonly allowedBots?: readonly string[];
  /** GitHub Enterprise Server `host[:port]` (`GHE_HOST`). @default github.com */
  readonly gheHost?: string;
}

/** Default sizes and settings of {@link CodexCloudStack}. */
export const CODEX_CLOUD_DEFAULTS = {
  appDesiredCount: 1,
  appCpu: 512,
  appMemoryMiB: 1024,
  runnerCpu: 2048,
  runnerMemoryMiB: 8192,
  runnerEphemeralStorageGiB: 50,
  logRetention: logs.RetentionDays.ONE_MONTH,
  allowHttpEgress: false,
  natGateways: 1,
  logLevel: 'info',
} as const;

/** Port the app listens on inside its container (`PORT`). */
export const APP_PORT = 3000;
/** Name of the runner's only container (`CODEX_ECS_CONTAINER_NAME`). */
export const RUNNER_CONTAINER_NAME = 'runner';
/** Name of the app's container. */
export const APP_CONTAINER_NAME = 'app';
/** Where the app's EFS volume is mounted (`CODEX_DATA_DIR`). */
export const DATA_DIR = '/data';
/** uid/gid of the image's non-root user (`node` in the official Node.js images). */
export const IMAGE_UID = '1000';

/** The repository root (the directory with the Dockerfile), the default image asset. */
export function repositoryRoot(): string {
  return fileURLToPath(new URL('../..', import.meta.url));
}

/** `node -e` health probe of the app, same as the Dockerfile's HEALTHCHECK (ECS ignores that one). */
const HEALTH_PROBE = `fetch('http://127.0.0.1:${APP_PORT}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;

/**
 * codex-cloud on ECS Fargate: VPC, ECS cluster, the app service behind an HTTPS ALB, the runner
 * task definition, EFS for the app's SQLite data, Secrets Manager secrets, log groups.
 * Throws (at construction) on invalid sizes, on `appDesiredCount` outside {0, 1}, and when
 * `githubAppId` is missing while `appDesiredCount` is 1.
 */
export class CodexCloudStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly appService: ecs.FargateService;
  readonly appTaskDefinition: ecs.FargateTaskDefinition;
  readonly appSecurityGroup: ec2.SecurityGroup;
  readonly runnerTaskDefinition: ecs.FargateTaskDefinition;
  readonly runnerSecurityGroup: ec2.SecurityGroup;
  readonly runnerLogGroup: logs.LogGroup;
  readonly appLogGroup: logs.LogGroup;
  readonly fileSystem: efs.FileSystem;
  readonly accessPoint: efs.AccessPoint;
  /** The GitHub App private key (PEM), the webhook secret, the OpenAI API key. Values are set by the operator. */
  readonly secrets: {
    readonly privateKey: secretsmanager.Secret;
    readonly webhookSecret: secretsmanager.Secret;
    readonly openAiApiKey: secretsmanager.Secret;
  };
  /** Task definition family of the runner (`CODEX_ECS_TASK_DEFINITION`). */
  readonly runnerFamily: string;

  constructor(scope: Construct, id: string, props: CodexCloudStackProps) {
    super(scope, id, props);
    const d = CODEX_CLOUD_DEFAULTS;
    const appDesiredCount = props.appDesiredCount ?? d.appDesiredCount;
    if (appDesiredCount !== 0 && appDesiredCount !== 1) {
      throw new Error(`appDesiredCount must be 0 or 1 (SQLite is single-writer), got ${appDesiredCount}`);
    }
    if (appDesiredCount === 1 && !props.githubAppId) {
      throw new Error('githubAppId is required when appDesiredCount is 1 (first deploy with appDesiredCount 0)');
    }
    const appSize = validateFargateSize('app', props.appCpu ?? d.appCpu, props.appMemoryMiB ?? d.appMemoryMiB);
    const runnerSize = validateFargateSize(
      'runner',
      props.runnerCpu ?? d.runnerCpu,
      props.runnerMemoryMiB ?? d.runnerMemoryMiB,
    );
    const runnerStorage = props.runnerEphemeralStorageGiB ?? d.runnerEphemeralStorageGiB;
    if (!Number.isInteger(runnerStorage) || runnerStorage < 21 || runnerStorage > 200) {
      throw new Error(`runnerEphemeralStorageGiB must be an integer from 21 to 200, got ${runnerStorage}`);
    }
    const retention = props.logRetention ?? d.logRetention;
    const publicUrl = `https://${props.domainName}`;
    this.runnerFamily = `${this.stackName}-runner`;

    // ── Network ────────────────────────────────────────────────────────────────────────────────
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', { retention });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: props.natGateways ?? d.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        // /20: room for many concurrent runner ENIs (one per task).
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      // Free; keeps ECR image layer downloads (from S3) off the NAT gateway's per-GB charge.
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        Rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
      // Nothing uses the default security group; restricting it would add a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    const privateSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    // ── Runner ─────────────────────────────────────────────────────────────────────────────────
    // Security groups do not filter DNS to the VPC's Amazon-provided resolver, so HTTPS is all the
    // runner needs: github.com (clone), package registries (HTTPS), the app's URL (through the
    // NAT to the ALB), ECR and CloudWatch Logs (image pull and logs go through the task's ENI).
    this.runnerSecurityGroup = new ec2.SecurityGroup(this, 'RunnerSecurityGroup', {
      vpc: this.vpc,
      description: 'codex-cloud runner tasks: no ingress; egress HTTPS only',
      allowAllOutbound: false,
    });
    this.runnerSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: GitHub, registries, the app, AWS endpoints');
    if (props.allowHttpEgress ?? d.allowHttpEgress) {
      this.runnerSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'plain HTTP (allowHttpEgress)');
    }

    this.runnerLogGroup = new logs.LogGroup(this, 'RunnerLogs', { retention });
    this.runnerTaskDefinition = new ecs.FargateTaskDefinition(this, 'RunnerTaskDefinition', {
      family: this.runnerFamily,
      cpu: runnerSize.cpu,
      memoryLimitMiB: runnerSize.memoryMiB,
      ephemeralStorageGiB: runnerStorage,
      runtimePlatform: {
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
      },
    });
    const runnerImage = this.containerImage('RunnerImageRepository', props.runnerImage ?? props.image ?? defaultImage());
    this.runnerTaskDefinition.addContainer(RUNNER_CONTAINER_NAME, {
      containerName: RUNNER_CONTAINER_NAME,
      image: runnerImage,
      command: ['runner', '--claim'],
      // No environment of its own: the app adds CODEX_TASK_ID, CODEX_APP_URL and CODEX_CLAIM_TICKET
      // as RunTask overrides; everything else (the TaskSpec, whose `sandbox` is `container` here)
      // is fetched from the app with the one-time claim ticket.
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.runnerLogGroup, streamPrefix: 'runner' }),
      // Time between SIGTERM (StopTask, e.g. cancel) and SIGKILL, for reporting partial work.
      stopTimeout: Duration.seconds(120),
      // An init process reaps the agent's orphaned grandchildren and forwards signals, whatever
      // the image's entrypoint (bring-your-own images included).
      linuxParameters: this.linuxParameters('RunnerLinuxParameters', true),
      essential: true,
    });

    // ── Storage and secrets ────────────────────────────────────────────────────────────────────
    this.appSecurityGroup = new ec2.SecurityGroup(this, 'AppSecurityGroup', {
      vpc: this.vpc,
      description: 'codex-cloud app: ingress from the load balancer only',
      allowAllOutbound: false,
    });
    this.appSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: GitHub, OpenAI, AWS APIs');

    this.fileSystem = new efs.FileSystem(this, 'Data', {
      vpc: this.vpc,
      vpcSubnets: privateSubnets,
      securityGroup: new ec2.SecurityGroup(this, 'DataSecurityGroup', {
        vpc: this.vpc,
        description: 'codex-cloud EFS mount targets: NFS from the app only',
        allowAllOutbound: false,
      }),
      encrypted: true,
      throughputMode: efs.ThroughputMode.ELASTIC,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      removalPolicy: RemovalPolicy.RETAIN,
      enableAutomaticBackups: true,
      // `true` only stops CDK from appending its own "any IAM principal may write, as root" statement
      // to the policy below; clients are still refused unless that policy allows them.
      allowAnonymousAccess: true,
      // A file system policy replaces EFS's default "allow every NFS client": clients without IAM
      // authorization get nothing, and plain-text NFS is refused. The app's task role is allowed
      // below, once it exists.
      fileSystemPolicy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'DenyUnencryptedTransport',
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            actions: ['*'],
            resources: ['*'],
            conditions: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ],
      }),
    });
    this.fileSystem.connections.allowDefaultPortFrom(this.appSecurityGroup, 'NFS from the app');
    this.accessPoint = this.fileSystem.addAccessPoint('DataAccessPoint', {
      path: '/codex-cloud',
      createAcl: { ownerUid: IMAGE_UID, ownerGid: IMAGE_UID, permissions: '750' },
      posixUser: { uid: IMAGE_UID, gid: IMAGE_UID },
    });

    const secret = (id: string, description: string): secretsmanager.Secret =>
      new secretsmanager.Secret(this, id, {
        description: `codex-cloud: ${description} (set with aws secretsmanager put-secret-value)`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.secrets = {
      privateKey: secret('GitHubAppPrivateKey', 'GitHub App private key, PEM'),
      webhookSecret: secret('GitHubWebhookSecret', 'GitHub App webhook secret'),
      openAiApiKey: secret('OpenAiApiKey', 'OpenAI API key'),
    };

    // ── App ────────────────────────────────────────────────────────────────────────────────────
    this.appLogGroup = new logs.LogGroup(this, 'AppLogs', { retention });
    this.appTaskDefinition = new ecs.FargateTaskDefinition(this, 'AppTaskDefinition', {
      family: `${this.stackName}-app`,
      cpu: appSize.cpu,
      memoryLimitMiB: appSize.memoryMiB,
      runtimePlatform: {
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
      },
      volumes: [
        {
          name: 'data',
          efsVolumeConfiguration: {
            fileSystemId: this.fileSystem.fileSystemId,
            transitEncryption: 'ENABLED',
            authorizationConfig: { accessPointId: this.accessPoint.accessPointId, iam: 'ENABLED' },
          },
        },
      ],
    });
    const environment: Record<string, string> = {
      NODE_ENV: 'production',
      PORT: String(APP_PORT),
      LOG_LEVEL: props.logLevel ?? d.logLevel,
      CODEX_PUBLIC_URL: publicUrl,
      CODEX_DATA_DIR: DATA_DIR,
      CODEX_RUNNER_BACKEND: 'ecs',
      CODEX_ECS_CLUSTER: this.cluster.clusterArn,
      CODEX_ECS_TASK_DEFINITION: this.runnerFamily,
      CODEX_ECS_CONTAINER_NAME: RUNNER_CONTAINER_NAME,
      CODEX_ECS_SUBNETS: Fn.join(',', this.vpc.privateSubnets.map((s) => s.subnetId)),
      CODEX_ECS_SECURITY_GROUPS: this.runnerSecurityGroup.securityGroupId,
      AWS_REGION: Aws.REGION,
    };
    if (props.githubAppId) environment.APP_ID = props.githubAppId;
    if (props.openAiBaseUrl) environment.OPENAI_BASE_URL = props.openAiBaseUrl;
    // The app's own settings; unset ones keep the app's defaults.
    const settings: Record<string, string | number | undefined> = {
      CODEX_CONCURRENCY: props.concurrency,
      CODEX_MODEL: props.model,
      CODEX_REASONING_EFFORT: props.reasoningEffort,
      CODEX_MENTION: props.mention,
      CODEX_TASK_TIMEOUT_MINUTES: props.taskTimeoutMinutes,
      CODEX_MAX_TOKENS: props.maxTokens,
      CODEX_ALLOWED_BOTS: props.allowedBots?.length ? props.allowedBots.join(',') : undefined,
      GHE_HOST: props.gheHost,
    };
    for (const [name, value] of Object.entries(settings)) if (value !== undefined) environment[name] = String(value);

    const appContainer = this.appTaskDefinition.addContainer(APP_CONTAINER_NAME, {
      containerName: APP_CONTAINER_NAME,
      image: this.containerImage('AppImageRepository', props.image ?? defaultImage()),
      command: ['serve'],
      environment,
      secrets: {
        PRIVATE_KEY: ecs.Secret.fromSecretsManager(this.secrets.privateKey),
        WEBHOOK_SECRET: ecs.Secret.fromSecretsManager(this.secrets.webhookSecret),
        OPENAI_API_KEY: ecs.Secret.fromSecretsManager(this.secrets.openAiApiKey),
      },
      portMappings: [{ containerPort: APP_PORT, protocol: ecs.Protocol.TCP }],
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.appLogGroup, streamPrefix: 'app' }),
      healthCheck: {
        command: ['CMD', 'node', '-e', HEALTH_PROBE],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      stopTimeout: Duration.seconds(30),
      linuxParameters: this.linuxParameters('AppLinuxParameters', false),
      essential: true,
    });
    appContainer.addMountPoints({ sourceVolume: 'data', containerPath: DATA_DIR, readOnly: false });

    // EFS: mount and write, only through the access point (enforces the uid and the directory).
    this.appTaskDefinition.addToTaskRolePolicy(
      new iam.PolicyStatement({
        sid: 'MountDataThroughAccessPoint',
        actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
        resources: [this.fileSystem.fileSystemArn],
        conditions: { StringEquals: { 'elasticfilesystem:AccessPointArn': this.accessPoint.accessPointArn } },
      }),
    );
    this.fileSystem.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AppMountsThroughMountTargets',
        principals: [this.appTaskDefinition.taskRole],
        actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
        resources: ['*'],
        conditions: { Bool: { 'elasticfilesystem:AccessedViaMountTarget': 'true' } },
      }),
    );
    this.grantRunnerControl(this.appTaskDefinition.taskRole);

    this.appService = new ecs.FargateService(this, 'AppService', {
      cluster: this.cluster,
      taskDefinition: this.appTaskDefinition,
      // SQLite on EFS is single-writer: exactly one task, and a deployment stops the old task
      // before it starts the new one.
      desiredCount: appDesiredCount,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      vpcSubnets: privateSubnets,
      securityGroups: [this.appSecurityGroup],
      assignPublicIp: false,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
      enableExecuteCommand: false,
    });

    // ── Load balancer ──────────────────────────────────────────────────────────────────────────
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      dropInvalidHeaderFields: true,
    });
    const https = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: true,
    });
    https.addTargets('App', {
      port: APP_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [this.appService.loadBalancerTarget({ containerName: APP_CONTAINER_NAME, containerPort: APP_PORT })],
      healthCheck: {
        path: '/healthz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
      deregistrationDelay: Duration.seconds(15),
    });
    this.loadBalancer.addRedirect({
      sourcePort: 80,
      sourceProtocol: elbv2.ApplicationProtocol.HTTP,
      targetPort: 443,
      targetProtocol: elbv2.ApplicationProtocol.HTTPS,
    });

    if (props.hostedZone) {
      const zone = route53.HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
        hostedZoneId: props.hostedZone.zoneId,
        zoneName: props.hostedZone.zoneName,
      });
      new route53.ARecord(this, 'AppAliasRecord', {
        zone,
        recordName: props.domainName,
        target: route53.RecordTarget.fromAlias(new route53Targets.LoadBalancerTarget(this.loadBalancer)),
      });
    }

    this.acknowledgeNagFindings();

    // ── Outputs ────────────────────────────────────────────────────────────────────────────────
    const out = (id: string, value: string, description: string): void => {
      new CfnOutput(this, id, { value, description });
    };
    out('AppUrl', publicUrl, 'The app URL (CODEX_PUBLIC_URL)');
    out('WebhookUrl', `${publicUrl}/api/github/webhooks`, 'Webhook URL for the GitHub App settings');
    out('LoadBalancerDnsName', this.loadBalancer.loadBalancerDnsName, 'Point the domain (CNAME or alias) here');
    out('PrivateKeySecretArn', this.secrets.privateKey.secretArn, 'Secret: GitHub App private key (PEM)');
    out('WebhookSecretArn', this.secrets.webhookSecret.secretArn, 'Secret: GitHub App webhook secret');
    out('OpenAiApiKeySecretArn', this.secrets.openAiApiKey.secretArn, 'Secret: OpenAI API key');
    out('ClusterName', this.cluster.clusterName, 'ECS cluster');
    out('AppServiceName', this.appService.serviceName, 'ECS service of the app');
    out('RunnerTaskDefinitionFamily', this.runnerFamily, 'Runner task definition family');
    out('AppLogGroupName', this.appLogGroup.logGroupName, 'App logs');
    out('RunnerLogGroupName', this.runnerLogGroup.logGroupName, 'Runner logs');
  }

  /**
   * The app's permissions on runner tasks: RunTask of the runner family only, on this cluster;
   * Describe/Stop/ListTasks on this cluster; TagResource of this cluster's tasks at RunTask only;
   * PassRole of the runner's two roles to ECS tasks only.
   */
  private grantRunnerControl(role: iam.IRole): void {
    const clusterCondition = { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } };
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RunRunnerTasks',
        actions: ['ecs:RunTask'],
        resources: [
          this.formatArn({
            service: 'ecs',
            resource: 'task-definition',
            resourceName: `${this.runnerFamily}:*`,
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          }),
        ],
        conditions: clusterCondition,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ManageRunnerTasks',
        actions: ['ecs:DescribeTasks', 'ecs:StopTask'],
        resources: [
          this.formatArn({
            service: 'ecs',
            resource: 'task',
            resourceName: `${this.cluster.clusterName}/*`,
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          }),
        ],
        conditions: clusterCondition,
      }),
    );
    // RunTask with `tags` also needs ecs:TagResource on the new task; ecs:CreateAction limits it to
    // tagging at launch (no retagging of existing tasks).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'TagRunnerTasksOnLaunch',
        actions: ['ecs:TagResource'],
        resources: [
          this.formatArn({
            service: 'ecs',
            resource: 'task',
            resourceName: `${this.cluster.clusterName}/*`,
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          }),
        ],
        conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
      }),
    );
    // ListTasks has no task resource (only container-instance, which Fargate has none of): the
    // ecs:cluster condition key scopes it instead.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListRunnerTasks',
        actions: ['ecs:ListTasks'],
        resources: ['*'],
        conditions: clusterCondition,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PassRunnerRoles',
        actions: ['iam:PassRole'],
        resources: [this.runnerTaskDefinition.obtainExecutionRole().roleArn, this.runnerTaskDefinition.taskRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
  }

  /** Resolves an image source; ECR URIs become repository references so that pulls are granted. */
  private containerImage(id: string, source: CodexImageSource): ecs.ContainerImage {
    if (source.kind === 'asset') {
      return ecs.ContainerImage.fromAsset(source.directory, {
        ...(source.file ? { file: source.file } : {}),
        platform: Platform.LINUX_AMD64,
      });
    }
    const ref = parseEcrImageUri(source.uri);
    if (!ref) return ecs.ContainerImage.fromRegistry(source.uri);
    const repository = ecr.Repository.fromRepositoryAttributes(this, id, {
      repositoryName: ref.repositoryName,
      repositoryArn: `arn:${ref.partition}:ecr:${ref.region}:${ref.account}:repository/${ref.repositoryName}`,
    });
    return ecs.ContainerImage.fromEcrRepository(repository, ref.tagOrDigest);
  }

  /** Linux parameters that drop every capability (the processes run as a non-root user anyway). */
  private linuxParameters(id: string, initProcessEnabled: boolean): ecs.LinuxParameters {
    const linuxParameters = new ecs.LinuxParameters(this, id, { initProcessEnabled });
    linuxParameters.dropCapabilities(ecs.Capability.ALL);
    return linuxParameters;
  }

  /**
   * Acknowledges the cdk-nag (AWS Solutions) findings that are deliberate, each with its reason.
   * Every acknowledgment names one rule (and, for IAM5, one exact finding) on one construct.
   */
  private acknowledgeNagFindings(): void {
    const ack = (scope: Construct, id: string, reason: string): void => {
      Validations.of(scope).acknowledge({ id, reason });
    };
    ack(
      this.loadBalancer,
      'AwsSolutions-EC23',
      'Internet-facing by design: GitHub delivers webhooks from changing address ranges and people open task links; only 443 (and 80, which redirects to 443) are open.',
    );
    ack(
      this.loadBalancer,
      'AwsSolutions-ELB2',
      'The app logs every request and webhook delivery itself; ALB access logs would need a region-bound S3 bucket policy, which this environment-agnostic stack cannot write.',
    );
    for (const s of Object.values(this.secrets)) {
      ack(
        s,
        'AwsSolutions-SMG4',
        'Externally issued credentials (GitHub App private key and webhook secret, OpenAI key) cannot be rotated by a rotation Lambda; the operator rotates them at GitHub/OpenAI and puts the new value.',
      );
    }
    ack(
      this.appTaskDefinition,
      'AwsSolutions-ECS2',
      'The plain environment variables are non-secret configuration (ids, URLs, subnet and security group ids); the three secrets come from Secrets Manager.',
    );
    const authToken =
      'ecr:GetAuthorizationToken supports no resource-level permissions (Resource must be "*"); image pulls themselves are limited to the image repository.';
    ack(this.runnerTaskDefinition.obtainExecutionRole(), 'AwsSolutions-IAM5[Resource::*]', authToken);
    ack(this.appTaskDefinition.obtainExecutionRole(), 'AwsSolutions-IAM5[Resource::*]', authToken);
    const taskRole = this.appTaskDefinition.taskRole;
    ack(
      taskRole,
      'AwsSolutions-IAM5[Resource::*]',
      'ecs:ListTasks has no task-level resource; the statement is limited to this cluster by the ecs:cluster condition key.',
    );
    ack(
      taskRole,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition/${this.runnerFamily}:*]`,
      'ecs:RunTask of any revision of the runner family only (the wildcard is the revision number), on this cluster only (ecs:cluster condition).',
    );
    const clusterLogicalId = this.resolve((this.cluster.node.defaultChild as ecs.CfnCluster).logicalId) as string;
    ack(
      taskRole,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/<${clusterLogicalId}>/*]`,
      'ecs:DescribeTasks and ecs:StopTask (also bound by the ecs:cluster condition), and ecs:TagResource at launch only (ecs:CreateAction RunTask), on tasks of this cluster only (task ids are not known in advance).',
    );
  }
}

function defaultImage(): CodexImageSource {
  return { kind: 'asset', directory: repositoryRoot() };
}
