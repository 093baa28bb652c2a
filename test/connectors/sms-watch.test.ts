import assert from 'node:assert/strict';
import { appendFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchExportFolder, type FolderWatch } from '../../connectors/sms/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { backupXml, buildSpecs, loadUci, makeTempDir } from './sms-fixtures.ts';

const SETTLE_MS = 400;
const POLL_MS = 25;

let root = '';
let cleanup = async (): Promise<void> => {};
before(async () => ({ dir: root, cleanup } = await makeTempDir()));
after(() => cleanup());

interface Call { path: string; size: number; at: number }

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir);
  return dir;
}

function recordCalls(dir: string, onError?: (err: unknown, path: string) => void): { calls: Call[]; watch: FolderWatch } {
  const calls: Call[] = [];
  const watch = watchExportFolder(dir, async (path) => {
    calls.push({ path, size: (await stat(path)).size, at: performance.now() });
  }, { settleMs: SETTLE_MS, pollMs: POLL_MS, ...(onError === undefined ? {} : { onError }) });
  return { calls, watch };
}

it('reports a file written in chunks once, after it settles, and again when it grows', async () => {
  const dir = await freshDir('chunks');
  const { calls, watch } = recordCalls(dir);
  try {
    const xml = backupXml(buildSpecs(loadUci().slice(0, 200)));
    const path = join(dir, 'sms-20231114.xml');
    const chunk = Math.ceil(xml.length / 8);
    let lastWrite = 0;
    for (let at = 0; at < xml.length; at += chunk) {
      await appendFile(path, xml.slice(at, at + chunk));
      lastWrite = performance.now();
      await sleep(60);
      assert.equal(calls.length, 0, 'not reported while still being written');
    }
    const fullSize = (await stat(path)).size;
    await waitFor('first report', () => calls.length === 1, { timeoutMs: 5000, intervalMs: 10 });
    assert.equal(calls[0]?.path, path);
    assert.equal(calls[0]?.size, fullSize);
    assert.ok((calls[0]?.at ?? 0) - lastWrite >= SETTLE_MS, 'waited for the file to settle');

    await sleep(SETTLE_MS * 2);
    assert.equal(calls.length, 1, 'an unchanged file is reported only once');

    await appendFile(path, '<!-- appended later -->\n');
    await waitFor('report after growth', () => calls.length === 2, { timeoutMs: 5000, intervalMs: 10 });
    assert.equal(calls[1]?.size, fullSize + '<!-- appended later -->\n'.length);
    await sleep(SETTLE_MS * 2);
    assert.equal(calls.length, 2);
  } finally {
    await watch.stop();
  }
});

it('ignores partial downloads and dot-files, and reports the file they are renamed to', async () => {
  const dir = await freshDir('renames');
  const { calls, watch } = recordCalls(dir);
  try {
    await writeFile(join(dir, 'export.csv.part'), 'sender,body\n+1,hi\n');
    await writeFile(join(dir, '.hidden.xml'), '<smses/>');
    await writeFile(join(dir, 'empty.csv'), '');
    await sleep(SETTLE_MS * 2);
    assert.equal(calls.length, 0, 'partial, hidden and empty files are not reported');
    await rename(join(dir, 'export.csv.part'), join(dir, 'export.csv'));
    await waitFor('renamed file', () => calls.length === 1, { timeoutMs: 5000, intervalMs: 10 });
    assert.equal(calls[0]?.path, join(dir, 'export.csv'));
  } finally {
    await watch.stop();
  }
});

it('keeps watching when a callback fails, and reports a missing folder once', async () => {
  const dir = await freshDir('errors');
  const errors: Array<[string, string]> = [];
  const seen: string[] = [];
  const watch = watchExportFolder(dir, async (path) => {
    seen.push(path);
    if (path.endsWith('bad.csv')) throw new Error('import failed');
  }, { settleMs: 50, pollMs: POLL_MS, onError: (err, path) => errors.push([path, (err as Error).message]) });
  const missing = watchExportFolder(join(dir, 'nope'), async () => {}, {
    settleMs: 50, pollMs: POLL_MS, onError: (err, path) => errors.push([path, (err as Error).message]),
  });
  try {
    await writeFile(join(dir, 'bad.csv'), 'x');
    await waitFor('callback error', () => errors.some(([p]) => p.endsWith('bad.csv')), { timeoutMs: 5000, intervalMs: 10 });
    await writeFile(join(dir, 'good.csv'), 'y');
    await waitFor('next file after a failure', () => seen.some((p) => p.endsWith('good.csv')), { timeoutMs: 5000, intervalMs: 10 });
    await sleep(200);
    assert.deepEqual(errors.filter(([p]) => p.endsWith('nope')).length, 1, 'missing folder reported once');
    assert.match(errors.find(([p]) => p.endsWith('nope'))?.[1] ?? '', /ENOENT/);
    assert.equal(seen.filter((p) => p.endsWith('bad.csv')).length, 1, 'a failed file is not retried until it changes');
  } finally {
    await Promise.all([watch.stop(), missing.stop()]);
  }
});

it('stop() waits for a running callback and ends scanning', async () => {
  const dir = await freshDir('stop');
  let running = false;
  let finished = 0;
  const watch = watchExportFolder(dir, async () => {
    running = true;
    await sleep(200);
    finished++;
  }, { settleMs: 50, pollMs: POLL_MS });
  await writeFile(join(dir, 'a.xml'), '<smses/>');
  await waitFor('callback start', () => running, { timeoutMs: 5000, intervalMs: 10 });
  await watch.stop();
  assert.equal(finished, 1, 'stop resolved after the callback finished');
  await writeFile(join(dir, 'b.xml'), '<smses/>');
  await sleep(300);
  assert.equal(finished, 1, 'nothing reported after stop');
});
