/**
 * Writes the first N examples of an advkit data spec as NPY (x float32 [N, H, W, C] in [0, 1],
 * y int32 [N]), so reference implementations in Python attack exactly the points advkit does.
 * usage: npx vite-node bench/export_points.ts -- SPEC N OUT_X OUT_Y   (e.g. mnist:test 500 x.npy y.npy)
 */
import { loadDataset, take } from '../src/data/index.js';
import { writeNpy } from '../src/data/npy.js';

const [spec = 'mnist:test', count = '500', outX = 'x.npy', outY = 'y.npy'] = process.argv.slice(2).filter((a) => a !== '--');
const data = take(await loadDataset(spec, { split: 'test' }), Number(count));
await writeNpy(outX, data.images, [data.labels.length, ...data.shape]);
await writeNpy(outY, Int32Array.from(data.labels), [data.labels.length]);
process.stderr.write(`wrote ${data.labels.length} examples of ${data.name} to ${outX}, ${outY}\n`);
