/**
 * Static checks of ../Dockerfile and ../.dockerignore (no Docker engine here to build them): the
 * properties the stack relies on, so that a change to either side shows up in one place.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';

const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
const dockerignore = readFileSync(new URL('../../.dockerignore', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stages = instructions.filter((l) => l.startsWith('FROM '));
const runtime = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

describe('Dockerfile', () => {
  test('multi-stage on the official Node 24 slim image', () => {
    expect(instructions[0]).toMatch(/^ARG NODE_IMAGE=node:24-(bookworm|trixie)-slim$/);
    expect(stages.map((l) => l.split(/\s+/).at(-1))).toEqual(['build', 'deps', 'runtime']);
    for (const from of stages) expect(from).toMatch(/^FROM \$\{NODE_IMAGE\} AS /);
  });

  test('the build stage compiles with npm run build; the runtime gets production dependencies only', () => {
    expect(instructions).toContainEqual(expect.stringMatching(/^RUN npm run build /));
    expect(instructions).toContainEqual(expect.stringMatching(/^RUN npm ci --omit=dev /));
    expect(runtime).toContainEqual('COPY --from=deps /app/node_modules ./node_modules');
    expect(runtime.filter((l) => /^RUN .*npm (ci|install)/.test(l))).toEqual([]);
  });

  test('runs as the non-root uid 1000 (the EFS access point uid) with one entrypoint', () => {
    const users = runtime.filter((l) => l.startsWith('USER '));
    expect(users).toEqual(['USER 1000:1000']);
    expect(runtime).toContainEqual('ENTRYPOINT ["/usr/bin/tini", "-s", "--", "codex-cloud"]');
    expect(runtime).toContainEqual('CMD ["serve"]');
  });

  test('has the agent tools and no bubblewrap', () => {
    const apt = runtime.find((l) => l.includes('apt-get install'))!;
    for (const pkg of ['git', 'build-essential', 'python3', 'python3-venv', 'python3-pip', 'curl', 'ca-certificates', 'ripgrep', 'jq', 'unzip', 'tini']) {
      expect(apt.split(/\s+/)).toContain(pkg);
    }
    expect(apt).not.toMatch(/bubblewrap/);
    expect(apt).toContain('--no-install-recommends');
    expect(apt).toContain('rm -rf /var/lib/apt/lists/*');
  });

  test('a HEALTHCHECK on /healthz, and NODE_ENV=production is not baked in (runners install devDependencies)', () => {
    expect(runtime).toContainEqual(expect.stringMatching(/^HEALTHCHECK .*CMD \["node", "-e", ".*\/healthz/));
    expect(instructions.filter((l) => /^ENV .*NODE_ENV/.test(l))).toEqual([]);
  });
});

describe('.dockerignore', () => {
  test('keeps secrets, dependencies, VCS data and the CDK app out of the build context', () => {
    for (const pattern of ['.git', '**/node_modules', 'infra', 'dist', '**/.env', '**/.env.*', '**/*.pem']) {
      expect(dockerignore).toContain(pattern);
    }
    for (const needed of ['src', 'bin', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(dockerignore).not.toContain(needed);
    }
  });
});
