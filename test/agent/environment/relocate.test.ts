/** Virtualenv console scripts restored into another work directory get their `#!` line rewritten. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { relocateVirtualenvs } from '../../../src/agent/environment/relocate.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'relocate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('relocateVirtualenvs', () => {
  test('rewrites scripts that name another work directory, keeps modes, leaves links and other files alone', async () => {
    const work = path.join(dir, 'task-2');
    const bin = path.join(work, 'home', '.venv', 'bin');
    const repoBin = path.join(work, 'repo', '.venv', 'bin');
    await mkdir(bin, { recursive: true });
    await mkdir(repoBin, { recursive: true });
    const body = '# -*- coding: utf-8 -*-\nimport sys\nfrom pytest import console_main\nsys.exit(console_main())\n';
    await writeFile(path.join(bin, 'pytest'), `#!/data/work/task-1/home/.venv/bin/python3\n${body}`, { mode: 0o755 });
    await writeFile(path.join(repoBin, 'uvicorn'), `#!/data/work/task-1/repo/.venv/bin/python\n${body}`, { mode: 0o755 });
    await writeFile(path.join(bin, 'already'), `#!${work}/home/.venv/bin/python\n${body}`, { mode: 0o755 });
    await writeFile(path.join(bin, 'system'), `#!/usr/bin/env python3\n${body}`, { mode: 0o755 });
    await writeFile(path.join(bin, 'activate'), 'VIRTUAL_ENV="/data/work/task-1/home/.venv"\n');
    await symlink('/usr/bin/python3', path.join(bin, 'python3'));

    expect(await relocateVirtualenvs(work)).toBe(2);
    expect(await readFile(path.join(bin, 'pytest'), 'utf8')).toBe(`#!${work}/home/.venv/bin/python3\n${body}`);
    expect((await stat(path.join(bin, 'pytest'))).mode & 0o777).toBe(0o755);
    expect(await readFile(path.join(repoBin, 'uvicorn'), 'utf8')).toBe(`#!${work}/repo/.venv/bin/python\n${body}`);
    expect(await readFile(path.join(bin, 'system'), 'utf8')).toBe(`#!/usr/bin/env python3\n${body}`);
    expect(await relocateVirtualenvs(path.join(dir, 'no-venv'))).toBe(0);
  });
});
