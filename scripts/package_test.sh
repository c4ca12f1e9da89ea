#!/usr/bin/env bash
# advkit as people install it: `npm pack`, the tarball installed into a fresh project with
# production dependencies only (no devDependency can be reached), then the CLI run as a user runs
# it (every command's --help, info, a tiny train, attack and eval) and the README's library
# examples, extracted from README.md itself, type-checked with --strict and run.
# Usage: scripts/package_test.sh [WORKDIR]   (run by .ci/run after npm test)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d -t advkit-pack-XXXXXX)}"
mkdir -p "$work"
cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "package test: $tarball in $work"

app="$work/app"
rm -rf "$app" && mkdir -p "$app" && cd "$app"
# A default `npm init` project: CommonJS by default, so the examples must say how to run ESM.
npm init -y >/dev/null
npm install --omit=dev --no-audit --no-fund --loglevel=error "$work/$tarball" >/dev/null
# Nothing but production dependencies: a dist/src import of a devDependency fails below.
for dev in vitest typescript fast-check ajv wabt tinybench; do
  if [ -d "node_modules/$dev" ]; then echo "package test: devDependency $dev was installed" >&2; exit 1; fi
done

advkit() { ./node_modules/.bin/advkit "$@"; }
start=$(date +%s%N)
advkit --help >/dev/null
echo "package test: cold advkit --help in $(( ($(date +%s%N) - start) / 1000000 )) ms"
for cmd in demo info inspect train attack eval merge defend certify detect bench; do advkit "$cmd" --help >/dev/null; done
advkit info >/dev/null
advkit train --arch mlp --data mnist:train --limit 600 --epochs 1 --out m >/dev/null 2>train.log || { cat train.log >&2; exit 1; }
advkit attack --model m --data mnist:test --limit 16 --attack pgd --eps 8/255 --steps 3 --out cli-adv --format png,npy >/dev/null 2>attack.log || { cat attack.log >&2; exit 1; }
test -f cli-adv/manifest.jsonl && test -f cli-adv/x_adv.npy
advkit eval --model m --data mnist:test --limit 16 --attacks fgsm,pgd --eps 0,0.1 --steps 3 --json >eval.json 2>eval.log || { cat eval.log >&2; exit 1; }
node -e "const r = JSON.parse(require('fs').readFileSync('eval.json', 'utf8')); if (r.report.data.examples !== 16) process.exit(1)"

# The README's library examples, as written there: each ```ts block under "## Library".
node - "$root/README.md" <<'JS'
const fs = require('fs');
const text = fs.readFileSync(process.argv[2], 'utf8');
const section = text.split(/^## /m).find((s) => s.startsWith('Library'));
if (!section) { console.error('package test: README.md has no "## Library" section'); process.exit(1); }
const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
if (blocks.length < 3) { console.error(`package test: README.md's Library section has ${blocks.length} ts examples, expected 3 or more`); process.exit(1); }
fs.mkdirSync('examples', { recursive: true });
blocks.forEach((b, i) => fs.writeFileSync(`examples/example${i + 1}.ts`, b));
console.log(`package test: ${blocks.length} README examples extracted`);
JS
# As the README says: an ESM project ("type": "module"), TypeScript with --strict and --skipLibCheck.
npm pkg set type=module >/dev/null
npm install --no-audit --no-fund --loglevel=error --save-dev typescript@5.9.3 @types/node@20 >/dev/null
./node_modules/.bin/tsc --strict --skipLibCheck --target es2022 --module nodenext --moduleResolution nodenext --outDir build examples/*.ts
for f in build/*.js; do
  echo "package test: running $(basename "$f")"
  node "$f" >"$f.out" 2>"$f.err" || { cat "$f.err" >&2; exit 1; }
done
echo "package test: passed"
