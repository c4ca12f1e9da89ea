/**
 * File helpers: atomic writes (write to a temporary file beside the target, then rename), the
 * lock of an output directory, and the rule for replacing one.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdvkitError, DataError } from './errors.js';

/** A temporary name beside `file`, unique without a module-level counter. */
const tmpName = (file: string) => `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;

/**
 * Refuses to write `file` over anything but a regular file: a rename over a symlink, a FIFO or a
 * device (`--junit /dev/null` as root) would replace it for everyone. A missing file is fine.
 */
export async function checkWritableTarget(file: string, what = file): Promise<void> {
  const st = await fsp.lstat(file).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  if (!st || st.isFile()) return;
  const kind = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
  throw new AdvkitError('E_OUTPUT_NOT_FILE', `Error writing ${what}: ${file} is ${kind}, not a regular file; advkit writes only new or regular files, never through a link, a device or a FIFO. Choose another path.`, 2);
}

/**
 * Checks, before any computation, that `file` can be written later: a new or regular file whose
 * directory exists (or can be made) and takes a new file. Exit 2 naming `flag` otherwise.
 */
export async function checkWritableFile(file: string, flag: string): Promise<void> {
  await checkWritableTarget(file, flag);
  const probe = tmpName(file);
  try {
    await makeDirectory(path.dirname(path.resolve(file)));
    await fsp.writeFile(probe, '', { flag: 'wx' });
    await fsp.rm(probe, { force: true });
  } catch (err) {
    throw new AdvkitError('E_OUTPUT', `Error in ${flag}: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a writable path.`, 2);
  }
}

/** An error writing `file` (disk full, read-only, permission) as one line naming the file. */
function writeError(file: string, err: unknown): unknown {
  if (err instanceof AdvkitError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = { ENOSPC: 'the disk is full', EDQUOT: 'the disk quota is exceeded', EROFS: 'the file system is read-only', EACCES: 'permission denied', EPERM: 'permission denied', ENOTDIR: 'a parent is not a directory', EISDIR: 'it is a directory' };
  if (code && why[code]) return new AdvkitError('E_WRITE', `Error writing ${file}: ${why[code]} (${code}); nothing was replaced.`, code === 'ENOSPC' || code === 'EDQUOT' ? 1 : 2);
  return err;
}

/** Writes `data` to `file` atomically: a reader sees the old file or the new one, never half. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tmpName(file);
  try {
    await checkWritableTarget(file);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(tmp, data, { flag: 'wx' });
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw writeError(file, err);
  }
}

/**
 * Writes the chunks `parts` yields to `file` atomically, one at a time (a file larger than memory
 * can be written; what `writeFileAtomic` promises holds).
 */
export async function writeFileAtomicStreamed(file: string, parts: AsyncIterable<Uint8Array>): Promise<void> {
  await checkWritableTarget(file);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = tmpName(file);
  const handle = await fsp.open(tmp, 'wx').catch((err: unknown) => Promise.reject(writeError(file, err)));
  try {
    for await (const part of parts) await handle.write(part);
    await handle.close();
    await fsp.rename(tmp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw writeError(file, err);
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

/** advkit's lock file inside an output directory while a run writes it. */
export const LOCK_FILE = '.advkit-lock';

export interface LockRecord {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lock files this process holds, removed if it is interrupted (SIGINT, SIGTERM). */
const held = new Set<string>();
let signalsInstalled = false;

/**
 * On SIGINT/SIGTERM, removes the locks this process holds, then, when nothing else listens for
 * the signal, ends the process as the signal would have (the library changes no other behaviour).
 */
function releaseOnSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      for (const f of held) { try { rmSync(f, { force: true }); } catch { /* best effort */ } }
      held.clear();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        signalsInstalled = false;
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** The lock record in `dir`, if any (for `advkit unlock`). */
export async function readLock(dir: string): Promise<LockRecord | undefined> {
  return fsp.readFile(path.join(dir, LOCK_FILE), 'utf8').then((t) => JSON.parse(t) as LockRecord, () => undefined);
}

/**
 * Breaks the lock of `dir` left by a run that is gone (a killed pod, another Slurm node): returns
 * whose it was. Refuses a lock held by a live process on this host.
 */
export async function breakLock(dir: string, flag: string): Promise<LockRecord> {
  const lock = await readLock(dir);
  if (!lock) throw new AdvkitError('E_NOT_LOCKED', `Error in ${flag}: ${dir} holds no advkit lock (${LOCK_FILE}).`, 2);
  if (lock.host === os.hostname() && typeof lock.pid === 'number' && alive(lock.pid) && lock.pid !== process.pid) {
    throw new AdvkitError('E_LOCKED', `Error in ${flag}: ${dir} is locked by pid ${lock.pid} on this host, which is still running; stop it first.`, 2);
  }
  await fsp.rm(path.join(dir, LOCK_FILE), { force: true });
  return lock;
}

/**
 * Takes the exclusive lock of output directory `dir` (created if missing) for this process and
 * returns its release. A lock held by a live process refuses (exit 2, naming the holder); one
 * left by a dead process on this host (kill -9, a crash) is taken over; one left on another host
 * is broken with `advkit unlock DIR`. The lock is released if the process is interrupted.
 */
export async function lockDirectory(dir: string, flag: string): Promise<() => Promise<void>> {
  try {
    await makeDirectory(dir);
  } catch (err) {
    throw new AdvkitError('E_OUTPUT', `Error in ${flag}: cannot create the directory ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a writable directory.`, 2);
  }
  const file = path.join(dir, LOCK_FILE);
  const me: LockRecord = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  // The handlers first: a signal between taking the lock and recording it would leave it behind.
  releaseOnSignals();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, JSON.stringify(me), { flag: 'wx' });
      held.add(file);
      return async () => {
        held.delete(file);
        const holder = await fsp.readFile(file, 'utf8').then((t) => JSON.parse(t) as LockRecord, () => undefined);
        if (holder?.pid === me.pid && holder.host === me.host) await fsp.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AdvkitError('E_OUTPUT', `Error in ${flag}: cannot write in ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a writable directory.`, 2);
    }
    const holder = await fsp.readFile(file, 'utf8').then((t) => JSON.parse(t) as LockRecord, () => undefined);
    if (holder && typeof holder.pid === 'number' && (holder.host !== me.host || alive(holder.pid))) {
      const other = holder.host !== me.host ? `; if that run is gone (a killed pod or node), break its lock with advkit unlock ${dir}` : '';
      throw new AdvkitError('E_LOCKED', `Error in ${flag}: ${dir} is being written by another advkit run (pid ${holder.pid} on ${holder.host}, since ${holder.started}); wait for it to finish, or stop it, or choose another directory${other}.`, 2);
    }
    await fsp.rm(file, { force: true }); // stale: its process is gone
  }
  throw new AdvkitError('E_LOCKED', `Error in ${flag}: could not take the lock of ${dir}; another run keeps taking it.`, 2);
}

/**
 * Empties `dir` for a new run (keeping advkit's lock), but only a directory advkit wrote
 * (`isOurs`) or an empty one; never the working directory, its parents, the home directory or /.
 */
export async function replaceDirectory(dir: string, flag: string, isOurs: boolean): Promise<void> {
  const real = await fsp.realpath(dir).catch(() => path.resolve(dir));
  const cwd = await fsp.realpath(process.cwd()).catch(() => process.cwd());
  const home = await fsp.realpath(os.homedir()).catch(() => os.homedir());
  const entries = (await fsp.readdir(dir).catch(() => [] as string[])).filter((e) => e !== LOCK_FILE);
  if (entries.length === 0) return;
  const protectedDir = real === path.parse(real).root || real === home || cwd === real || cwd.startsWith(real + path.sep);
  if (protectedDir) throw new AdvkitError('E_OUTPUT_PROTECTED', `Error in ${flag}: refusing to replace ${dir} (${real}): it is the working directory, one of its parents, the home directory or /; choose a new directory.`, 2);
  if (!isOurs) throw new AdvkitError('E_OUTPUT_EXISTS', `Error in ${flag}: ${dir} holds files advkit did not write (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); advkit replaces only its own output directories, with --force or not; choose a new or empty directory.`, 2);
  for (const e of entries) await fsp.rm(path.join(dir, e), { recursive: true, force: true });
}

/**
 * A JSON checkpoint in `file` for the run identified by `key`: `load` gives back what `save`
 * stored for the same key (a file of another run, or a corrupt one, is ignored); writes are atomic.
 */
export function jsonCheckpoint<T>(file: string, key: string): { load(): Promise<T | undefined>; save(state: T): Promise<void>; clear(): Promise<void> } {
  return {
    load: async () => {
      const saved = await fsp.readFile(file, 'utf8').then((t) => JSON.parse(t) as { key?: string; state?: T }, () => undefined);
      return saved?.key === key ? saved.state : undefined;
    },
    save: (state) => writeFileAtomic(file, JSON.stringify({ key, state })),
    clear: () => fsp.rm(file, { force: true }),
  };
}

/**
 * Reads an untrusted input file: a regular file only (a FIFO or device could hang or never
 * end), of at most `maxBytes`, both checked before a byte is read. `what` starts the message.
 */
export async function readRegularFile(file: string, what: string, maxBytes: number, hint = ''): Promise<Buffer> {
  const st = await fsp.stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new DataError(`${what}: ${err.code === 'ENOENT' ? 'no such file' : `cannot be read (${err.code ?? err.message})`}.${hint ? ` ${hint}` : ''}`);
  });
  if (!st.isFile()) throw new DataError(`${what}: not a regular file (a ${st.isDirectory() ? 'directory' : st.isFIFO() ? 'FIFO' : 'device or socket'}); refusing to read it.`);
  if (st.size > maxBytes) throw new DataError(`${what}: ${st.size} bytes, more than the ${maxBytes} allowed for this kind of file.`);
  return fsp.readFile(file);
}

/** Creates `dir` if needed and checks it is writable, before any computation (exit 2 if not). */
export async function ensureWritableDir(dir: string, flag: string): Promise<void> {
  try {
    await makeDirectory(dir);
    await fsp.access(dir, fsConstants.W_OK);
  } catch (err) {
    throw new AdvkitError('E_OUTPUT', `Error in ${flag}: cannot write in ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a writable directory.`, 2);
  }
}

/**
 * `mkdir -p` one level at a time. Node's recursive mkdir never returns for some paths (under
 * /proc it retries ENOENT forever); this one fails with the first level that cannot be made.
 */
export async function makeDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  let d = path.resolve(dir);
  for (;;) {
    const st = await fsp.stat(d).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' });
      break;
    }
    missing.push(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing.reverse()) {
    await fsp.mkdir(m).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err; });
  }
}

/**
 * Refuses an output directory holding files advkit would not write there (`own` names the files
 * and directories a command writes, e.g. report.json, .state): a directory of the user's is never
 * overwritten or emptied, whatever the command. `marker`, when given, is a JSON file whose
 * `schema` must be `schema` for the directory to count as advkit's.
 */
export async function checkOwnOutput(dir: string, flag: string, own: readonly string[], marker?: { file: string; schema: string }): Promise<void> {
  const entries = (await fsp.readdir(dir).catch(() => [] as string[])).filter((e) => e !== LOCK_FILE && !e.includes('.tmp-'));
  const foreign = entries.filter((e) => !own.includes(e));
  if (marker && entries.includes(marker.file)) {
    const schema = await fsp.readFile(path.join(dir, marker.file), 'utf8').then((t) => (JSON.parse(t) as { schema?: unknown }).schema, () => undefined);
    if (schema !== marker.schema) foreign.push(marker.file);
  }
  if (foreign.length) {
    throw new AdvkitError('E_OUTPUT_EXISTS', `Error in ${flag}: ${dir} holds files advkit did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); advkit replaces only its own output; choose a new or empty directory.`, 2);
  }
}
