/**
 * Runs the named benchmarks, or all of them: `npm run bench -- k8s [options]`.
 * The benchmarks run the compiled tree: `npx tsc -p tsconfig.json` first.
 * Results go to stdout and to docs/performance.md (one section per benchmark).
 */
import { runCapacityBenchmark } from './capacity';
import { runDatapathBenchmark } from './datapath';
import { exitStatus, runK8sSync } from './k8s-sync';
import { runMapMemoryBenchmark } from './map-memory';
import { runOtlpEncodeBenchmark } from './otlp-encode';
import { runOtlpExportBenchmark } from './otlp-export';

interface Benchmark {
  description: string;
  /** Resolves to the process exit status. */
  run(args: string[]): Promise<number>;
}

const BENCHMARKS: Record<string, Benchmark> = {
  capacity: {
    description: 'Userspace capacity: idle RSS, ring-buffer events/s with zero loss on one core, collection time and RSS with 10k/100k flows',
    run: runCapacityBenchmark,
  },
  datapath: {
    description: 'Datapath overhead: bulk TCP and connection churn with/without the agent and a bpftrace peer; kernel cost per program',
    run: runDatapathBenchmark,
  },
  k8s: {
    description: 'Kubernetes metadata cache: initial sync time and memory (10,000 pods, 2,000 services, 100 nodes)',
    run: async (args) => exitStatus(await runK8sSync(args), args.includes('--strict')),
  },
  'map-memory': {
    description: 'Kernel memory of the BPF maps with the default config, by group, projected to 64 and 192 possible CPUs',
    run: runMapMemoryBenchmark,
  },
  'otlp-encode': {
    description: 'OTLP request encoding of a 100,000-flow export: the OpenTelemetry serializer against ours, in process',
    run: runOtlpEncodeBenchmark,
  },
  'otlp-export': {
    description: 'OTLP metric export of 10k and 100k flows: the stock OpenTelemetry exporters against ours (CPU, peak RSS, bytes)',
    run: runOtlpExportBenchmark,
  },
};

function usage(): string {
  const names = Object.entries(BENCHMARKS)
    .map(([name, b]) => `  ${name.padEnd(12)} ${b.description}`)
    .join('\n');
  return `usage: npm run bench -- [NAME...] [options for the benchmark]\n\nbenchmarks (all when none is named):\n${names}\n`;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return 0;
  }
  // Leading words are benchmark names; everything from the first option on goes to the benchmarks.
  const firstOption = argv.findIndex((a) => a.startsWith('-'));
  const names = firstOption < 0 ? argv : argv.slice(0, firstOption);
  const options = firstOption < 0 ? [] : argv.slice(firstOption);
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark: ${unknown.join(', ')}\n\n${usage()}`);
    return 2;
  }
  let status = 0;
  for (const name of names.length ? names : Object.keys(BENCHMARKS)) {
    process.stderr.write(`== bench ${name}\n`);
    status = Math.max(status, await BENCHMARKS[name].run(options));
  }
  return status;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
