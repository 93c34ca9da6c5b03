#!/usr/bin/env node
// Completes package-lock.json with entries for optional platform packages that the package
// registry did not serve (a registry mirror that only carries Linux builds answers 404 for
// e.g. @swc/core-darwin-arm64; npm then leaves them out of the lock, and `npm ci` rejects the lock
// as "Missing: <name>@ from lock file"). Each missing optional dependency gets a stub entry
// { version, optional: true } so that `npm ci` accepts the lock; on a platform that needs the
// package, npm fetches it by version as usual.
// Usage: node scripts/complete-lockfile.mjs [path/to/package-lock.json]   (default: ./package-lock.json)
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${key === '' ? '' : `${key}/`}node_modules/${name}`;
    const hoisted = `node_modules/${name}`;
    if (packages[nested] || packages[hoisted]) continue;
    packages[hoisted] = { version: range, optional: true, ...(entry.dev ? { dev: true } : {}) };
    added += 1;
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`${file}: added ${added} stub entries for optional packages`);
