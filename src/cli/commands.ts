/**
 * The `advkit` commands: one table, each command loaded only when it runs, so `advkit --help`
 * lists them without loading TensorFlow.js and `advkit attack ...` imports the attack command
 * alone. docs/cli.md is generated from it (scripts/cli_docs.mjs).
 */
import { Command } from 'commander';
import { ADVKIT_VERSION } from '../util/version.js';

interface CommandEntry { description: string; load: () => Promise<Command> }

/** Every command, in the order `advkit --help` lists them. */
export const COMMANDS: Record<string, CommandEntry> = {
  demo: { description: 'train (or reuse) mnist-cnn, evaluate APGD-CE, APGD-T and FAB-T over an eps sweep, print the table and write the HTML report', load: async () => (await import('./demo.js')).demoCommand() },
  info: { description: 'show the backend in use, versions, SIMD/thread support and available backends', load: async () => (await import('./info.js')).infoCommand() },
  inspect: { description: 'show how a model compiles: inputs and heads, fused layers, folded batch norms, the logits used, and any node that runs through tfjs', load: async () => (await import('./inspect.js')).inspectCommand() },
  train: { description: 'train a model (natural or adversarial training) and save it', load: async () => (await import('./train.js')).trainCommand() },
  attack: { description: 'attack a model on a data set and write an adversarial example set (PNG/NPY + manifest)', load: async () => (await import('./attack.js')).attackCommand() },
  eval: { description: 'evaluate robustness: attacks x epsilons, worst case, sanity checks, reports and CI gates', load: async () => (await import('./eval.js')).evalCommand() },
  merge: { description: 'join the shards of an attack or eval run (--shard i/N) into what one run writes', load: async () => (await import('./merge.js')).mergeCommand() },
  defend: { description: 'apply a preprocessing defense to an image folder or an advkit example set', load: async () => (await import('./defend.js')).defendCommand() },
  certify: { description: 'certify L2 robustness by randomized smoothing (Cohen et al. 2019)', load: async () => (await import('./certify.js')).certifyCommand() },
  detect: { description: 'feature-squeezing detector: calibrate on clean data, report the detection rate on adversarial examples', load: async () => (await import('./detect.js')).detectCommand() },
  attest: { description: 'sign in-toto statements (DSSE) of a report\'s verdict and figures about the model files; optionally a CycloneDX ML-BOM', load: async () => (await import('./attest.js')).attestCommand() },
  verify: { description: 'check an attestation before deploying: signature, the model files\' digests, the verdict and gates', load: async () => (await import('./verify.js')).verifyCommand() },
  unlock: { description: 'break the lock a run on another host (or a killed one) left in an output directory, so it can resume', load: async () => (await import('./unlock.js')).unlockCommand() },
  bench: { description: 'benchmark the gradient loops (PGD, FGSM, training steps, evaluation) against the plain loop, in one run', load: async () => (await import('./bench.js')).benchCommand() },
};

const HELP_AFTER_ERROR = '(run with --help for usage)';

/**
 * The program with `name` loaded in full (its options and action; every command for `'*'`) and
 * every other command as a name and a description.
 */
export async function buildProgram(name?: string): Promise<Command> {
  const program = new Command('advkit')
    .description('adversarial-ML attacks, defenses and robustness evaluation on TensorFlow.js')
    .version(ADVKIT_VERSION)
    .showHelpAfterError(HELP_AFTER_ERROR)
    .exitOverride();
  for (const [n, entry] of Object.entries(COMMANDS)) {
    const cmd = n === name || name === '*' ? await entry.load() : new Command(n);
    program.addCommand(cmd.description(entry.description).showHelpAfterError(HELP_AFTER_ERROR).exitOverride());
  }
  return program;
}


/** docs/cli.md: every command's full help, at a fixed width, from the commands themselves. */
export async function cliReference(): Promise<string> {
  const program = await buildProgram('*');
  const help = (c: Command) => c.configureHelp({ helpWidth: 100 }).helpInformation().trimEnd();
  return [
    '# advkit CLI reference',
    '',
    'Every command and flag, generated from the commands themselves (`node scripts/cli_docs.mjs` after `npm run build`; a test fails when this file is stale). Results go to stdout (`--json` for machines), logs and progress to stderr; exit codes: 0 success, 1 a failed run or gate, 2 bad usage or input.',
    '',
    '```text',
    help(program),
    '```',
    ...program.commands.flatMap((c) => ['', `## advkit ${c.name()}`, '', '```text', help(c), '```']),
    '',
  ].join('\n');
}
