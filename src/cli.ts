#!/usr/bin/env node
/** The `advkit` bin: builds the commander program, nothing else. */
import { Command, CommanderError } from 'commander';
import { attackCommand } from './cli/attack.js';
import { benchCommand } from './cli/bench.js';
import { certifyCommand } from './cli/certify.js';
import { defendCommand } from './cli/defend.js';
import { detectCommand } from './cli/detect.js';
import { demoCommand } from './cli/demo.js';
import { evalCommand } from './cli/eval.js';
import { infoCommand } from './cli/info.js';
import { inspectCommand } from './cli/inspect.js';
import { mergeCommand } from './cli/merge.js';
import { trainCommand } from './cli/train.js';
import { ADVKIT_VERSION } from './util/version.js';

export function buildProgram(): Command {
  const program = new Command('advkit')
    .description('adversarial-ML attacks, defenses and robustness evaluation on TensorFlow.js')
    .version(ADVKIT_VERSION)
    .showHelpAfterError('(run with --help for usage)');
  for (const cmd of [demoCommand(), infoCommand(), inspectCommand(), trainCommand(), attackCommand(), evalCommand(), mergeCommand(), defendCommand(), certifyCommand(), detectCommand(), benchCommand()]) program.addCommand(cmd);
  program.commands.forEach((c) => c.showHelpAfterError('(run with --help for usage)'));
  program.exitOverride();
  program.commands.forEach((c) => c.exitOverride());
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every usage error exits 2.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    throw err;
  }
}
