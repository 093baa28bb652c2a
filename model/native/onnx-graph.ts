/**
 * Builds an ONNX model in memory: nodes of standard operators, graph inputs and outputs, and weights, encoded with
 * protobufjs against the ONNX schema (`onnx.proto` beside this file, the subset gptspam writes).
 *
 * A weight is either inline (its bytes in the model) or a region of a file on disk that ONNX Runtime reads
 * itself (ONNX "external data"): a float32 safetensors file holds each tensor as plain little-endian bytes at a
 * known offset, which is exactly what external data describes, so the base weights go from the file into the
 * runtime without a copy in JavaScript and without a converted file. ONNX Runtime resolves external locations
 * relative to one folder and refuses absolute or escaping paths, so all file weights of one model must lie in
 * one folder; weights from anywhere else are read and inlined.
 */
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** A weight's bytes: inline, or `length` bytes at `offset` of `path` (little-endian, row-major). */
export type WeightData =
  | { kind: 'inline'; bytes: Uint8Array }
  | { kind: 'file'; path: string; offset: number; length: number };

export interface Weight {
  dims: number[];
  type: DataTypeId;
  data: WeightData;
}

/** A dimension: a fixed size, or a name for a size given at run time. */
export type Dim = number | string;

/** An attribute: an integer, a list of integers, a string, or a float written `{ f: x }`. */
export type AttrValue = number | number[] | string | { f: number };

interface AttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  ints?: number[];
}

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  if (!modelType) {
    const proto = join(dirname(fileURLToPath(import.meta.url)), 'onnx.proto');
    modelType = protobuf.loadSync(proto).lookupType('onnx.ModelProto');
  }
  return modelType;
}

/** Little-endian bytes of a typed array (what ONNX raw_data holds), without copying. */
export function bytesOf(a: Float32Array | Int32Array | BigInt64Array | Int8Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class OnnxGraph {
  private readonly nodes: object[] = [];
  private readonly initializers: Array<{ name: string; weight: Weight }> = [];
  private readonly inputs: object[] = [];
  private readonly outputs: object[] = [];
  private readonly names = new Set<string>();
  private counter = 0;
  /** Domains beyond the default ONNX one that nodes use, with their opset versions. */
  private readonly domains = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly opset = 20,
  ) {}

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  input(name: string, type: DataTypeId, dims: Dim[]): string {
    this.names.add(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Makes `value` a graph output called `name`. */
  output(name: string, value: string, type: DataTypeId, dims: Dim[]): void {
    if (this.names.has(name)) throw new Error(`ONNX graph ${this.name}: the name "${name}" is used twice`);
    this.names.add(name);
    this.nodes.push({ opType: 'Identity', domain: '', input: [value], output: [name], name });
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A named weight (initializer). */
  weight(name: string, w: Weight): string {
    if (this.names.has(name)) throw new Error(`ONNX graph ${this.name}: the name "${name}" is used twice`);
    this.names.add(name);
    return this.addInitializer(name, w);
  }

  private addInitializer(name: string, w: Weight): string {
    const count = w.dims.reduce((a, d) => a * d, 1);
    const bytes = w.data.kind === 'inline' ? w.data.bytes.byteLength : w.data.length;
    if (bytes !== count * bytesPer(w.type)) {
      throw new Error(`ONNX graph ${this.name}: weight "${name}" has ${bytes} bytes for shape [${w.dims}]`);
    }
    this.initializers.push({ name, weight: w });
    return name;
  }

  /** A small constant (shapes, indices, scalars). */
  constant(values: number[], type: DataTypeId = DataType.INT64, dims: number[] = [values.length]): string {
    const data =
      type === DataType.INT64 ? bytesOf(BigInt64Array.from(values.map((v) => BigInt(v))))
      : type === DataType.FLOAT ? bytesOf(Float32Array.from(values))
      : type === DataType.INT32 ? bytesOf(Int32Array.from(values))
      : undefined;
    if (!data) throw new Error(`ONNX graph ${this.name}: constants of type ${type} are not supported`);
    return this.addInitializer(this.fresh('const'), { dims, type, data: { kind: 'inline', bytes: data } });
  }

  /** Adds a node; returns its output names (one per `outputs`, default one). */
  nodeN(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, domain = ''): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(op.toLowerCase()));
    if (domain) this.domains.set(domain, 1);
    this.nodes.push({
      opType: op,
      domain,
      input: inputs,
      output: outs,
      name: outs[0],
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    });
    return outs;
  }

  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, domain = ''): string {
    return this.nodeN(op, inputs, attrs, 1, domain)[0]!;
  }

  /**
   * Encodes the model. File weights must all lie in one folder, returned as `externalFolder` (ONNX Runtime's
   * `session.model_external_initializers_file_folder_path`); `inline` reads any other file weight into the model.
   */
  async encode(inline: (w: Extract<WeightData, { kind: 'file' }>) => Promise<Uint8Array>): Promise<{ bytes: Uint8Array; externalFolder?: string }> {
    // The folder holding the most file bytes stays external; the rest is inlined.
    const perFolder = new Map<string, number>();
    for (const { weight } of this.initializers) {
      if (weight.data.kind === 'file') perFolder.set(dirname(weight.data.path), (perFolder.get(dirname(weight.data.path)) ?? 0) + weight.data.length);
    }
    const externalFolder = [...perFolder].sort((a, b) => b[1] - a[1])[0]?.[0];
    const initializer = [];
    for (const { name, weight } of this.initializers) {
      const base = { name, dims: weight.dims, dataType: weight.type };
      const d = weight.data;
      if (d.kind === 'inline') initializer.push({ ...base, rawData: d.bytes });
      else if (dirname(d.path) === externalFolder) {
        initializer.push({
          ...base,
          dataLocation: 1, // EXTERNAL
          externalData: [
            { key: 'location', value: basename(d.path) },
            { key: 'offset', value: String(d.offset) },
            { key: 'length', value: String(d.length) },
          ],
        });
      } else initializer.push({ ...base, rawData: await inline(d) });
    }
    const opsetImport = [{ domain: '', version: this.opset }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))];
    const Model = onnxModelType();
    const message = Model.fromObject({
      irVersion: 9,
      producerName: 'gptspam',
      opsetImport,
      graph: { name: this.name, node: this.nodes, initializer, input: this.inputs, output: this.outputs },
    });
    return { bytes: Model.encode(message).finish(), ...(externalFolder ? { externalFolder } : {}) };
  }
}

function bytesPer(type: DataTypeId): number {
  switch (type) {
    case DataType.FLOAT:
    case DataType.INT32:
      return 4;
    case DataType.INT64:
      return 8;
    case DataType.INT8:
    case DataType.UINT8:
      return 1;
  }
}

function valueInfo(name: string, type: DataTypeId, dims: Dim[]): object {
  return {
    name,
    type: { tensorType: { elemType: type, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attribute(name: string, v: AttrValue): AttributeMessage {
  if (typeof v === 'string') return { name, type: ATTR.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: write a float as { f: ${v} }`);
    return { name, type: ATTR.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: ATTR.INTS, ints: v };
  return { name, type: ATTR.FLOAT, f: v.f };
}
