#!/usr/bin/env node
/**
 * The `advkit` bin: the program of cli/commands.ts with only the invoked command loaded. An
 * option the command does not have is reported as unknown (with a suggestion) before anything
 * else is checked.
 */
import { CommanderError, type Command } from 'commander';
import { buildProgram, COMMANDS } from './cli/commands.js';

/** The first long option in `args` that `cmd` does not have (values and everything after `--` skipped). */
function unknownLongOption(cmd: Command, args: readonly string[]): string | undefined {
  const known = new Set(['--help', ...cmd.options.map((o) => o.long).filter((f): f is string => f !== undefined)]);
  for (const [i, a] of args.entries()) {
    if (a === '--') return undefined;
    if (!a.startsWith('--')) continue;
    const flag = a.split('=')[0]!;
    const prev = args[i - 1];
    const prevTakesValue = prev !== undefined && prev.startsWith('-') && !prev.includes('=') && cmd.options.some((o) => (o.long === prev || o.short === prev) && (o.required || o.optional));
    if (!known.has(flag) && !prevTakesValue) return flag;
  }
  return undefined;
}

/**
 * The option a mistyped one most likely meant: one it starts with or that starts with it
 * (`--epsilon` → `--eps`, `--limits` → `--limit`), else one within two edits (`--modle`).
 */
function likelyMeant(flag: string, known: string[]): string | undefined {
  const f = flag.slice(2);
  const common = (k: string) => { let i = 0; while (i < f.length && i < k.length && f[i] === k[i]) i++; return i; };
  const prefix = known.map((k) => ({ k, n: common(k.slice(2)) })).filter(({ k, n }) => n >= 3 && (n === k.length - 2 || n === f.length)).sort((a, b) => b.n - a.n)[0];
  if (prefix) return prefix.k;
  const edits = (a: string, b: string) => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const row = [i];
      for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row;
    }
    return prev[b.length]!;
  };
  return known.map((k) => ({ k, d: edits(f, k.slice(2)) })).filter(({ d }) => d <= 2).sort((a, b) => a.d - b.d)[0]?.k;
}

try {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('-'));
  const program = await buildProgram(name !== undefined && name in COMMANDS ? name : undefined);
  const cmd = name !== undefined ? program.commands.find((c) => c.name() === name) : undefined;
  const unknown = cmd ? unknownLongOption(cmd, args.slice(args.indexOf(name!) + 1)) : undefined;
  // Commander checks required options first: `--epsilon 0.1` would read "required option --eps".
  if (cmd && unknown) {
    const near = likelyMeant(unknown, cmd.options.map((o) => o.long).filter((f): f is string => f !== undefined));
    cmd.error(`error: unknown option '${unknown}' for advkit ${name}${near ? ` (did you mean ${near}?)` : ''}`, { code: 'commander.unknownOption', exitCode: 2 });
  }
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every usage error exits 2.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    throw err;
  }
}
