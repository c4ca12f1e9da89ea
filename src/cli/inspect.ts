/** `advkit inspect --model DIR`: what advkit's compiler made of a model (which nodes compiled, which run through tfjs). */
import { Command } from 'commander';
import { compileModel } from '../models/compiler/index.js';
import { loadClassifier } from '../models/io.js';
import { action, printJson, startBackend, withCommonOptions } from './common.js';

export function inspectCommand(): Command {
  return withCommonOptions(new Command('inspect').description('show how a model compiles: fused layers, folded batch norms, the logits used, and any node that runs through tfjs'))
    .requiredOption('--model <dir>', 'model directory (LayersModel or GraphModel model.json)')
    .action(action(async (o: { model: string; backend?: string; json?: boolean }) => {
      await startBackend(o.backend);
      const { classifier, model } = await loadClassifier(o.model);
      const report = compileModel(model).report;
      const summary = { ...report, numClasses: classifier.numClasses, inputShape: [...classifier.inputShape], output: classifier.output, warnings: [...classifier.warnings] };
      if (o.json) return printJson(summary);
      const compiled = report.nodes.length - report.fallbacks;
      const width = Math.min(40, Math.max(4, ...report.nodes.map((n) => n.name.length)));
      const lines = [
        `${o.model}: ${report.format}, ${compiled} of ${report.nodes.length} nodes compiled${report.fallbacks ? `, ${report.fallbacks} run through tfjs` : ''}`,
        `logits: ${classifier.output?.detail ?? 'the model output'} (${classifier.numClasses} classes, input ${classifier.inputShape.join('x')})`,
        '',
        ...report.nodes.map((n) => `${n.compiled ? ' ' : '!'} ${n.name.padEnd(width)}  ${n.source.padEnd(26)} ${n.compiled ? `${n.op}${n.fused ? ` (${n.fused})` : ''}` : `tfjs: ${n.reason}`}`),
        ...(report.merged.length ? ['', 'merged:', ...report.merged.map((m) => `  ${m}`)] : []),
        ...report.notes.map((n) => `note: ${n}`),
        ...classifier.warnings.map((w) => `warning: ${w}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }));
}
