/**
 * `advkit inspect --model DIR`: what advkit's compiler made of a model (which nodes compiled,
 * which run through tfjs), its inputs and heads (signature keys beside the tensors they name),
 * the head attacked and the preprocessing applied.
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { compileGraph, compileModel, graphEndpoints, graphHeads, layersHeads, type Head } from '../models/compiler/index.js';
import { lowerOnnx, type OnnxModel } from '../models/compiler/onnx.js';
import { describePreprocessing } from '../models/classifier.js';
import { action, printJson, startBackend, withCommonOptions } from './common.js';
import { loadModel, withModelOptions, type ModelCliOptions } from './model_options.js';

export function inspectCommand(): Command {
  return withModelOptions(withCommonOptions(new Command('inspect'))
    .requiredOption('--model <dir>', 'model directory (LayersModel or GraphModel model.json) or ONNX file (model.onnx)'))
    .action(action(async (o: ModelCliOptions & { backend?: string; json?: boolean }) => {
      const status = await startBackend(o.backend);
      const { classifier, model } = await loadModel(o);
      const tfjs = model instanceof tf.GraphModel || model instanceof tf.LayersModel;
      const onnxGraph = tfjs ? undefined : (model as OnnxModel).graph;
      const heads: Head[] = model instanceof tf.GraphModel ? graphHeads(model) : model instanceof tf.LayersModel ? layersHeads(model)
        : (onnxGraph?.output ?? []).map((v) => ({ name: v.name, ref: v.name, aliases: [v.name], shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue ? Number(d.dimValue) : -1)) }));
      const chosen = heads.find((h) => h.name === classifier.output?.head) ?? heads[0]!;
      const report = tfjs
        ? compileModel(model as tf.LayersModel | tf.GraphModel, heads.length > 1 || o.head !== undefined ? { head: chosen.ref } : {}).report
        : compileGraph(lowerOnnx(model as OnnxModel, { head: String(chosen.ref), inputShape: classifier.inputShape }).graph, 'onnx').report;
      const inputs = model instanceof tf.GraphModel
        ? graphEndpoints(model).inputs.map((e) => ({ name: e.key, tensor: `${e.node}:${e.slot}`, shape: e.shape }))
        : model instanceof tf.LayersModel ? model.inputs.map((t) => ({ name: t.sourceLayer.name, tensor: t.name, shape: t.shape.map((d) => d ?? -1) }))
          : [{ name: (onnxGraph?.input ?? []).find((i) => !(onnxGraph?.initializer ?? []).some((t) => t.name === i.name))?.name ?? 'input', tensor: undefined, shape: [-1, classifier.inputShape[2], classifier.inputShape[0], classifier.inputShape[1]] }];
      // On the onnxruntime backend: does the model run there (one probe image), or why not.
      let native: { runs: boolean; reason?: string } | null = null;
      if (status.name === 'onnxruntime' && classifier.native) {
        const probe = tf.zeros([1, ...classifier.inputShape]) as tf.Tensor4D;
        const z = await classifier.native.logits(probe);
        native = z ? { runs: true } : { runs: false, reason: classifier.native.unavailable };
        tf.dispose([probe, ...(z ? [z] : [])]);
      }
      const summary = {
        onnxruntime: native,
        ...report, inputs, heads: heads.map((h) => ({ name: h.name, tensor: typeof h.ref === 'string' ? h.ref : undefined, shape: h.shape, attacked: h === chosen })),
        numClasses: classifier.numClasses, inputShape: [...classifier.inputShape], bounds: [...classifier.bounds], output: classifier.output,
        preprocessing: classifier.preprocessing ?? null, warnings: [...classifier.warnings],
      };
      if (o.json) return printJson(summary);
      const compiled = report.nodes.length - report.fallbacks;
      const width = Math.min(40, Math.max(4, ...report.nodes.map((n) => n.name.length)));
      const shape = (s: number[] | undefined) => (s ? ` [${s.join(',')}]` : '');
      const named = (name: string, tensor: string | undefined) => (tensor && tensor !== name && tensor !== `${name}:0` ? `${name} (tensor ${tensor})` : name);
      const lines = [
        `${o.model}: ${report.format}, ${compiled} of ${report.nodes.length} nodes compiled${report.fallbacks ? `, ${report.fallbacks} run through tfjs` : ''}`,
        `inputs: ${inputs.map((i) => `${named(i.name, i.tensor)}${shape(i.shape)}`).join(', ')}`,
        `heads: ${summary.heads.map((h) => `${heads.length > 1 && h.attacked ? '*' : ''}${named(h.name, h.tensor)}${shape(h.shape)}`).join(', ')}${heads.length > 1 ? ' (* attacked; choose with --head)' : ''}`,
        `logits: ${classifier.output?.detail ?? 'the model output'} (${classifier.numClasses} classes, input ${classifier.inputShape.join('x')})`,
        `preprocessing: ${classifier.preprocessing ? describePreprocessing(classifier.bounds, classifier.preprocessing) : `none (pixels in [${classifier.bounds.join(', ')}] go to the model as they are)`}`,
        ...(native ? [`onnxruntime: ${native.runs ? 'runs the forward and the attack gradients natively' : `runs on wasm: ${native.reason}`}`] : []),
        '',
        ...report.nodes.map((n) => `${n.compiled ? ' ' : '!'} ${n.name.padEnd(width)}  ${n.source.padEnd(26)} ${n.compiled ? `${n.op}${n.fused ? ` (${n.fused})` : ''}` : `tfjs: ${n.reason}`}`),
        ...(report.merged.length ? ['', 'merged:', ...report.merged.map((m) => `  ${m}`)] : []),
        ...report.notes.map((n) => `note: ${n}`),
        ...classifier.warnings.map((w) => `warning: ${w}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }));
}
