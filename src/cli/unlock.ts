/**
 * `advkit unlock DIR`: breaks the lock an advkit run left in an output directory when that run is
 * gone and cannot release it (a pod rescheduled to another node, a Slurm job on another host), so
 * a killed shard can resume. Says whose lock it was; refuses a lock of a process still running here.
 */
import path from 'node:path';
import { Command } from 'commander';
import { breakLock } from '../util/fs.js';
import { action, log, printJson } from './common.js';

export function unlockCommand(): Command {
  return new Command('unlock')
    .argument('<dir>', 'the output directory holding the lock (.advkit-lock)')
    .option('--json', 'print the broken lock as JSON')
    .action(action(async (dir: string, o: { json?: boolean }) => {
      const lock = await breakLock(path.resolve(dir), 'unlock');
      log(`advkit: removed the lock of ${path.resolve(dir)}`);
      if (o.json) return printJson({ dir: path.resolve(dir), lock });
      process.stdout.write(`broke the lock of ${path.resolve(dir)}: it was pid ${lock.pid} on ${lock.host}, since ${lock.started}\n`);
    }));
}
