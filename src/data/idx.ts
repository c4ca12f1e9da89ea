/**
 * IDX files (the MNIST / Fashion-MNIST format), gzipped or raw: magic 0x0000 08 ND for
 * unsigned bytes, big-endian dimension sizes, then the data.
 */
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { DataError } from '../util/errors.js';
import { readRegularFile } from '../util/fs.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** IDX data above this many bytes (decompressed) is refused: 1 GiB, 20× Fashion-MNIST's training set. */
export const MAX_IDX_BYTES = 1024 ** 3;

/** The bytes an IDX header declares (header included), from the first bytes of the file. */
function declaredBytes(head: Uint8Array): number | undefined {
  if (head.length < 4) return undefined;
  const nd = head[3]!;
  if (head.length < 4 + 4 * nd) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let count = 1;
  for (let i = 0; i < nd; i++) count *= view.getUint32(4 + 4 * i, false);
  return 4 + 4 * nd + count;
}

export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  let bytes = buf;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    // Decompression is bounded by what the header claims, and the claim by MAX_IDX_BYTES: a small
    // gzip cannot make advkit allocate gigabytes before it is found out.
    let head: Uint8Array;
    try {
      head = gunzipSync(bytes.subarray(0, 4096), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      throw new DataError(`Error reading IDX file ${file}: it looks gzipped but does not decompress (${(err as Error).message}); the file is truncated or corrupt.`);
    }
    const claimed = declaredBytes(head);
    if (claimed !== undefined && claimed > MAX_IDX_BYTES) throw new DataError(`Error reading IDX file ${file}: its header declares ${claimed} bytes of data, more than the ${MAX_IDX_BYTES} allowed; the file is corrupt or not a data set advkit can hold.`);
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: Math.max(64, Math.min(MAX_IDX_BYTES, (claimed ?? MAX_IDX_BYTES) + 1)) });
    } catch (err) {
      const tooBig = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw new DataError(`Error reading IDX file ${file}: ${tooBig ? 'it decompresses to more data than its header declares' : `it looks gzipped but does not decompress (${(err as Error).message})`}; the file is truncated or corrupt.`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(`Error reading IDX file ${file}: not an IDX file (bad magic number); expected bytes 00 00 08 NN at the start.`);
  }
  if (bytes[2] !== 0x08) {
    throw new DataError(`Error reading IDX file ${file}: data type 0x${bytes[2]!.toString(16)} is not supported; only unsigned bytes (0x08) are.`);
  }
  const nd = bytes[3]!;
  if (nd < 1 || nd > 4 || bytes.length < 4 + 4 * nd) {
    throw new DataError(`Error reading IDX file ${file}: header declares ${nd} dimensions but the file is too short for them; the file is truncated or corrupt.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * nd;
  if (bytes.length - offset !== count) {
    throw new DataError(`Error reading IDX file ${file}: header says [${dims.join(', ')}] (${count} bytes of data) but the file holds ${bytes.length - offset}; the file is truncated or corrupt.`);
  }
  return { dims, data: bytes.subarray(offset) };
}

export async function readIdx(file: string, hint = ''): Promise<IdxArray> {
  return parseIdx(await readRegularFile(file, `Error reading IDX file ${file}`, MAX_IDX_BYTES, hint), file);
}

/** Reads an IDX image file and an IDX label file into NHWC floats in [0, 1] and int labels. */
export async function readIdxPair(imagesFile: string, labelsFile: string, hint = ''): Promise<{ images: Float32Array; labels: Int32Array; shape: [number, number, number] }> {
  // One after the other, so a missing pair reports its images file first, every time.
  const img = await readIdx(imagesFile, hint);
  const lab = await readIdx(labelsFile, hint);
  if (img.dims.length !== 3 && img.dims.length !== 4) {
    throw new DataError(`Error reading IDX images ${imagesFile}: expected 3 or 4 dimensions (N, H, W[, C]), but got [${img.dims.join(', ')}].`);
  }
  if (lab.dims.length !== 1) {
    throw new DataError(`Error reading IDX labels ${labelsFile}: expected 1 dimension (N), but got [${lab.dims.join(', ')}].`);
  }
  if (lab.dims[0] !== img.dims[0]) {
    throw new DataError(`Error reading IDX pair: ${imagesFile} holds ${img.dims[0]} images but ${labelsFile} holds ${lab.dims[0]} labels.`);
  }
  const images = new Float32Array(img.data.length);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i]! / 255;
  const labels = Int32Array.from(lab.data);
  const shape: [number, number, number] = [img.dims[1]!, img.dims[2]!, img.dims[3] ?? 1];
  return { images, labels, shape };
}
