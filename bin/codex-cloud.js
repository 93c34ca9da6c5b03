#!/usr/bin/env node
// Entry point of the `codex-cloud` command: the compiled CLI when built, else the TypeScript
// sources directly (Node >= 22.18 strips types natively).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/cli.ts', import.meta.url).href);
