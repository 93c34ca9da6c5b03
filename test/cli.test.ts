import { describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { runCli } from './support/cli.ts';

describe('codex-cloud', () => {
  test.each([['--version'], ['-V']])('%s prints the package version and exits 0', async (flag) => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const run = await runCli([flag]);
    expect(run).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  test('--help lists --version', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('-V, --version');
  });
});
