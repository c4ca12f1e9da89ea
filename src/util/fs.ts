/** File helpers: atomic writes (write to a temporary file beside the target, then rename). */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

let counter = 0;

/** Writes `data` to `file` atomically: a reader sees the old file or the new one, never half. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${counter++}`;
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes the chunks `parts` yields to `file` atomically, one at a time (a file larger than memory
 * can be written; what `writeFileAtomic` promises holds).
 */
export async function writeFileAtomicStreamed(file: string, parts: AsyncIterable<Uint8Array>): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${counter++}`;
  const handle = await fsp.open(tmp, 'w');
  try {
    for await (const part of parts) await handle.write(part);
    await handle.close();
    await fsp.rename(tmp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}
