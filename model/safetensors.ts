/**
 * Reader and writer for the safetensors format (https://huggingface.co/docs/safetensors).
 *
 * A file is: u64 little-endian header length N, N bytes of JSON header, then raw tensor data. Tensors are read
 * one at a time with positioned reads, so a multi-gigabyte checkpoint is never held in memory as a whole,
 * and every tensor's extent is checked against the file before it is read, so a truncated or corrupt file
 * gives an error naming the tensor rather than garbage numbers.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './files.ts';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Anything larger is not a real header: real GPT-2 headers are a few tens of KB. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export class SafetensorsError extends Error {
  constructor(
    file: string,
    /** What is wrong, without the file name. */
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/**
 * Checks that `path` is a safetensors file whose header parses and whose every tensor lies inside the file,
 * without reading any tensor data: for a download or a file the user hands in. Says how many tensors it lists.
 */
export async function checkSafetensorsHeader(path: string): Promise<{ tensors: number }> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const { tensors } = await readHeader(path, handle, size);
    return { tensors: tensors.size };
  } catch (err) {
    if (err instanceof SafetensorsError) throw new Error(`${path} is not a safetensors file: ${err.detail}`, { cause: err });
    throw err;
  } finally {
    await handle.close();
  }
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const { tensors, metadata } = await readHeader(path, handle, size);
      return new SafetensorsFile(path, handle, tensors, metadata);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `tensor "${name}" is missing`);
    return info;
  }

  /** Reads one tensor as float32 (F16 and BF16 are widened; F64 narrowed). */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    const bytes = Buffer.alloc(info.end - info.begin);
    const { bytesRead } = await this.handle.read(bytes, 0, bytes.length, info.begin);
    if (bytesRead !== bytes.length) {
      throw new SafetensorsError(this.path, `tensor "${name}": file ended after ${bytesRead} of ${bytes.length} bytes`);
    }
    return toFloat32(this.path, info, bytes);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readHeader(
  path: string,
  handle: FileHandle,
  fileSize: number,
): Promise<{ tensors: Map<string, TensorInfo>; metadata: Record<string, string> }> {
  if (fileSize < 8) throw new SafetensorsError(path, `too short to be a safetensors file (${fileSize} bytes)`);
  const lenBuf = Buffer.alloc(8);
  await handle.read(lenBuf, 0, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > fileSize) {
    throw new SafetensorsError(path, `corrupt header: declared header length ${headerLen} does not fit a ${fileSize}-byte file`);
  }
  const headerBuf = Buffer.alloc(headerLen);
  await handle.read(headerBuf, 0, headerLen, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBuf.toString('utf8'));
  } catch (err) {
    throw new SafetensorsError(path, `corrupt header: not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(path, 'corrupt header: expected a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor "${name}"`;
    if (typeof entry !== 'object' || entry === null) throw new SafetensorsError(path, `${where}: header entry is not an object`);
    if (typeof entry.dtype !== 'string' || !(entry.dtype in DTYPE_BYTES)) {
      throw new SafetensorsError(path, `${where}: unsupported dtype ${JSON.stringify(entry.dtype)}`);
    }
    const dtype = entry.dtype as DType;
    if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(path, `${where}: invalid shape ${JSON.stringify(entry.shape)}`);
    }
    const shape = entry.shape as number[];
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new SafetensorsError(path, `${where}: invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [b, e] = offsets as [number, number];
    const expected = shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
    if (e - b !== expected) {
      throw new SafetensorsError(path, `${where}: shape [${shape}] of ${dtype} needs ${expected} bytes, data_offsets give ${e - b}`);
    }
    if (e > dataSize) {
      throw new SafetensorsError(path, `${where}: data ends at byte ${e} but the file holds only ${dataSize} data bytes (truncated?)`);
    }
    tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  return { tensors, metadata };
}

function toFloat32(path: string, info: TensorInfo, bytes: Buffer): Float32Array {
  const n = bytes.length / DTYPE_BYTES[info.dtype];
  // Copy into an aligned buffer: Buffer.alloc may come from a pool with an arbitrary byte offset.
  const aligned = new ArrayBuffer(bytes.length);
  new Uint8Array(aligned).set(bytes);
  switch (info.dtype) {
    case 'F32':
      return new Float32Array(aligned);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned));
    case 'F16': {
      const src = new Uint16Array(aligned);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]!);
      return out;
    }
    case 'BF16': {
      const src = new Uint16Array(aligned);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = src[i]! << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new SafetensorsError(path, `tensor "${info.name}": dtype ${info.dtype} is not a floating-point type`);
  }
}

/** IEEE-754 binary16 → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
}

/** Writes float32 tensors; the file appears atomically (temp file + rename), so a crash never leaves half a file. */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) throw new Error(`writeSafetensors: tensor "${name}" has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const parts: Uint8Array[] = [len, headerBytes];
  for (const name of names) {
    const d = tensors[name]!.data;
    parts.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  await writeFileAtomic(path, parts);
}
