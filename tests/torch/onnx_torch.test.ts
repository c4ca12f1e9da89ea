/**
 * torch.onnx.export run here, with Debian's python3-torch and python3-torchvision (.ci/run
 * installs them; `npx vitest run --config vitest.torch.config.ts` runs this file): torchvision's
 * ResNet-18 and MobileNetV2, and the hand-written family at opset 17, exported now, compared with
 * PyTorch's logits and autograd's input gradients as the committed fixtures are.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { againstTorch, FAMILY } from '../models/onnx_fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exportScript = path.join(root, 'tests/models/onnx/export.py');

function exportTo(args: string[]): string {
  const out = mkdtempSync(path.join(os.tmpdir(), 'advkit-torch-'));
  const r = spawnSync('/usr/bin/python3', [exportScript, out, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch.onnx.export failed (install Debian's python3-torch and python3-torchvision): ${r.stderr.slice(-400)}`);
  return out;
}

describe('PyTorch exports made now', () => {
  it('torchvision resnet18 and mobilenet_v2 (32x32, opset 13): logits within 1e-5 of PyTorch, input gradients within 1e-4 of autograd', async () => {
    const out = exportTo(['--torchvision']);
    for (const name of ['resnet18', 'mobilenet_v2']) {
      const r = await againstTorch(path.join(out, name), 'wasm');
      expect(r.logitsError, name).toBeLessThanOrEqual(1e-5);
      expect(r.gradError, name).toBeLessThanOrEqual(1e-4);
    }
  });

  it('the hand-written family at opset 17 imports as at opset 13', async () => {
    const out = exportTo(['--opset', '17']);
    for (const name of FAMILY) {
      const r = await againstTorch(path.join(out, name), 'wasm');
      expect(r.logitsError, name).toBeLessThanOrEqual(1e-5);
      expect(r.gradError, name).toBeLessThanOrEqual(1e-4);
    }
  });
});
