/**
 * `CodexCloudStack`: codex-cloud on Amazon ECS Fargate.
 *
 * - app: one Fargate task (`codex-cloud serve`) in private subnets behind an internet-facing ALB
 *   (HTTPS, HTTP→HTTPS redirect), SQLite on EFS at /data, the GitHub App and OpenAI secrets from
 *   Secrets Manager;
 * - runner: a Fargate task definition (`codex-cloud runner --claim`) that the app starts with
 *   ecs:RunTask as two task kinds (DESIGN.md, "Environments"): the **setup task** (only when the
 *   task's environment is not cached) in the setup security group, HTTPS egress; the **agent task**
 *   in the agent security group, whose only ways out are the app (an internal ALB, reached inside the
 *   VPC under the app's own domain name through a private hosted zone), S3 through the VPC gateway
 *   endpoint (presigned URLs for the environment archive), the ECR / CloudWatch Logs interface
 *   endpoints (image pull, logs) and the app's agent proxy (Cloud Map `app.codex-cloud.internal`);
 *   no secrets, no IAM permissions;
 * - the environment archives' S3 bucket (encrypted, private, SSL only, expiring after 2 days); the
 *   app presigns PUT (setup task) and GET (agent task) URLs under `environments/`.
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
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
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
  /**
   * Cache prepared environments (dependency directories after the setup phase) in an S3 bucket
   * the stack creates (`CODEX_ENV_BUCKET`), so that later tasks of the same repository, setup
   * script and lockfiles skip setup. Off: no bucket, and every task runs its setup in one runner
   * task with HTTPS egress (`agentNetworkIsolation` must then be off too).
   * @default true
   */
  readonly environmentCache?: boolean;
  /**
   * Run the agent phase in its own runner task whose security group allows no internet: only the
   * app (inside the VPC), S3 through the gateway endpoint, and the ECR and CloudWatch Logs
   * interface endpoints (which the stack then creates). Off: the agent task gets the setup
   * security group (HTTPS to anywhere), as before environments existed; no interface endpoints,
   * no internal load balancer. Needs `environmentCache`, and a runner image in Amazon ECR (or the
   * default image asset): the agent task cannot pull from another registry.
   * @default true
   */
  readonly agentNetworkIsolation?: boolean;
  /**
   * Port of the app's agent proxy (`CODEX_AGENT_PROXY_PORT`), through which agent tasks reach the
   * hosts a repository's `agent_network` allowlist names; agent tasks reach it at
   * `http://app.codex-cloud.internal:<port>` (Cloud Map service discovery, `CODEX_AGENT_PROXY_URL`).
   * 0: no proxy (`agent_network` allowlists then have no effect on ECS). Only with
   * `agentNetworkIsolation`.
   * @default 3128
   */
  readonly agentProxyPort?: number;
  /** Days after which environment archives expire from the bucket (S3 lifecycle rule). @default 2 */
  readonly environmentExpirationDays?: number;
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
  environmentCache: true,
  agentNetworkIsolation: true,
  environmentExpirationDays: 2,
  agentProxyPort: 3128,
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
/** Private DNS namespace (Cloud Map) in which the app registers as `app`, for the agent proxy. */
export const SERVICE_NAMESPACE = 'codex-cloud.internal';
/** Key prefix of environment archives in the bucket (the app may presign only under it). */
export const ENVIRONMENTS_PREFIX = 'environments/';
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
  /** The setup task's security group (`CODEX_ECS_SETUP_SECURITY_GROUPS`): no ingress, egress HTTPS. */
  readonly setupSecurityGroup: ec2.SecurityGroup;
  /**
   * The agent task's security group (`CODEX_ECS_SECURITY_GROUPS`): no ingress; egress only to the
   * internal load balancer, the S3 prefix list and the interface endpoints. The setup group itself
   * when `agentNetworkIsolation` is off.
   */
  readonly agentSecurityGroup: ec2.SecurityGroup;
  /** The environment archives' bucket (`CODEX_ENV_BUCKET`), unless `environmentCache` is off. */
  readonly environmentBucket?: s3.Bucket;
  /** The internal ALB through which runner tasks reach the app, when `agentNetworkIsolation` is on. */
  readonly internalLoadBalancer?: elbv2.ApplicationLoadBalancer;
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
    const environmentCache = props.environmentCache ?? d.environmentCache;
    const isolateAgent = props.agentNetworkIsolation ?? d.agentNetworkIsolation;
    if (isolateAgent && !environmentCache) {
      throw new Error('agentNetworkIsolation needs environmentCache: the agent task without internet gets its environment from the bucket');
    }
    const runnerImageSource = props.runnerImage ?? props.image ?? defaultImage();
    if (isolateAgent && runnerImageSource.kind === 'uri' && !parseEcrImageUri(runnerImageSource.uri)) {
      throw new Error(
        `agentNetworkIsolation needs the runner image in Amazon ECR (the agent task has no internet to pull ${runnerImageSource.uri}); push it to ECR (or use an ECR pull-through cache) or turn agentNetworkIsolation off`,
      );
    }
    const proxyPort = isolateAgent ? (props.agentProxyPort ?? d.agentProxyPort) : 0;
    if (!Number.isInteger(proxyPort) || proxyPort < 0 || proxyPort > 65_535 || proxyPort === APP_PORT) {
      throw new Error(`agentProxyPort must be a port number other than the app's ${APP_PORT} (0: no proxy), got ${proxyPort}`);
    }
    const expirationDays = props.environmentExpirationDays ?? d.environmentExpirationDays;
    if (!Number.isInteger(expirationDays) || expirationDays < 1) {
      throw new Error(`environmentExpirationDays must be a positive integer, got ${expirationDays}`);
    }
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
      // Nothing uses the default security group: a custom resource removes its rules.
      restrictDefaultSecurityGroup: true,
    });
    const privateSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    // ── Runner ─────────────────────────────────────────────────────────────────────────────────
    // Security groups do not filter DNS to the VPC's Amazon-provided resolver.
    // Setup task: HTTPS to anywhere (github.com, package registries), through the NAT gateway.
    this.setupSecurityGroup = new ec2.SecurityGroup(this, 'SetupSecurityGroup', {
      vpc: this.vpc,
      description: 'codex-cloud runner setup tasks: no ingress; egress HTTPS only',
      allowAllOutbound: false,
    });
    this.setupSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: GitHub, registries, the app, AWS endpoints');
    if (props.allowHttpEgress ?? d.allowHttpEgress) {
      this.setupSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'plain HTTP (allowHttpEgress)');
    }
    // Agent task: no internet. Its rules (the app, S3, the endpoints) are added below.
    this.agentSecurityGroup = isolateAgent
      ? new ec2.SecurityGroup(this, 'AgentSecurityGroup', {
          vpc: this.vpc,
          description: 'codex-cloud runner agent tasks: no ingress; egress to the app, S3 and the ECR/Logs endpoints only',
          allowAllOutbound: false,
          allowAllIpv6Outbound: false,
        })
      : this.setupSecurityGroup;

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
    const runnerImage = this.containerImage('RunnerImageRepository', runnerImageSource);
    this.runnerTaskDefinition.addContainer(RUNNER_CONTAINER_NAME, {
      containerName: RUNNER_CONTAINER_NAME,
      image: runnerImage,
      command: ['runner', '--claim'],
      // No environment of its own: the app adds CODEX_TASK_ID, CODEX_APP_URL and CODEX_CLAIM_TICKET
      // as RunTask overrides (and, for a setup task, the command `runner --claim --phase setup`);
      // everything else (the TaskSpec, whose `sandbox` is `container` here, and the presigned
      // archive URLs) is fetched from the app with the one-time claim ticket.
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

    if (environmentCache) {
      // Environment archives: written and read only through URLs the app presigns per task.
      this.environmentBucket = new s3.Bucket(this, 'EnvironmentBucket', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        versioned: false,
        lifecycleRules: [
          { id: 'ExpireEnvironments', prefix: ENVIRONMENTS_PREFIX, expiration: Duration.days(expirationDays) },
          { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        ],
        // A cache: its objects expire anyway. Retained on stack deletion (a non-empty bucket cannot
        // be deleted by CloudFormation without an extra Lambda); empty it and delete it by hand.
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

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
      CODEX_ECS_SECURITY_GROUPS: this.agentSecurityGroup.securityGroupId,
      AWS_REGION: Aws.REGION,
    };
    if (this.environmentBucket) {
      environment.CODEX_ENV_BUCKET = this.environmentBucket.bucketName;
      environment.CODEX_ECS_SETUP_SECURITY_GROUPS = this.setupSecurityGroup.securityGroupId;
    }
    if (proxyPort) {
      environment.CODEX_AGENT_PROXY_PORT = String(proxyPort);
      environment.CODEX_AGENT_PROXY_URL = `http://app.${SERVICE_NAMESPACE}:${proxyPort}`;
    }
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
    if (this.environmentBucket) {
      // Presigned URLs act with the signer's permissions: PUT for the setup task, GET for the
      // agent task, only under the environments/ prefix.
      this.appTaskDefinition.addToTaskRolePolicy(
        new iam.PolicyStatement({
          sid: 'PresignEnvironmentArchives',
          actions: ['s3:PutObject', 's3:GetObject'],
          resources: [this.environmentBucket.arnForObjects(`${ENVIRONMENTS_PREFIX}*`)],
        }),
      );
    }

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
      ...(proxyPort
        ? {
            // `app.codex-cloud.internal` (A record of the task's private IP): how agent tasks reach
            // the agent proxy, which an ALB cannot carry (HTTP CONNECT).
            cloudMapOptions: {
              name: 'app',
              cloudMapNamespace: this.cluster.addDefaultCloudMapNamespace({ name: SERVICE_NAMESPACE, vpc: this.vpc }),
              dnsRecordType: servicediscovery.DnsRecordType.A,
              dnsTtl: Duration.seconds(10),
            },
          }
        : {}),
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

    if (isolateAgent) this.internalLoadBalancer = this.isolateAgentTasks(props, this.setupSecurityGroup, this.agentSecurityGroup);
    if (proxyPort) {
      this.appSecurityGroup.connections.allowFrom(this.agentSecurityGroup, ec2.Port.tcp(proxyPort), 'agent proxy (HTTP CONNECT) from agent tasks');
    }

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

  /**
   * The agent task's ways out, none of them to the internet:
   * - the app, through an internal ALB with the app's own certificate; a private hosted zone for
   *   `domainName` in the VPC makes the app's public URL resolve to it from inside the VPC, so
   *   runners use the same `CODEX_APP_URL` and TLS, without the NAT gateway;
   * - S3 through the VPC's gateway endpoint: an egress rule to the region's S3 prefix list
   *   (`com.amazonaws.<region>.s3`, looked up at deploy time by a custom resource, since
   *   CloudFormation does not expose it);
   * - the ECR (API and registry) and CloudWatch Logs interface endpoints, with private DNS, for the
   *   image pull and the awslogs driver, which use the task's network interface on Fargate.
   * @returns the internal load balancer.
   */
  private isolateAgentTasks(
    props: CodexCloudStackProps,
    setupSecurityGroup: ec2.SecurityGroup,
    agentSecurityGroup: ec2.SecurityGroup,
  ): elbv2.ApplicationLoadBalancer {
    const internal = new elbv2.ApplicationLoadBalancer(this, 'InternalLoadBalancer', {
      vpc: this.vpc,
      internetFacing: false,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      dropInvalidHeaderFields: true,
      securityGroup: new ec2.SecurityGroup(this, 'InternalLoadBalancerSecurityGroup', {
        vpc: this.vpc,
        description: 'codex-cloud internal ALB: HTTPS from runner tasks only',
        allowAllOutbound: false,
      }),
    });
    const listener = internal.addListener('InternalHttps', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [acm.Certificate.fromCertificateArn(this, 'InternalCertificate', props.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false,
    });
    listener.addTargets('AppFromRunners', {
      port: APP_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [this.appService.loadBalancerTarget({ containerName: APP_CONTAINER_NAME, containerPort: APP_PORT })],
      healthCheck: { path: '/healthz', healthyHttpCodes: '200', interval: Duration.seconds(15), timeout: Duration.seconds(5) },
      deregistrationDelay: Duration.seconds(15),
    });
    // The setup group's own rule (443 to anywhere) already covers its egress: ingress rules only.
    internal.connections.securityGroups[0]!.addIngressRule(setupSecurityGroup, ec2.Port.tcp(443), 'HTTPS from setup tasks');
    internal.connections.allowFrom(agentSecurityGroup, ec2.Port.tcp(443), 'HTTPS from agent tasks');
    const zone = new route53.PrivateHostedZone(this, 'AppPrivateZone', {
      zoneName: props.domainName,
      vpc: this.vpc,
      comment: 'codex-cloud: the app URL resolves to the internal ALB inside the VPC',
    });
    new route53.ARecord(this, 'AppPrivateAliasRecord', {
      zone,
      target: route53.RecordTarget.fromAlias(new route53Targets.LoadBalancerTarget(internal)),
    });

    const s3PrefixList = new cr.AwsCustomResource(this, 'S3PrefixListLookup', {
      onUpdate: {
        service: 'EC2',
        action: 'DescribeManagedPrefixLists',
        parameters: { Filters: [{ Name: 'prefix-list-name', Values: [`com.amazonaws.${Aws.REGION}.s3`] }] },
        physicalResourceId: cr.PhysicalResourceId.of(`s3-prefix-list-${Aws.REGION}`),
        outputPaths: ['PrefixLists.0.PrefixListId'],
      },
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: cr.AwsCustomResourcePolicy.ANY_RESOURCE }),
      installLatestAwsSdk: false,
      logGroup: new logs.LogGroup(this, 'S3PrefixListLookupLogs', { retention: props.logRetention ?? CODEX_CLOUD_DEFAULTS.logRetention }),
    });
    agentSecurityGroup.addEgressRule(
      ec2.Peer.prefixList(s3PrefixList.getResponseField('PrefixLists.0.PrefixListId')),
      ec2.Port.tcp(443),
      'HTTPS to S3 through the gateway endpoint (presigned environment archives, image layers)',
    );
    const endpoints: [string, ec2.InterfaceVpcEndpointAwsService][] = [
      ['EcrApiEndpoint', ec2.InterfaceVpcEndpointAwsService.ECR],
      ['EcrDockerEndpoint', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
      ['LogsEndpoint', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
    ];
    for (const [id, service] of endpoints) {
      const endpoint = this.vpc.addInterfaceEndpoint(id, {
        service,
        privateDnsEnabled: true,
        subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        // With private DNS every task in the VPC resolves these names to the endpoint: the app and
        // both runner task kinds may reach it; the agent group gets its egress rule from this.
        open: false,
      });
      const endpointGroup = endpoint.connections.securityGroups[0]!;
      endpointGroup.addIngressRule(this.appSecurityGroup, ec2.Port.tcp(443), `HTTPS from the app (${id})`);
      endpointGroup.addIngressRule(setupSecurityGroup, ec2.Port.tcp(443), `HTTPS from setup tasks (${id})`);
      endpoint.connections.allowFrom(agentSecurityGroup, ec2.Port.tcp(443), `HTTPS from agent tasks (${id})`);
    }

    const ack = (scope: Construct, id: string, reason: string): void => {
      Validations.of(scope).acknowledge({ id, reason });
    };
    ack(
      internal,
      'AwsSolutions-ELB2',
      'The internal ALB only carries runner tasks\' runner API calls, which the app logs itself (claims, progress, results, model gateway requests).',
    );
    ack(
      s3PrefixList,
      'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeManagedPrefixLists supports no resource-level permissions; the lookup reads the AWS-managed S3 prefix list id once per deployment.',
    );
    const lookupFunction = this.node.tryFindChild(`AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`);
    if (lookupFunction) {
      ack(
        lookupFunction,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'The CDK AwsCustomResource Lambda (deploy-time S3 prefix list lookup) only writes its own logs through the AWS managed basic execution policy.',
      );
    }
    return internal;
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
    if (this.environmentBucket) {
      ack(
        this.environmentBucket,
        'AwsSolutions-S1',
        'Environment archives are a short-lived cache (expired by the lifecycle rule) read and written only through presigned URLs that the app mints per task and logs; server access logs would need a second bucket.',
      );
      ack(
        this.appTaskDefinition.taskRole,
        `AwsSolutions-IAM5[Resource::<${this.resolve((this.environmentBucket.node.defaultChild as s3.CfnBucket).logicalId) as string}.Arn>/${ENVIRONMENTS_PREFIX}*]`,
        'The app presigns one archive object per environment key, which is not known in advance: s3:PutObject/GetObject are limited to the environments/ prefix of this bucket.',
      );
    }
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
