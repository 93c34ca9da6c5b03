/**
 * `cdk synth` through the real CDK CLI and bin/app.ts, offline and without Docker: docker is
 * replaced by /bin/false (CDK_DOCKER), so any attempt to build the image asset would fail synth.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';

const infraDir = fileURLToPath(new URL('..', import.meta.url));
const cdkBin = join(infraDir, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const outdirs: string[] = [];
afterAll(() => outdirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function cdkSynth(context: Record<string, string>) {
  const outdir = mkdtempSync(join(tmpdir(), 'codex-cdk-cli-'));
  outdirs.push(outdir);
  const args = [cdkBin, 'synth', '--quiet', '--no-notices', '--output', outdir];
  for (const [k, v] of Object.entries(context)) args.push('--context', `${k}=${v}`);
  const result = spawnSync(process.execPath, args, {
    cwd: infraDir,
    encoding: 'utf8',
    timeout: 90_000,
    env: {
      ...process.env,
      // bin/app.ts runs with this Node (24: type stripping), whatever `node` is first on PATH.
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      CDK_DOCKER: '/bin/false',
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      // No AWS credentials or region: nothing may depend on them.
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_PROFILE: '',
      AWS_REGION: '',
      AWS_DEFAULT_REGION: '',
    },
  });
  return { ...result, outdir };
}

describe('cdk synth (CLI)', () => {
  test('synthesizes offline, without Docker, with cdk-nag passing', () => {
    const r = cdkSynth({
      domainName: 'codex.example.com',
      certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555',
      githubAppId: '123456',
    });
    expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 0 });
    const template = JSON.parse(readFileSync(join(r.outdir, 'CodexCloud.template.json'), 'utf8'));
    expect(Object.keys(template.Resources).length).toBeGreaterThan(50);
    const assets = JSON.parse(readFileSync(join(r.outdir, 'CodexCloud.assets.json'), 'utf8'));
    expect(Object.keys(assets.dockerImages)).toHaveLength(1);
    // The image is only staged: `cdk deploy` builds it.
    const [image] = Object.values(assets.dockerImages) as { source: { directory: string } }[];
    expect(existsSync(join(r.outdir, image!.source.directory, 'Dockerfile'))).toBe(true);
  });

  test('a missing required context value fails with one line naming it, no stack trace', () => {
    const r = cdkSynth({ certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/x' });
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toContain('codex-cloud infra: context value "domainName" is required');
    expect(r.stderr + r.stdout).not.toMatch(/^\s+at /m);
  });

  test('githubAppId is required unless the app is scaled to zero', () => {
    const r = cdkSynth({
      domainName: 'codex.example.com',
      certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('codex-cloud infra: context value "githubAppId" is required (e.g. -c githubAppId=123456), unless the app is scaled to zero for the first deploy (-c appDesiredCount=0)');
    expect(r.stderr + r.stdout).not.toMatch(/^\s+at /m);
  });
});
