#!/usr/bin/env node
// In the repository the TypeScript sources run through tsx (a dev dependency), so there is no build step between
// `npm ci` and use; the published package has no sources, only their compiled JavaScript in dist/ (`npm pack`
// builds it), and runs on plain Node. README, "Installing", says why.
import { existsSync } from 'node:fs';

const sources = new URL('./main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/bin/main.js');
}
