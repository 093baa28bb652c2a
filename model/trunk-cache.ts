/**
 * A key → activations store for the frozen trunk: in memory up to a byte budget (least recently used first
 * out), spilled to disk as float16 beyond it when a folder is given. Keys are content hashes that include the
 * base weights' hash (see CachedFeatures), so an entry can never be served for other weights or other text.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './files.ts';
import { halfToFloat } from './safetensors.ts';

/** What the cache holds for one message: rows × E floats (rows = stored positions, or 1 for a pooled vector). */
export interface CachedEntry {
  rows: number;
  data: Float32Array;
}

export interface TrunkCacheOptions {
  /** Bytes kept in memory (float32). Default 1 GiB. */
  memoryBytes?: number;
  /** Folder for entries evicted from memory; without one they are dropped (and recomputed when needed). */
  spillDir?: string;
}

export class TrunkCache {
  private readonly memory = new Map<string, CachedEntry>();
  private bytes = 0;
  readonly memoryBytes: number;
  readonly spillDir?: string;
  stats = { hits: 0, misses: 0, spilled: 0, diskHits: 0 };

  constructor(opts: TrunkCacheOptions = {}) {
    this.memoryBytes = opts.memoryBytes ?? 1024 ** 3;
    this.spillDir = opts.spillDir;
    if (this.spillDir) mkdirSync(this.spillDir, { recursive: true });
  }

  has(key: string): boolean {
    return this.memory.has(key) || (this.spillDir !== undefined && existsSync(this.path(key)));
  }

  get(key: string): CachedEntry | undefined {
    const hit = this.memory.get(key);
    if (hit) {
      // Re-insert to mark as most recently used.
      this.memory.delete(key);
      this.memory.set(key, hit);
      this.stats.hits++;
      return hit;
    }
    if (this.spillDir && existsSync(this.path(key))) {
      const entry = decodeEntry(readFileSync(this.path(key)));
      this.stats.diskHits++;
      this.put(key, entry);
      return entry;
    }
    this.stats.misses++;
    return undefined;
  }

  set(key: string, entry: CachedEntry): void {
    if (this.memory.has(key)) return;
    this.put(key, entry);
  }

  private put(key: string, entry: CachedEntry): void {
    this.memory.set(key, entry);
    this.bytes += entry.data.byteLength;
    while (this.bytes > this.memoryBytes && this.memory.size > 1) {
      const [oldKey, old] = this.memory.entries().next().value as [string, CachedEntry];
      this.memory.delete(oldKey);
      this.bytes -= old.data.byteLength;
      if (this.spillDir && !existsSync(this.path(oldKey))) {
        writeFileAtomicSync(this.path(oldKey), encodeEntry(old));
        this.stats.spilled++;
      }
    }
  }

  private path(key: string): string {
    return join(this.spillDir!, `${key}.f16`);
  }
}

/** [rows u32][float16 × n]: half the size of float32; activations keep ~3 significant digits. */
function encodeEntry(e: CachedEntry): Buffer {
  const buf = Buffer.alloc(4 + e.data.length * 2);
  buf.writeUInt32LE(e.rows, 0);
  for (let i = 0; i < e.data.length; i++) buf.writeUInt16LE(floatToHalf(e.data[i]!), 4 + 2 * i);
  return buf;
}

function decodeEntry(buf: Buffer): CachedEntry {
  const rows = buf.readUInt32LE(0);
  const n = (buf.length - 4) / 2;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = halfToFloat(buf.readUInt16LE(4 + 2 * i));
  return { rows, data };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE-754 binary16, round to nearest even. */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
