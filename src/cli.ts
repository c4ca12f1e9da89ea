#!/usr/bin/env node
/**
 * The `advkit` bin: one table of commands, each loaded only when it runs. `advkit --help` lists
 * them without loading TensorFlow.js; `advkit attack ...` imports the attack command alone. An
 * option the command does not have is reported as unknown (with a suggestion) before anything
 * else is checked.
 */
import { Command, CommanderError } from 'commander';
import { ADVKIT_VERSION } from './util/version.js';

interface CommandEntry { description: string; load: () => Promise<Command> }

/** Every command, in the order `advkit --help` lists them. */
export const COMMANDS: Record<string, CommandEntry> = {
  demo: { description: 'train (or reuse) mnist-cnn, evaluate APGD-CE, APGD-T and FAB-T over an eps sweep, print the table and write the HTML report', load: async () => (await import('./cli/demo.js')).demoCommand() },
  info: { description: 'show the backend in use, versions, SIMD/thread support and available backends', load: async () => (await import('./cli/info.js')).infoCommand() },
  inspect: { description: 'show how a model compiles: inputs and heads, fused layers, folded batch norms, the logits used, and any node that runs through tfjs', load: async () => (await import('./cli/inspect.js')).inspectCommand() },
  train: { description: 'train a model (natural or adversarial training) and save it', load: async () => (await import('./cli/train.js')).trainCommand() },
  attack: { description: 'attack a model on a data set and write an adversarial example set (PNG/NPY + manifest)', load: async () => (await import('./cli/attack.js')).attackCommand() },
  eval: { description: 'evaluate robustness: attacks x epsilons, worst case, sanity checks, reports and CI gates', load: async () => (await import('./cli/eval.js')).evalCommand() },
  merge: { description: 'join the shards of an attack or eval run (--shard i/N) into what one run writes', load: async () => (await import('./cli/merge.js')).mergeCommand() },
  defend: { description: 'apply a preprocessing defense to an image folder or an advkit example set', load: async () => (await import('./cli/defend.js')).defendCommand() },
  certify: { description: 'certify L2 robustness by randomized smoothing (Cohen et al. 2019)', load: async () => (await import('./cli/certify.js')).certifyCommand() },
  detect: { description: 'feature-squeezing detector: calibrate on clean data, report the detection rate on adversarial examples', load: async () => (await import('./cli/detect.js')).detectCommand() },
  bench: { description: 'benchmark the gradient loops (PGD, FGSM, training steps, evaluation) against the plain loop, in one run', load: async () => (await import('./cli/bench.js')).benchCommand() },
};

const HELP_AFTER_ERROR = '(run with --help for usage)';

/** The program with `name` loaded in full (its options and action) and every other command as a name and a description. */
export async function buildProgram(name?: string): Promise<Command> {
  const program = new Command('advkit')
    .description('adversarial-ML attacks, defenses and robustness evaluation on TensorFlow.js')
    .version(ADVKIT_VERSION)
    .showHelpAfterError(HELP_AFTER_ERROR)
    .exitOverride();
  for (const [n, entry] of Object.entries(COMMANDS)) {
    const cmd = n === name ? await entry.load() : new Command(n);
    program.addCommand(cmd.description(entry.description).showHelpAfterError(HELP_AFTER_ERROR).exitOverride());
  }
  return program;
}

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

/** The option a mistyped one most likely meant by prefix (`--epsilon` → `--eps`, `--limits` → `--limit`), if any. */
function prefixMatch(flag: string, known: string[]): string | undefined {
  const f = flag.slice(2);
  const common = (k: string) => { let i = 0; while (i < f.length && i < k.length && f[i] === k[i]) i++; return i; };
  const scored = known.map((k) => ({ k, n: common(k.slice(2)) })).filter(({ k, n }) => n >= 3 && (n === k.length - 2 || n === f.length));
  return scored.sort((a, b) => b.n - a.n)[0]?.k;
}

try {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('-'));
  const program = await buildProgram(name !== undefined && name in COMMANDS ? name : undefined);
  const cmd = name !== undefined ? program.commands.find((c) => c.name() === name) : undefined;
  const unknown = cmd ? unknownLongOption(cmd, args.slice(args.indexOf(name!) + 1)) : undefined;
  // Commander checks required options first: `--epsilon 0.1` would read "required option --eps".
  if (cmd && unknown) {
    const near = prefixMatch(unknown, cmd.options.map((o) => o.long).filter((f): f is string => f !== undefined));
    if (near) cmd.error(`error: unknown option '${unknown}'\n(Did you mean ${near}?)`, { code: 'commander.unknownOption', exitCode: 2 });
    (cmd as unknown as { unknownOption(flag: string): never }).unknownOption(unknown);
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
