/**
 * The layers of src/ (docs/architecture.md): a file imports only from its
 * own layer or those below, and a probe group never from another group.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '..', '..', '..', 'src');

/** Lowest first; a file belongs to the layer of its longest matching prefix. */
const LAYERS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['util', ['util/', 'config/schema.ts', 'config/input-file.ts']],
  ['semconv', ['semconv/']],
  ['bpf', ['bpf/']],
  ['k8s', ['k8s/']],
  ['tables', ['tables/']],
  ['events', ['events/']],
  ['group contract', ['probes/shared/', 'probes/types.ts', 'probes/config.ts', 'probes/declaration.ts', 'probes/scope.ts']],
  ['group', ['probes/']],
  ['registry', ['probes/registry.ts']],
  ['config', ['config/']],
  ['exporters', ['exporters/']],
  ['testbed', ['testbed/']],
  ['commands', ['agent/', 'doctor/', 'cli/']],
];

function layerOf(rel: string): number {
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach(([, prefixes], i) => {
    for (const p of prefixes) {
      if (rel.startsWith(p) && p.length > bestLength) {
        best = i;
        bestLength = p.length;
      }
    }
  });
  return best;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

function resolveImport(from: string, specifier: string): string {
  const target = path.resolve(path.dirname(from), specifier);
  const file = fs.existsSync(`${target}.ts`) ? `${target}.ts` : path.join(target, 'index.ts');
  return path.relative(SRC, file).split(path.sep).join('/');
}

describe('layers of src/', () => {
  it('every file is in a layer', () => {
    const orphans = sourceFiles(SRC)
      .map((f) => path.relative(SRC, f).split(path.sep).join('/'))
      .filter((rel) => layerOf(rel) < 0);
    assert.deepEqual(orphans, []);
  });

  it('no import runs up a layer, and no probe group imports another', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      const layer = layerOf(rel);
      const text = fs.readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:from|require\()\s*'(\.[^']+)'/g)) {
        const target = resolveImport(file, match[1]);
        const targetLayer = layerOf(target);
        const otherGroup = LAYERS[layer][0] === 'group' && LAYERS[targetLayer]?.[0] === 'group' && rel.split('/')[1] !== target.split('/')[1];
        if (targetLayer > layer || otherGroup) violations.push(`${rel} (${LAYERS[layer][0]}) imports ${target} (${LAYERS[targetLayer]?.[0] ?? 'no layer'})`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
