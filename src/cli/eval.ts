/**
 * `advkit eval`: evaluates a model's robustness (attacks x epsilons, cascade worst case, sanity
 * checks), prints a table (or --json), writes report files with --out, and gates CI with
 * --assert, --baseline/--max-drop and --junit. Exit codes: 0 all gates pass, 1 a gate
 * failed, 2 bad usage or input.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ATTACK_NAMES } from '../attacks/registry.js';
import { datasetDigest, parseDataSpec } from '../data/index.js';
import { evaluateRobustness, resolveAttacks, validateEvaluateOptions, type EvaluateOptions, type EvaluationCheckpoint } from '../eval/evaluate.js';
import { PRESET_NAMES } from '../eval/presets.js';
import { checkAssertionsFit, checkBaselineFits, parseAssertion } from '../eval/gate.js';
import { InvalidArgumentError } from '../util/errors.js';
import { checkWritableFile, jsonCheckpoint, lockDirectory } from '../util/fs.js';
import { progressBar } from '../util/progress.js';
import { resolveShard, shardName, shardRange } from '../util/shard.js';
import { action, checkedModelDigest, countingForwardPasses, floatOption, intOption, log, startBackend, startPool, withCommonOptions, withShardOptions, withWorkersOption } from './common.js';
import { withAttackFlags } from './attack_options.js';
import { withDefenseOptions } from './defense_spec.js';
import { parseAttacks, parseEpsilons, readConfig, withFlags, type EvalCliOptions } from './eval_options.js';
import { checkReportOut, loadEvalSource, presentEvaluation, readBaseline, readSigningKey, type EvalSource } from './eval_run.js';
import { checkEpsRange, configuredModelOptions, withModelOptions, withResizeOption } from './model_options.js';
import { NORM_NAMES } from '../util/norms.js';

export function evalCommand(): Command {
  return withDefenseOptions(withAttackFlags(withResizeOption(withModelOptions(withShardOptions(withWorkersOption(withCommonOptions(new Command('eval'))
    .option('--model <dir>', 'model: a TensorFlow.js model directory (model.json + weights) or an ONNX file (model.onnx)')
    .option('--data <spec>', 'data spec (default split: test)')
    .option('--attacks <list>', `comma list of ${ATTACK_NAMES.join(', ')}, run in this order (instead of --preset)`)
    .addOption(new Option('--preset <name>', 'fixed ensemble: standard (AutoAttack: apgd-ce, apgd-t, fab-t, square-5000; the default), rand (randomized models), fast (CI), minimum-norm (fmn, cw, deepfool, fab-t, ead as the norm takes: the distance curve)').choices([...PRESET_NAMES]))
    .option('--eps <list>', 'comma list of epsilons in pixel units, numbers or fractions: 0,0.1,0.2,0.3 or 0,4/255,8/255')
    .option('--allow-large-eps', "allow an eps larger than any perturbation inside the model's bounds (a unit mistake otherwise)")
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORM_NAMES]))
    .option('--seed <n>', 'seed', intOption(0, 2 ** 31 - 1))
    .option('--limit <n>', 'evaluate the first n examples', intOption(1))
    .option('--batch-size <n>', 'batch size', intOption(1, 65_536))
    .option('--no-cascade', 'run every attack on every clean-correct point (slower; exact per-attack figures)')
    .option('--no-checks', 'skip the sanity checks')
    .option('--checks-limit <n>', 'examples the sanity checks use', intOption(1))
    .option('--out <dir>', 'write report.json, report.md, report.html and examples.png here')
    .option('--assert <gate>', 'gate, e.g. "pgd@0.3>=0.85", "worst@0.3>=80%", "clean>=0.98" (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--baseline <report.json>', 'fail when an accuracy drops more than --max-drop below this report')
    .option('--max-drop <f>', 'allowed drop against the baseline', floatOption(0, { max: 1 }), 0.02)
    .option('--junit <file>', 'write the gate results as JUnit XML')
    .option('--attest <key.pem>', 'sign in-toto statements of the verdict and the figures about the model files (Ed25519 or ECDSA P-256 private key); written as attestation.intoto.jsonl in --out')
    .option('--bom <file>', 'write a CycloneDX 1.6 ML-BOM of the model (hashes, robust accuracies), the data and advkit')
    .option('--config <file>', 'robustness.json with any of the options above (flags win)')
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files'))))), { targeted: false }))
    .addHelpText('after', '\nThe attack flags (--steps, --step-size, ...) apply to the attacks that read them; on a preset they make a partial evaluation.')
    .action(action(async (flags: EvalCliOptions, cmd: Command) => {
      // Flags given on the command line win over the config file.
      const fromConfig = flags.config ? await readConfig(flags.config) : {};
      const o = { ...flags } as EvalCliOptions;
      for (const [k, v] of Object.entries(fromConfig)) {
        const src = cmd.getOptionValueSource(k);
        if (src === undefined || src === 'default') (o as unknown as Record<string, unknown>)[k] = v;
      }
      configuredModelOptions(o, fromConfig);
      if (!o.model) throw new InvalidArgumentError('Error in --model: required (give --model DIR or "model" in --config).');
      if (!o.data) throw new InvalidArgumentError('Error in --data: required (give --data SPEC or "data" in --config).');
      if (!o.eps) throw new InvalidArgumentError('Error in --eps: required (give --eps 0,0.1,0.2,0.3 or "eps" in --config).');
      parseDataSpec(o.data);
      const assertions = (o.assert ?? []).map(parseAssertion);
      const epsilons = parseEpsilons(o.eps);
      if (o.attacks !== undefined && o.preset !== undefined) throw new InvalidArgumentError(`Error in --preset: give --preset ${o.preset} or --attacks ${o.attacks}, not both.`);
      if (o.preset !== undefined && !(PRESET_NAMES as readonly string[]).includes(o.preset)) throw new InvalidArgumentError(`Error in --preset: unknown preset ${JSON.stringify(o.preset)}; use one of ${PRESET_NAMES.join(', ')}.`);
      const resolved = resolveAttacks({ attacks: o.attacks !== undefined ? parseAttacks(o.attacks) : undefined, preset: o.preset, norm: o.norm });
      const attacks = withFlags(resolved.attacks, o);
      const changed = resolved.preset !== undefined && JSON.stringify(attacks) !== JSON.stringify(resolved.attacks);
      // An untouched preset is named as such; flags that change its attacks make it a list.
      const choice = resolved.preset !== undefined && !changed ? { preset: resolved.preset } : { attacks };
      if (changed) log(`advkit: the attack flags change the ${resolved.preset} preset; the report will call it a partial evaluation`);
      const evalOptions: EvaluateOptions = { ...choice, epsilons, norm: o.norm ?? 'linf', seed: o.seed, batchSize: o.batchSize, cascade: o.cascade, checks: o.checks, checksLimit: o.checksLimit, squareQueries: o.squareQueries, keepExamples: o.out ? 8 : 0, modelName: path.basename(path.resolve(o.model)) };
      validateEvaluateOptions('advkit eval', evalOptions);
      checkAssertionsFit(assertions, { attacks: attacks.map((a) => a.name), epsilons });
      const baseline = o.baseline ? await readBaseline(o.baseline) : undefined;
      if (baseline) checkBaselineFits(baseline, { norm: o.norm ?? 'linf', epsilons }, o.baseline);
      const shard = resolveShard(o.shard, o.shardCount);
      if (shard && !o.out) throw new InvalidArgumentError(`Error in --shard: a shard's report is for advkit merge; give --out DIR to write it.`);
      if (shard && (assertions.length || o.baseline || o.junit || o.attest || o.bom)) throw new InvalidArgumentError('Error in --shard: gates (--assert, --baseline, --junit), attestations (--attest) and BOMs (--bom) judge the whole set; give them to advkit merge instead.');
      if (o.attest && !o.out) throw new InvalidArgumentError('Error in --attest: give --out DIR; the attestation is written beside the report.');
      const attestKey = o.attest ? await readSigningKey(o.attest) : undefined;
      if (o.bom) await checkWritableFile(o.bom, '--bom');
      const status = await startBackend(o.backend);
      const source: EvalSource = { model: path.resolve(o.model), data: o.data, limit: o.limit ?? null, dataDir: o.dataDir ?? null, defense: o.defense ?? null, defenseGradient: o.defenseGradient ?? null, eot: o.eot ?? null, seed: o.seed ?? 0, head: o.head ?? null, normalize: o.normalize ?? null, inputRange: o.inputRange ?? null, resize: o.resize ?? null };
      const digest = await checkedModelDigest(o.model, o.expectModelSha256);
      const { classifier, data } = await loadEvalSource(source);
      checkEpsRange(epsilons, o.norm ?? 'linf', classifier, o.allowLargeEps);
      if (baseline) checkBaselineFits(baseline, { norm: o.norm ?? 'linf', epsilons, dataSha256: datasetDigest(data) }, o.baseline);
      if (shard) {
        const { start, end } = shardRange(data.labels.length, shard);
        log(`advkit: shard ${shardName(shard)}: examples ${start}..${end - 1} of ${data.labels.length}; the sanity checks run at the merge`);
      }
      // One writer per output directory, found writable before any computation, and only advkit's own.
      if (o.out) await checkReportOut(path.resolve(o.out));
      if (o.junit) await checkWritableFile(o.junit, '--junit');
      const release = o.out ? await lockDirectory(path.resolve(o.out), '--out') : undefined;
      // With --out, progress is saved after each attack at each eps: a killed run resumes.
      const runKey = JSON.stringify({ evalOptions, shard, model: digest.sha256, data: datasetDigest(data), source: { ...source, model: undefined } });
      const checkpoint = o.out ? jsonCheckpoint<EvaluationCheckpoint>(path.join(path.resolve(o.out), '.state', 'eval.json'), runKey) : undefined;
      try {
        const resumed = await checkpoint?.load();
        if (resumed) log(`advkit: resuming the evaluation after ${resumed.steps} of ${epsilons.length * attacks.length} steps`);
        // The bar counts attack x eps steps; within one, the model's forward passes (in this thread,
        // or reported by the workers) tick, so a slow model shows it is working.
        const bar = progressBar('eval [{bar}] {value}/{total} {step} | {passes} forward passes | ETA {eta_formatted}');
        let progress = { done: 0, step: '', passes: 0 };
        const tick = (n: number) => { progress = { ...progress, passes: progress.passes + n }; bar.update(progress.done, { step: progress.step, passes: progress.passes }); };
        bar.start(epsilons.length * attacks.length, { step: '', passes: 0 });
        // The workers build the classifier itself, defense included.
        const pool = await startPool(classifier, o.workers, data.labels.length, o.batchSize ?? 128, status.name);
        const counted = countingForwardPasses(classifier, pool, tick);
        let evaluation;
        try {
          evaluation = await evaluateRobustness(counted, data, { ...evalOptions, pool, shard, modelDigest: digest, shardSource: shard ? { ...source } : undefined, checkpoint, onProgress: (msg, done) => { progress = { ...progress, done, step: msg }; bar.update(done, { step: msg, passes: progress.passes }); } });
        } finally {
          bar.stop();
          await pool?.close();
        }
        await presentEvaluation(evaluation, data, { ...o, assertions, baseline, backend: status.name, attestKey });
        if (o.out) await fsp.rm(path.join(path.resolve(o.out), '.state'), { recursive: true, force: true });
      } finally {
        await release?.();
      }
    }));
}
