/**
 * Writes ONNX models (opset 17) with onnx-proto: nodes, float and int64 initializers, attributes,
 * one value per name. The emitter (emit_onnx.ts) builds the compiled graph's forward and gradient
 * graphs with it; onnxruntime runs them.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const OPSET = 17;

type AttrValue = number | number[] | string | { float: number } | { floats: number[] };
export type Attrs = Record<string, AttrValue | undefined>;

interface NodeProtoLike { opType: string; input: string[]; output: string[]; name: string; attribute: unknown[] }

function attribute(name: string, v: AttrValue): unknown {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.FLOATS, floats: v.floats };
}

export class OnnxBuilder {
  private readonly nodes: NodeProtoLike[] = [];
  private readonly initializers: unknown[] = [];
  private readonly scalars = new Map<string, string>();
  private count = 0;

  /** A fresh value name. */
  fresh(hint: string): string {
    return `${hint.replace(/[^A-Za-z0-9_]/g, '_')}_${this.count++}`;
  }

  /** Adds a node; returns its output names (`outputs` of them). */
  node(opType: string, inputs: string[], attrs: Attrs = {}, outputs = 1): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    const attribute_ = Object.entries(attrs).filter((e): e is [string, AttrValue] => e[1] !== undefined).map(([k, v]) => attribute(k, v));
    this.nodes.push({ opType, input: inputs, output: out, name: out[0]!, attribute: attribute_ });
    return out;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], attrs: Attrs = {}): string {
    return this.node(opType, inputs, attrs)[0]!;
  }

  /** A float32 initializer. */
  floats(values: Float32Array | number[], dims: number[], hint = 'w'): string {
    const name = this.fresh(hint);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) });
    return name;
  }

  /** An int64 initializer (shapes, axes, indices). */
  ints(values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    const name = this.fresh('i');
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /** A float scalar constant (shared by value). */
  scalar(v: number): string {
    const key = String(v);
    let name = this.scalars.get(key);
    if (!name) { name = this.floats([v], [], 'c'); this.scalars.set(key, name); }
    return name;
  }

  /** Serializes the model: float32 inputs and outputs, their shapes (-1 a symbolic batch). */
  encode(inputs: Array<{ name: string; shape: number[]; int64?: boolean }>, outputs: Array<{ name: string; shape: number[] }>): Uint8Array {
    const DT = onnx.TensorProto.DataType;
    const info = (v: { name: string; shape: number[]; int64?: boolean }) => ({
      name: v.name,
      type: { tensorType: { elemType: v.int64 ? DT.INT64 : DT.FLOAT, shape: { dim: v.shape.map((d) => (d < 0 ? { dimParam: 'batch' } : { dimValue: d })) } } },
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'advkit',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: { name: 'advkit', node: this.nodes, initializer: this.initializers, input: inputs.map(info), output: outputs.map(info) },
    } as never);
    return onnx.ModelProto.encode(model).finish();
  }
}
