/**
 * Part of `npm run bench`: a process that does only what the daemon's model host does: load a checkpoint on the
 * chosen inference path and score texts in batches. Prints one JSON line: its peak RSS and throughput.
 *   node --import tsx test/bench/scoring-process.ts CHECKPOINT_DIR native|tfjs TEXTS.json
 */
import { readFileSync } from 'node:fs';
import { initBackend, initInference, type InferenceName } from '../../model/backend.ts';
import { ModelHost } from '../../daemon/model-host.ts';

const [dir, inference, textsPath] = process.argv.slice(2);
if (!dir || !inference || !textsPath) throw new Error('usage: scoring-process.ts CHECKPOINT_DIR native|tfjs TEXTS.json');
await initBackend('auto', { log: () => {} });
await initInference(inference as InferenceName, { log: () => {} });
const texts = JSON.parse(readFileSync(textsPath, 'utf8')) as string[];
const host = new ModelHost();
await host.load(1, dir, null);
const t0 = performance.now();
await Promise.all(texts.map((t) => host.score(t)));
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), msgs_per_s: +(texts.length / seconds).toFixed(1) }));
process.exit(0);
