/**
 * NumPy .npy files (format versions 1.0–3.0), for exchange with Python tools. Reads
 * little-endian float32/float64/uint8/int8/int16/uint16/int32/int64 arrays in C order;
 * writes float32, uint8 and int32.
 */
import { DataError } from '../util/errors.js';
import { readRegularFile, writeFileAtomic } from '../util/fs.js';

export type NpyDtype = '<f4' | '<f8' | '|u1' | '|i1' | '<i2' | '<u2' | '<i4' | '<i8';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Values as float64 (exact for every supported dtype up to 2^53). */
  data: Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Bytes per value of each supported dtype. */
const NPY_WIDTH: Record<string, number> = { '<f4': 4, '<f8': 8, '|u1': 1, '<u1': 1, '|i1': 1, '<i1': 1, '<i2': 2, '<u2': 2, '<i4': 4, '<i8': 8 };

/**
 * The header of a .npy file and its data bytes as stored (checked against the shape), without
 * decoding them: what a tool that copies arrays needs.
 */
export function npyBody(buf: Uint8Array, file: string): { dtype: string; shape: number[]; body: Uint8Array } {
  const bad = (why: string) => new DataError(`Error reading .npy file ${file}: ${why}`);
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) throw bad('not a .npy file (missing the \\x93NUMPY magic string).');
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (buf.length < start + headerLen) throw bad('the header is cut short; the file is truncated.');
  const header = new TextDecoder('latin1').decode(buf.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad(`unreadable header ${JSON.stringify(header.trim())}.`);
  if (fortran === 'True') throw bad('Fortran-order arrays are not supported; save with np.ascontiguousarray(x).');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`bad shape (${shapeText}).`);
  const width = NPY_WIDTH[descr];
  if (!width) throw bad(`dtype ${descr} is not supported; use float32, float64, uint8 or int32/int64 (little-endian).`);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length - offset !== count * width) {
    throw bad(`shape (${shape.join(', ')}) of ${descr} needs ${count * width} bytes of data but the file holds ${buf.length - offset}; the file is truncated or corrupt.`);
  }
  return { dtype: descr, shape, body: buf.subarray(offset) };
}

/** The value at byte p of a dtype's data. */
function decodeValue(view: DataView, descr: string, p: number): number {
  switch (descr) {
    case '<f4': return view.getFloat32(p, true);
    case '<f8': return view.getFloat64(p, true);
    case '|u1': case '<u1': return view.getUint8(p);
    case '|i1': case '<i1': return view.getInt8(p);
    case '<i2': return view.getInt16(p, true);
    case '<u2': return view.getUint16(p, true);
    case '<i4': return view.getInt32(p, true);
    default: return Number(view.getBigInt64(p, true));
  }
}

export function parseNpy(buf: Uint8Array, file: string): NpyArray {
  const { dtype: descr, shape, body } = npyBody(buf, file);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const width = NPY_WIDTH[descr]!;
  const count = body.byteLength / width;
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = decodeValue(view, descr, i * width);
  return { dtype: (descr.replace('<u1', '|u1').replace('<i1', '|i1')) as NpyDtype, shape, data };
}

/**
 * A .npy array as float32, each value times `scale`, decoded straight from the file's bytes: a
 * float32 file is used in place (a view of the bytes read, no copy) and other dtypes are
 * converted value by value, so an image set costs its own size once, not three times (the file,
 * float64 values, float32 images).
 */
export function parseNpyFloat32(buf: Uint8Array, file: string, scale = 1): { dtype: NpyDtype; shape: number[]; data: Float32Array } {
  const { dtype, shape, body } = npyBody(buf, file);
  const width = NPY_WIDTH[dtype]!;
  const count = body.byteLength / width;
  let data: Float32Array;
  if (dtype === '<f4' && body.byteOffset % 4 === 0) {
    data = new Float32Array(body.buffer, body.byteOffset, count);
  } else if (dtype === '<f4') {
    data = new Float32Array(body.slice().buffer);
  } else {
    data = new Float32Array(count);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let i = 0; i < count; i++) data[i] = decodeValue(view, dtype, i * width);
  }
  if (scale !== 1) for (let i = 0; i < count; i++) data[i] = data[i]! * scale;
  return { dtype: dtype.replace('<u1', '|u1').replace('<i1', '|i1') as NpyDtype, shape, data };
}

export async function readNpyFloat32(file: string, scale?: (dtype: NpyDtype) => number): Promise<{ dtype: NpyDtype; shape: number[]; data: Float32Array }> {
  const buf = await readRegularFile(file, `Error reading .npy file ${file}`, MAX_NPY_BYTES);
  const { dtype } = npyBody(buf, file);
  return parseNpyFloat32(buf, file, scale?.(dtype.replace('<u1', '|u1').replace('<i1', '|i1') as NpyDtype) ?? 1);
}

/** .npy files above this are refused before reading (8 GiB). */
export const MAX_NPY_BYTES = 8 * 1024 ** 3;

export async function readNpy(file: string): Promise<NpyArray> {
  return parseNpy(await readRegularFile(file, `Error reading .npy file ${file}`, MAX_NPY_BYTES), file);
}

/** The .npy (version 1.0) header of an array of this dtype and shape: the bytes before its data. */
export function npyHeader(descr: '<f4' | '|u1' | '<i4', shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}

/** Encodes an array as .npy (version 1.0). */
export function encodeNpy(data: Float32Array | Uint8Array | Int32Array, shape: readonly number[]): Uint8Array {
  const header = npyHeader(data instanceof Float32Array ? '<f4' : data instanceof Uint8Array ? '|u1' : '<i4', shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

export async function writeNpy(file: string, data: Float32Array | Uint8Array | Int32Array, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, shape));
}
