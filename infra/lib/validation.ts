/** Pure helpers of the CDK app: Fargate size rules, ECR image URI parsing. No AWS calls. */

/** A Fargate task size: CPU units (1024 = 1 vCPU) and memory in MiB. */
export interface FargateSize {
  readonly cpu: number;
  readonly memoryMiB: number;
}

/**
 * Memory choices (MiB) per CPU value for Linux Fargate tasks, from the table "Task CPU and memory"
 * in the Amazon ECS developer guide
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size).
 */
const FARGATE_MEMORY: Readonly<Record<number, { readonly min: number; readonly max: number; readonly step: number }>> = {
  256: { min: 512, max: 2048, step: 512 }, // 512, 1024, 2048 (1536 is not offered; checked below)
  512: { min: 1024, max: 4096, step: 1024 },
  1024: { min: 2048, max: 8192, step: 1024 },
  2048: { min: 4096, max: 16384, step: 1024 },
  4096: { min: 8192, max: 30720, step: 1024 },
  8192: { min: 16384, max: 61440, step: 4096 },
  16384: { min: 32768, max: 122880, step: 8192 },
};

/**
 * Checks a CPU/memory pair against the Fargate combinations and returns it.
 * @param what name used in the error message ('app', 'runner').
 * @throws Error naming the invalid value and the valid choices.
 */
export function validateFargateSize(what: string, cpu: number, memoryMiB: number): FargateSize {
  const range = FARGATE_MEMORY[cpu];
  if (!range) {
    throw new Error(`${what} CPU must be one of ${Object.keys(FARGATE_MEMORY).join(', ')} CPU units (1024 = 1 vCPU), got ${cpu}`);
  }
  const ok =
    Number.isInteger(memoryMiB) &&
    memoryMiB >= range.min &&
    memoryMiB <= range.max &&
    (memoryMiB - range.min) % range.step === 0 &&
    !(cpu === 256 && memoryMiB === 1536);
  if (!ok) {
    throw new Error(
      `${what} memory ${memoryMiB} MiB is not valid with ${cpu} CPU units on Fargate: ` +
        `use ${range.min}–${range.max} MiB in steps of ${range.step}`,
    );
  }
  return { cpu, memoryMiB };
}

/** The parts of an Amazon ECR image URI. */
export interface EcrImageRef {
  readonly account: string;
  readonly region: string;
  /** `aws`, `aws-cn` (…amazonaws.com.cn). */
  readonly partition: string;
  readonly repositoryName: string;
  /** A tag, or a digest `sha256:<64 hex>`; `latest` when the URI has neither. */
  readonly tagOrDigest: string;
}

const ECR_URI =
  /^(?<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?<cn>\.cn)?\/(?<repo>[a-z0-9][a-z0-9._/-]*?)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>sha256:[0-9a-f]{64}))?$/;

/**
 * Parses an Amazon ECR image URI (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag][@sha256:…]`,
 * format from https://docs.aws.amazon.com/AmazonECR/latest/userguide/docker-pull-ecr-image.html).
 * A digest wins over a tag. Returns undefined for anything else (other registries).
 */
export function parseEcrImageUri(uri: string): EcrImageRef | undefined {
  const m = ECR_URI.exec(uri.trim());
  const g = m?.groups;
  if (!g?.account || !g.region || !g.repo) return undefined;
  return {
    account: g.account,
    region: g.region,
    partition: g.cn ? 'aws-cn' : 'aws',
    repositoryName: g.repo,
    tagOrDigest: g.digest ?? g.tag ?? 'latest',
  };
}
