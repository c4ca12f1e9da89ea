/**
 * `advkit verify --attestation F --model DIR --key PUB [--assert ...]`: the deploy step's check
 * that the model about to ship is the one that passed. Exit 0: signatures good, the attested
 * files are exactly DIR's, the verdict PASSED and every --assert holds on the attested figures;
 * 1: verified, but the verdict or a gate fails; 2: a bad signature, a digest mismatch, a missing
 * or extra file, or malformed input, with one line saying which.
 */
import path from 'node:path';
import { Command } from 'commander';
import { ATTESTATION_FILE, verifyAttestation } from '../eval/attest.js';
import { parseAssertion } from '../eval/gate.js';
import { readRegularFile } from '../util/fs.js';
import { action, log, printJson } from './common.js';

export function verifyCommand(): Command {
  return new Command('verify')
    .requiredOption('--attestation <file>', `the ${ATTESTATION_FILE} advkit eval --attest wrote`)
    .requiredOption('--model <dir>', 'the model directory about to be deployed')
    .requiredOption('--key <pub.pem>', 'the public key (PEM) of the signer')
    .option('--assert <gate>', 'gate re-applied to the attested figures (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--json', 'print the verification as JSON')
    .action(action(async (o: { attestation: string; model: string; key: string; assert: string[]; json?: boolean }) => {
      const assertions = o.assert.map(parseAssertion);
      const key = (await readRegularFile(o.key, `Error in --key: ${o.key}`, 64 * 1024)).toString('utf8');
      const text = (await readRegularFile(o.attestation, `Error in --attestation: ${o.attestation}`, 512 * 1024 ** 2)).toString('utf8');
      // The attestation may sit in the model directory; it is not one of the model's files.
      const inside = path.relative(path.resolve(o.model), path.resolve(o.attestation));
      const v = await verifyAttestation(text, { modelDir: o.model, key, assertions, ignore: inside.startsWith('..') ? [] : [inside.split(path.sep).join('/')] });
      const files = v.statements[0]!.subject.length;
      if (o.json) printJson({ verified: true, verdict: v.verdict, files, model: v.report.model.name, gates: v.gates });
      else {
        process.stdout.write(`verified: ${files} files of ${path.resolve(o.model)} are the attested ${v.report.model.name}; attested verdict ${v.verdict}\n`);
        for (const g of v.gates) process.stdout.write(`${g.passed ? 'PASS' : 'FAIL'} ${g.name}: ${g.message}\n`);
      }
      if (v.verdict !== 'PASSED') {
        log('advkit: the attestation verifies, but the model did not pass its gates');
        process.exitCode = 1;
      }
    }));
}
