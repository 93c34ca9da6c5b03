/**
 * Reads {@link CodexCloudStackProps} from CDK context (`cdk deploy -c key=value`, or the
 * "context" object of cdk.json / cdk.context.json). Values given with `-c` arrive as strings;
 * values from JSON may be numbers or booleans: both are accepted.
 */
import * as logs from 'aws-cdk-lib/aws-logs';
import type { CodexCloudStackProps, CodexImageSource } from './codex-cloud-stack.ts';

/** Context keys understood by the app (bin/app.ts); see infra/README.md for each. */
export const CONTEXT_KEYS = [
  'stackName',
  'domainName',
  'certificateArn',
  'githubAppId',
  'appDesiredCount',
  'imageUri',
  'runnerImageUri',
  'appCpu',
  'appMemoryMiB',
  'runnerCpu',
  'runnerMemoryMiB',
  'runnerEphemeralStorageGiB',
  'logRetentionDays',
  'allowHttpEgress',
  'environmentCache',
  'agentNetworkIsolation',
  'environmentExpirationDays',
  'agentProxyPort',
  'natGateways',
  'openAiBaseUrl',
  'logLevel',
  'hostedZoneId',
  'hostedZoneName',
  'concurrency',
  'model',
  'reasoningEffort',
  'mention',
  'taskTimeoutMinutes',
  'maxTokens',
  'allowedBots',
  'gheHost',
] as const;

/** One of {@link CONTEXT_KEYS}. */
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** Stack props plus the stack's name, as read from context. */
export interface ContextProps extends CodexCloudStackProps {
  readonly stackName: string;
}

/** Default stack name (`-c stackName=…` to deploy a second copy in the same account/region). */
export const DEFAULT_STACK_NAME = 'CodexCloud';

/** `CODEX_REASONING_EFFORT` values the app accepts. */
const REASONING_EFFORTS: readonly string[] = ['minimal', 'low', 'medium', 'high', 'xhigh'];

const RETENTION_DAYS = new Set(Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number'));

/**
 * Builds the stack props from a context getter (e.g. `(k) => app.node.tryGetContext(k)`).
 * @throws Error naming the context key when a required value is missing or a value is malformed.
 */
export function propsFromContext(get: (key: ContextKey) => unknown): ContextProps {
  const str = (key: ContextKey): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`context value "${key}" must be a string`);
    return String(v).trim();
  };
  const required = (key: ContextKey, example: string): string => {
    const v = str(key);
    if (!v) throw new Error(`context value "${key}" is required (e.g. -c ${key}=${example})`);
    return v;
  };
  const int = (key: ContextKey): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new Error(`context value "${key}" must be a non-negative integer, got "${v}"`);
    return Number(v);
  };
  const bool = (key: ContextKey): boolean | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw new Error(`context value "${key}" must be true or false, got "${String(v)}"`);
  };
  const image = (key: ContextKey): CodexImageSource | undefined => {
    const uri = str(key);
    return uri ? { kind: 'uri', uri } : undefined;
  };

  const stackName = str('stackName') ?? DEFAULT_STACK_NAME;
  if (!/^[A-Za-z][A-Za-z0-9-]{0,119}$/.test(stackName)) {
    throw new Error(`context value "stackName" must start with a letter and hold only letters, digits and hyphens, got "${stackName}"`);
  }
  const domainName = required('domainName', 'codex.example.com');
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i.test(domainName)) {
    throw new Error(`context value "domainName" must be a DNS name such as codex.example.com, got "${domainName}"`);
  }
  const certificateArn = required('certificateArn', 'arn:aws:acm:us-east-1:123456789012:certificate/…');
  if (!/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[\w-]+$/.test(certificateArn)) {
    throw new Error(`context value "certificateArn" must be an ACM certificate ARN, got "${certificateArn}"`);
  }
  const githubAppId = str('githubAppId');
  if (githubAppId !== undefined && !/^\d+$/.test(githubAppId)) {
    throw new Error(`context value "githubAppId" must be the GitHub App's numeric id, got "${githubAppId}"`);
  }
  const appDesiredCount = int('appDesiredCount');
  if (githubAppId === undefined && appDesiredCount !== 0) {
    throw new Error(
      'context value "githubAppId" is required (e.g. -c githubAppId=123456), unless the app is scaled to zero for the first deploy (-c appDesiredCount=0)',
    );
  }
  const positive = (key: ContextKey): number | undefined => {
    const v = int(key);
    if (v === 0) throw new Error(`context value "${key}" must be a positive integer, got 0`);
    return v;
  };
  const reasoningEffort = str('reasoningEffort');
  if (reasoningEffort !== undefined && !REASONING_EFFORTS.includes(reasoningEffort)) {
    throw new Error(`context value "reasoningEffort" must be one of ${REASONING_EFFORTS.join(', ')}, got "${reasoningEffort}"`);
  }
  const mention = str('mention');
  if (mention !== undefined && !/^@[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(mention)) {
    throw new Error(`context value "mention" must be @ followed by a name, e.g. @codex, got "${mention}"`);
  }
  const allowedBotsValue = get('allowedBots');
  let allowedBots: string[] | undefined;
  if (Array.isArray(allowedBotsValue)) allowedBots = allowedBotsValue.map((v) => String(v).trim()).filter(Boolean);
  else {
    const list = str('allowedBots');
    allowedBots = list === undefined ? undefined : list.split(',').map((v) => v.trim()).filter(Boolean);
  }
  const badBot = allowedBots?.find((login) => !/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\[bot\])?$/.test(login));
  if (badBot !== undefined) {
    throw new Error(`context value "allowedBots" must be comma-separated GitHub logins (e.g. renovate[bot]), got "${badBot}"`);
  }
  const gheHost = str('gheHost');
  if (gheHost !== undefined && !/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(gheHost)) {
    throw new Error(`context value "gheHost" must be a host name with an optional :port (no scheme or path), got "${gheHost}"`);
  }
  const logRetentionDays = int('logRetentionDays');
  if (logRetentionDays !== undefined && !RETENTION_DAYS.has(logRetentionDays)) {
    throw new Error(
      `context value "logRetentionDays" must be one of ${[...RETENTION_DAYS].sort((a, b) => a - b).join(', ')}, got ${logRetentionDays}`,
    );
  }
  const openAiBaseUrl = str('openAiBaseUrl');
  if (openAiBaseUrl !== undefined && !URL.canParse(openAiBaseUrl)) {
    throw new Error(`context value "openAiBaseUrl" must be a URL, got "${openAiBaseUrl}"`);
  }
  const hostedZoneId = str('hostedZoneId');
  const hostedZoneName = str('hostedZoneName');
  if ((hostedZoneId === undefined) !== (hostedZoneName === undefined)) {
    throw new Error('context values "hostedZoneId" and "hostedZoneName" go together: give both or neither');
  }

  const props: ContextProps = {
    stackName,
    domainName,
    certificateArn,
    githubAppId,
    appDesiredCount,
    image: image('imageUri'),
    runnerImage: image('runnerImageUri'),
    appCpu: int('appCpu'),
    appMemoryMiB: int('appMemoryMiB'),
    runnerCpu: int('runnerCpu'),
    runnerMemoryMiB: int('runnerMemoryMiB'),
    runnerEphemeralStorageGiB: int('runnerEphemeralStorageGiB'),
    logRetention: logRetentionDays as logs.RetentionDays | undefined,
    allowHttpEgress: bool('allowHttpEgress'),
    environmentCache: bool('environmentCache'),
    agentNetworkIsolation: bool('agentNetworkIsolation'),
    environmentExpirationDays: positive('environmentExpirationDays'),
    agentProxyPort: int('agentProxyPort'),
    natGateways: int('natGateways'),
    openAiBaseUrl,
    logLevel: str('logLevel'),
    hostedZone: hostedZoneId && hostedZoneName ? { zoneId: hostedZoneId, zoneName: hostedZoneName } : undefined,
    concurrency: positive('concurrency'),
    model: str('model'),
    reasoningEffort,
    mention,
    taskTimeoutMinutes: positive('taskTimeoutMinutes'),
    maxTokens: positive('maxTokens'),
    allowedBots,
    gheHost,
  };
  // Drop undefined entries so that the stack's defaults apply.
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as unknown as ContextProps;
}
