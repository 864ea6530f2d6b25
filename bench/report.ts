/**
 * What every benchmark shares: the machine it ran on, summary statistics, and
 * docs/performance.md, where each benchmark owns one "## " section and
 * rewrites only the generated block inside it (notes written by hand around
 * that block, and every other section, are kept).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository root (where package.json names flowtel), from dist/bench or bench. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'flowtel') return dir;
      } catch {
        // keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export interface Environment {
  date: string;
  kernel: string;
  cpu: string;
  cpus: number;
  memoryGiB: number;
  node: string;
  commit: string;
  packages: Record<string, string>;
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function cpuModel(): string {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(info) ?? /^(?:Hardware|cpu model|Processor)\s*:\s*(.+)$/im.exec(info);
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function packageVersion(root: string, name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

export function environment(packages: string[]): Environment {
  const root = repoRoot();
  const commit = run('git', ['-C', root, 'rev-parse', '--short', 'HEAD']) ?? 'unknown';
  // What is measured is the working tree: say when the code under src/ is not what the commit holds.
  const dirty = run('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json']);
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    kernel: run('uname', ['-r']) ?? os.release(),
    cpu: cpuModel(),
    cpus: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    commit: dirty ? `${commit}, with uncommitted changes under src/ or to package*.json` : commit,
    packages: Object.fromEntries(packages.map((p) => [p, packageVersion(root, p)])),
  };
}

export function environmentMarkdown(env: Environment): string {
  const pkgs = Object.entries(env.packages)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    `- Date: ${env.date}`,
    `- Kernel: ${env.kernel}`,
    `- CPU: ${env.cpu} (${env.cpus} CPUs), ${env.memoryGiB} GiB RAM`,
    `- Node: ${env.node}`,
    `- Packages: ${pkgs}`,
    `- Commit: ${env.commit}`,
  ].join('\n');
}

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/**
 * A distribution-free confidence interval for the median (at least `level`):
 * the k-th smallest and k-th largest of n values, with k the largest for which
 * a Binomial(n, 1/2) falls below k with probability at most (1 − level) / 2.
 * Undefined when n is too small for any interval at that level (n < 6 for 95%).
 */
export function medianInterval(values: number[], level = 0.95): { low: number; high: number } | undefined {
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  // P(X <= j) for X ~ Binomial(n, 1/2), accumulated j = 0, 1, ...
  let cumulative = 0;
  let coefficient = 1; // C(n, j)
  let k = 0;
  for (let j = 0; j < n; j++) {
    cumulative += coefficient / 2 ** n;
    if (cumulative > tail) break;
    k = j + 1; // P(X <= k - 1) <= tail: the k-th order statistic bounds the median
    coefficient = (coefficient * (n - j)) / (j + 1);
  }
  if (k === 0) return undefined;
  return { low: sorted[k - 1], high: sorted[n - k] };
}

export const MiB = 1024 * 1024;

/** A plain-text table (for the terminal) or a Markdown one. */
export function table(header: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
    return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const FILE_HEADER = `# Performance

Measurements of the agent's own cost. Each \`## \` section below belongs to one
benchmark under \`bench/\`; rerunning a benchmark rewrites only the block between
its \`<!-- bench:NAME:begin -->\` and \`<!-- bench:NAME:end -->\` markers, so notes
written around that block, and the other sections, are kept.

The benchmarks run from the compiled tree: build it first with
\`npx tsc -p tsconfig.json\` (or \`npm run build:ts\`), then
\`npm run bench\` (all benchmarks) or \`npm run bench -- NAME\` (one).
`;

/** Lines of `text` split into sections: everything before the first "## " heading, then one entry per heading. */
function splitSections(text: string): { preamble: string[]; sections: Array<{ heading: string; lines: string[] }> } {
  const preamble: string[] = [];
  const sections: Array<{ heading: string; lines: string[] }> = [];
  let fence = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (!fence && /^## /.test(line)) {
      sections.push({ heading: line.trim(), lines: [line] });
      continue;
    }
    (sections.length ? sections[sections.length - 1].lines : preamble).push(line);
  }
  return { preamble, sections };
}

/**
 * Writes `generated` into `file` under the heading `## <title>`, between the markers of `name`:
 * replaces the old block if the section has one, else the section's whole body; appends the
 * section if there is none; creates the file (with the shared header) if missing.
 */
export function updateSection(file: string, title: string, name: string, generated: string): void {
  const heading = `## ${title}`;
  const begin = `<!-- bench:${name}:begin -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = [begin, generated.trim(), end];
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : FILE_HEADER;
  const { preamble, sections } = splitSections(text.replace(/\n+$/, ''));
  const section = sections.find((s) => s.heading === heading);
  if (!section) {
    sections.push({ heading, lines: [heading, '', ...block, ''] });
  } else {
    const b = section.lines.indexOf(begin);
    const e = section.lines.indexOf(end);
    if (b >= 0 && e > b) section.lines.splice(b, e - b + 1, ...block);
    else section.lines = [heading, '', ...block, ''];
  }
  const trimmed = (lines: string[]) => {
    const out = [...lines];
    while (out.length && out[out.length - 1].trim() === '') out.pop();
    return out;
  };
  const parts = [trimmed(preamble).join('\n'), ...sections.map((s) => trimmed(s.lines).join('\n'))].filter((p) => p.length);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${parts.join('\n\n')}\n`);
}

/**
 * Prints a benchmark's report and, unless `--no-doc`, writes it into docs/performance.md under its section:
 * the environment header, how to rerun it, then the report as markdown.
 */
export function publishReport(args: string[], section: { title: string; name: string; rerun: string }, report: (markdown: boolean) => string): void {
  process.stdout.write(`\n${report(false)}\n`);
  if (args.includes('--no-doc')) return;
  const env = environmentMarkdown(environment(['@opentelemetry/sdk-metrics']));
  updateSection(path.join(repoRoot(), 'docs', 'performance.md'), section.title, section.name, `${env}\n\nRerun: ${section.rerun}\n\n${report(true)}`);
  process.stdout.write(`wrote docs/performance.md (section "${section.title}")\n`);
}
