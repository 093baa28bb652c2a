#!/usr/bin/env node
/**
 * Builds what the published package runs: the TypeScript of bin/main.ts, daemon/, model/ and connectors/ compiled to dist/
 * (relative ".ts" imports rewritten to ".js"), plus the files the compiled code reads beside itself: the web
 * page (dist/ui, found as ../ui/ from dist/daemon/server.js) and the vendored tfjs gradients. Run by `npm pack`
 * (prepack); the repository itself runs the sources through tsx and never needs it.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist`;
rmSync(dist, { recursive: true, force: true });
// tsc's output goes to stderr: stdout stays clean for `npm pack --json`.
const built = spawnSync(`${root}node_modules/.bin/tsc`, ['-p', `${root}tsconfig.build.json`], { stdio: ['ignore', 2, 2] });
if (built.status !== 0) {
  console.error('build: tsc failed');
  process.exit(1);
}
cpSync(`${root}ui`, `${dist}/ui`, { recursive: true, filter: (src) => !src.endsWith('.ts') });
cpSync(`${root}model/vendor`, `${dist}/model/vendor`, { recursive: true });
console.error(`build: wrote ${dist}`);
