/** Shared helpers of the template tests: an App with cdk.json's feature flags, IAM statement lookup. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CodexCloudStack } from '../lib/codex-cloud-stack.ts';
import type { CodexCloudStackProps } from '../lib/codex-cloud-stack.ts';

/** The context of infra/cdk.json (feature flags), so tests synthesize what `cdk synth` does. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../cdk.json', import.meta.url), 'utf8'),
).context;

export const BASE_PROPS = {
  domainName: 'codex.example.com',
  certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555',
  githubAppId: '123456',
} as const satisfies Partial<CodexCloudStackProps>;

/** A synthesized stack, its template, and a way to remove its temporary output directory. */
export interface Synthesized {
  readonly app: App;
  readonly stack: CodexCloudStack;
  readonly template: Template;
  readonly outdir: string;
  /** Logical id of a construct's CloudFormation resource. */
  logicalId(construct: { node: { defaultChild?: unknown } }): string;
  cleanup(): void;
}

/** Builds (but does not synthesize) an app with one CodexCloudStack in a temporary outdir. */
export function buildApp(props: Partial<CodexCloudStackProps> = {}): { app: App; stack: CodexCloudStack; outdir: string } {
  const outdir = mkdtempSync(join(tmpdir(), 'codex-cdk-'));
  const app = new App({ outdir, context: CDK_JSON_CONTEXT });
  const stack = new CodexCloudStack(app, 'CodexCloud', { ...BASE_PROPS, ...props });
  return { app, stack, outdir };
}

/** Synthesizes a CodexCloudStack with the given props (merged over {@link BASE_PROPS}). */
export function synth(props: Partial<CodexCloudStackProps> = {}): Synthesized {
  const { app, stack, outdir } = buildApp(props);
  const template = Template.fromStack(stack);
  return {
    app,
    stack,
    template,
    outdir,
    logicalId: (construct) => stack.resolve((construct.node.defaultChild as CfnElement).logicalId) as string,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/** An IAM policy statement as it appears in the template. */
export interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource?: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/**
 * Every statement that applies to a role: its AWS::IAM::Policy documents, inline policies and
 * managed policies (managed policy ARNs are returned separately, since their content is not in
 * the template).
 */
export function roleGrants(template: Template, roleLogicalId: string): { statements: Statement[]; managedPolicyArns: unknown[] } {
  const statements: Statement[] = [];
  const refersToRole = (roles: unknown): boolean =>
    Array.isArray(roles) && roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleLogicalId }));
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    if (refersToRole(policy.Properties?.Roles)) statements.push(...policy.Properties.PolicyDocument.Statement);
  }
  const managed: unknown[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::ManagedPolicy'))) {
    if (refersToRole(policy.Properties?.Roles)) statements.push(...policy.Properties.PolicyDocument.Statement);
  }
  const role = template.findResources('AWS::IAM::Role')[roleLogicalId];
  if (!role) throw new Error(`no role ${roleLogicalId} in the template`);
  for (const inline of role.Properties?.Policies ?? []) statements.push(...inline.PolicyDocument.Statement);
  managed.push(...(role.Properties?.ManagedPolicyArns ?? []));
  return { statements, managedPolicyArns: managed };
}

/** The actions of a statement as an array. */
export function actionsOf(s: Statement): string[] {
  return Array.isArray(s.Action) ? s.Action : [s.Action];
}

/** Every template resource of a type, as [logicalId, properties]. */
export function resourcesOf(template: Template, type: string): [string, Record<string, unknown>][] {
  return Object.entries(template.findResources(type)).map(([id, r]) => [id, (r.Properties ?? {}) as Record<string, unknown>]);
}
