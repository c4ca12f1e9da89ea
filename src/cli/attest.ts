/**
 * `advkit attest REPORT_DIR --key KEY`: signs in-toto statements about a finished report's model
 * files (the gate verdict of --assert on it, and its figures) into REPORT_DIR/attestation.intoto.jsonl;
 * `--bom FILE` writes the CycloneDX ML-BOM too. A shard's report is refused, like its gates.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { checkAssertions, parseAssertion } from '../eval/gate.js';
import { REPORT_SCHEMA_ID, type RobustnessReport } from '../eval/report.js';
import { InvalidArgumentError } from '../util/errors.js';
import { readRegularFile } from '../util/fs.js';
import { action } from './common.js';
import { readSigningKey, writeAttestation } from './eval_run.js';

export function attestCommand(): Command {
  return new Command('attest')
    .argument('<report-dir>', 'a report directory written by advkit eval --out or advkit merge --out')
    .requiredOption('--key <key.pem>', 'Ed25519 or ECDSA P-256 private key in PEM')
    .option('--assert <gate>', 'gate judged on the report; its verdict is attested (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--bom <file>', 'also write a CycloneDX 1.6 ML-BOM referring to the attestation')
    .action(action(async (dir: string, o: { key: string; assert: string[]; bom?: string }) => {
      const assertions = o.assert.map(parseAssertion);
      const key = await readSigningKey(o.key, '--key');
      const file = path.join(dir, 'report.json');
      let report: RobustnessReport;
      try {
        report = JSON.parse((await readRegularFile(file, `Error in attest: ${file}`, 256 * 1024 ** 2)).toString('utf8')) as RobustnessReport;
      } catch (err) {
        if (err instanceof InvalidArgumentError || (err as { exitCode?: number }).exitCode === 2) throw err;
        throw new InvalidArgumentError(`Error in attest: ${file} is not JSON (${(err as Error).message}).`);
      }
      if (report?.schema !== REPORT_SCHEMA_ID) throw new InvalidArgumentError(`Error in attest: ${file} is not an advkit robustness report.`);
      const gates = checkAssertions(report, assertions);
      await writeAttestation(report, gates, { key, bom: o.bom, out: dir });
      await fsp.access(path.join(dir, 'attestation.intoto.jsonl'));
      process.stdout.write(`attested ${Object.keys(report.provenance?.model?.files ?? {}).length} model files of ${report.model.name}: ${gates.every((g) => g.passed) ? 'PASSED' : 'FAILED'} (${gates.length} gates)\n`);
    }));
}
