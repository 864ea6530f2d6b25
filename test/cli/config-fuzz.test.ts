/**
 * A property-based fuzzer over everything an operator can hand the agent
 * before it loads a program: config files (random documents, mutated valid
 * ones, broken YAML text, prototype-named keys, huge values, anchor bombs),
 * special files, flags and the environment. The property: the input is
 * accepted, or rejected with one ConfigError that names the field, the value,
 * the source and what was expected, in at most 1 KiB. Anything else (another
 * error type, a stack trace, a hang) is a crash.
 *
 * The cases run in-process through the same function the CLI uses; a sample,
 * with every special file, runs through the real CLI for the exit code and
 * the printed message. FLOWTEL_FUZZ_SEED replays a run (fast-check prints the
 * seed and the shrunk case of a failure).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';
import { parseArgs } from '../../src/cli/args';
import { loadCommandConfig } from '../../src/cli/load-config';
import { CONFIG_FLAGS, configSchema } from '../../src/config/config';
import { ConfigError, MAX_ERROR_MESSAGE, type ObjectSpec, type Spec } from '../../src/config/schema';
import { packageRoot } from '../../src/bpf/native';
import { CLI, agentEnv } from '../support/agent-process';
import { tempDir } from '../support/tmp';

const CASES = Number(process.env.FLOWTEL_FUZZ_CASES ?? 1200);
const SEED = process.env.FLOWTEL_FUZZ_SEED ? Number(process.env.FLOWTEL_FUZZ_SEED) : undefined;

const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  '__defineGetter__',
  'propertyIsEnumerable',
  'toLocaleString',
];

/** Every key the schema knows, at any depth: random documents should hit real fields often. */
function schemaKeys(spec: Spec<unknown>, into = new Set<string>()): Set<string> {
  const shape = (spec as ObjectSpec<Record<string, Spec<unknown>>>).shape;
  if (!shape) return into;
  for (const [key, child] of Object.entries(shape)) {
    into.add(key);
    schemaKeys(child, into);
  }
  return into;
}
const KNOWN_KEYS = [...schemaKeys(configSchema)];

/** A valid document touching every section, for mutation. */
const VALID_DOC = {
  nodeName: 'worker-1',
  logLevel: 'info',
  ringBuffer: { sizeBytes: 1 << 21, maxQueuedBatches: 256 },
  events: { aggregationWindowMs: 1000, maxAggregatedKeys: 100 },
  probes: {
    tcpRetransmits: { enabled: true, granularity: 'pod', maxEventsPerSecondPerCpu: 100, maxRows: 1024 },
    drops: { enabled: true, allowReasons: [], denyReasons: ['NOT_SPECIFIED'] },
    tcpConnections: { maxTrackedSockets: 4096 },
    tcpRtt: { sampleIntervalMs: 500 },
    flows: { granularity: 'flow', idleFlowTimeoutMs: 60_000 },
  },
  exporters: {
    otlp: { endpoint: 'http://collector:4317', headers: { 'x-tenant': 'shop' }, exportIntervalMs: 1000, temporality: 'delta' },
    prometheus: { enabled: false, host: '127.0.0.1', port: 9464 },
    console: { enabled: false, intervalMs: 1000 },
  },
  collection: { cgroupGracePeriodMs: 1000 },
  health: { enabled: false, host: '127.0.0.1', port: 8099 },
  kubernetes: { enabled: false, resolvePeers: true, podLabels: ['app'], deletedPodGracePeriodMs: 0 },
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function paths(value: Json, prefix: string[] = [], out: string[][] = []): string[][] {
  out.push(prefix);
  if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) paths(child as Json, [...prefix, key], out);
  }
  return out;
}
const VALID_PATHS = paths(VALID_DOC as unknown as Json).slice(1);

function withAt(doc: Json, at: string[], change: (parent: Record<string, Json> | Json[], key: string) => void): Json {
  const copy = structuredClone(doc);
  let node = copy as Record<string, Json>;
  for (const part of at.slice(0, -1)) node = node[part] as Record<string, Json>;
  change(node, at[at.length - 1]);
  return copy;
}

const keyArb = fc.oneof(fc.constantFrom(...KNOWN_KEYS), fc.constantFrom(...PROTOTYPE_KEYS), fc.string({ maxLength: 12 }));
const leafArb: fc.Arbitrary<Json> = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('pod', 'flow', 'http://collector:4317', 'http://collector:99999', 'https://:1', '0.0.0.0', '::', 'NOT_SPECIFIED', '', ' ', '\u0000', 'ü'),
  fc.integer({ min: 1000, max: 400_000 }).map((n) => 'x'.repeat(n)),
);
const { json: randomJson } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(keyArb, tie('json'), { maxKeys: 5 }) as fc.Arbitrary<Json>,
  ),
}));

/** A valid document with one change: a value replaced or removed, or a key added beside it. */
const mutatedDoc = fc.tuple(fc.constantFrom(...VALID_PATHS), fc.integer({ min: 0, max: 2 }), keyArb, randomJson).map(([at, kind, key, value]) =>
  withAt(VALID_DOC as unknown as Json, at, (parent, last) => {
    const record = parent as Record<string, Json>;
    if (kind === 0) record[last] = value;
    else if (kind === 1) delete record[last];
    else Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  }),
);

/** YAML text of the valid document with characters inserted or cut somewhere. */
const brokenText = fc
  .tuple(
    fc.nat(),
    fc.nat({ max: 20 }),
    fc.string({ maxLength: 8, unit: fc.constantFrom(':', '-', '[', '{', '&', '*', '!', '\n', ' ', '#', '"', "'", '|', '>', '%', '@', '\t', 'a') }),
  )
  .map(([at, cut, insert]) => {
    const text = YAML.stringify(VALID_DOC);
    const i = at % text.length;
    return text.slice(0, i) + insert + text.slice(i + cut);
  });

/** Each alias level multiplies the expanded size: the parser must refuse it rather than build it. */
const anchorBomb = fc.tuple(fc.integer({ min: 2, max: 14 }), fc.integer({ min: 2, max: 12 })).map(([depth, width]) => {
  let text = 'a0: &a0 ["boom"]\n';
  for (let i = 1; i <= depth; i++)
    text += `a${i}: &a${i} [${Array(width)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  return `${text}nodeName: *a${depth}\n`;
});

const documentText = fc.oneof(
  randomJson.map((doc) => YAML.stringify(doc)),
  randomJson.map((doc) => JSON.stringify(doc)),
  mutatedDoc.map((doc) => YAML.stringify(doc)),
  brokenText,
  anchorBomb,
);

const flagArb = fc.tuple(
  fc.constantFrom(...Object.keys(CONFIG_FLAGS), '--config', '--nope', 'constructor', '__proto__', '-o'),
  fc.oneof(leafArb.map(String), fc.constant('')),
);
const ENV_NAMES = [
  'NODE_NAME',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_METRIC_EXPORT_INTERVAL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_LOGS_HEADERS',
  'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE',
];
const envArb = fc.dictionary(
  fc.constantFrom(...ENV_NAMES),
  fc.oneof(
    leafArb.map(String),
    fc.constantFrom('a=1,b', '=x', 'k=%zz', 'k=v\r\nx: y', 'grpc-timeout=1S', 'https://collector:4317', '/dev/zero', 'gzip', 'Worker_1'),
  ),
  { maxKeys: 3 },
);

/** Mostly none: a single bad flag or variable would otherwise hide what the document does. */
const sometimes = <T>(arb: fc.Arbitrary<T>, none: T) => fc.oneof({ arbitrary: fc.constant(none), weight: 3 }, { arbitrary: arb, weight: 1 });
const inputArb = fc.record({
  text: fc.oneof({ arbitrary: documentText, weight: 4 }, { arbitrary: mutatedDoc.map((doc) => YAML.stringify(doc)), weight: 2 }),
  flags: sometimes(fc.array(flagArb, { minLength: 1, maxLength: 3 }), []),
  env: sometimes(envArb, {}),
});

/** What every rejection must look like. */
function assertClearRejection(err: unknown, what: string): void {
  if (!(err instanceof ConfigError)) {
    throw new Error(`${what}: crashed with ${(err as Error)?.name}: ${String((err as Error)?.message ?? err).slice(0, 300)}`);
  }
  assert.ok(err.message.length <= MAX_ERROR_MESSAGE, `${what}: a ${err.message.length}-character message`);
  assert.ok(err.field.length > 0 && err.source.length > 0 && err.expected.length > 0, `${what}: ${err.message}`);
  assert.match(err.message, /^invalid configuration: .+ = .+ \(from .+\): expected .+/s, what);
  assert.doesNotMatch(err.message, /\n\s+at /, `${what}: a stack trace`);
}

function describeFile(file: string): string {
  try {
    return fs.statSync(file).isFile() ? JSON.stringify(fs.readFileSync(file, 'utf8').slice(0, 400)) : file;
  } catch {
    return file;
  }
}

function validateInProcess(configFile: string, flags: Array<[string, string]>, env: NodeJS.ProcessEnv): 'accepted' | 'rejected' {
  try {
    const args = parseArgs(['validate', '--config', configFile, ...flags.flatMap(([flag, value]) => [flag, value])]);
    loadCommandConfig(args, env, packageRoot());
    return 'accepted';
  } catch (err) {
    assertClearRejection(err, `config ${describeFile(configFile)}, flags ${JSON.stringify(flags).slice(0, 200)}, env ${JSON.stringify(env).slice(0, 300)}`);
    return 'rejected';
  }
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: agentEnv(env), encoding: 'utf8', timeout: 20_000 });
  if (result.error) throw new Error(`cannot start the CLI: ${result.error.message}`);
  return { code: result.status, signal: result.signal, stderr: result.stderr, stdout: result.stdout };
}

function assertCliRejection(r: ReturnType<typeof cli>, what: string): void {
  assert.equal(r.signal, null, `${what}: killed by ${r.signal} (a hang?)`);
  assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr.slice(0, 1000)}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: ${lines.length} lines:\n${r.stderr.slice(0, 1500)}`);
  assert.ok(lines[0].length <= MAX_ERROR_MESSAGE + 'flowtel: '.length, `${what}: a ${lines[0].length}-character message`);
  assert.match(lines[0], /^flowtel: invalid configuration: .+ = .+ \(from .+\): expected .+/, what);
}

describe('config fuzzer: every input is accepted or rejected clearly', function () {
  this.timeout(600_000);
  let dir: string;
  let counter = 0;
  const writeCase = (text: string): string => {
    const file = path.join(dir, `case-${counter++}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  };

  before(() => {
    dir = tempDir('fuzz');
  });

  it(`${CASES} generated documents, flags and environments: no crash, every rejection names field, value, source and expectation within 1 KiB`, () => {
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(inputArb, ({ text, flags, env }) => {
        const file = writeCase(text);
        try {
          outcomes[validateInProcess(file, flags, env)]++;
        } finally {
          fs.rmSync(file, { force: true });
        }
      }),
      { numRuns: CASES, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
    console.log(`      ${outcomes.accepted} accepted, ${outcomes.rejected} rejected`);
    // Both branches must be exercised, or the generators have drifted away from the schema.
    assert.ok(outcomes.accepted >= CASES / 50, `only ${outcomes.accepted} accepted`);
    assert.ok(outcomes.rejected >= CASES / 2, `only ${outcomes.rejected} rejected`);
  });

  describe('special and oversized files, in-process and through the real CLI', () => {
    const specials: Array<{ name: string; make: () => string; cause: RegExp }> = [
      { name: 'a character device (/dev/zero)', make: () => '/dev/zero', cause: /it is a character device/ },
      { name: 'an empty character device (/dev/null)', make: () => '/dev/null', cause: /it is a character device/ },
      { name: 'a FIFO nobody writes to', make: () => fifo(), cause: /it is a FIFO/ },
      { name: 'a directory', make: () => dir, cause: /it is a directory/ },
      { name: 'a listening UNIX socket', make: () => unixSocket(), cause: /it cannot be opened: ENXIO/ },
      { name: 'a missing file', make: () => path.join(dir, 'absent.yaml'), cause: /it cannot be opened: ENOENT/ },
      { name: 'a symlink loop', make: () => symlinkLoop(), cause: /it cannot be opened: ELOOP/ },
      { name: 'a 10 MB file', make: () => writeCase(`nodeName: ${'a'.repeat(10 << 20)}\n`), cause: /it has 10485771 bytes/ },
      { name: 'a 600 KB value', make: () => writeCase(`nodeName: ${'a'.repeat(600_000)}\n`), cause: /expected a Kubernetes node name/ },
      // JSON: a YAML block key over 1024 characters is already a parse error.
      { name: 'a 600 KB key', make: () => writeCase(JSON.stringify({ ['k'.repeat(600_000)]: 1 })), cause: /expected a known key/ },
      { name: 'a 2 KB block-mapping key', make: () => writeCase(`${'k'.repeat(2000)}: 1\n`), cause: /expected valid YAML or JSON: .*at most 1024 chars/ },
      {
        name: 'an anchor bomb',
        make: () =>
          writeCase(
            fc.sample(
              anchorBomb.filter((t) => t.includes('a9')),
              { numRuns: 1, seed: 1 },
            )[0],
          ),
        cause: /resource exhaustion/,
      },
    ];
    let servers: net.Server[] = [];

    function fifo(): string {
      const file = path.join(dir, 'config.fifo');
      if (!fs.existsSync(file)) assert.equal(spawnSync('mkfifo', [file]).status, 0);
      return file;
    }
    function unixSocket(): string {
      const file = path.join(dir, 'config.sock');
      if (!fs.existsSync(file)) {
        const server = net.createServer().listen(file);
        servers.push(server);
      }
      return file;
    }
    function symlinkLoop(): string {
      const a = path.join(dir, 'loop-a');
      if (!fs.existsSync(path.join(dir, 'loop-b'))) {
        fs.symlinkSync(path.join(dir, 'loop-b'), a);
        fs.symlinkSync(a, path.join(dir, 'loop-b'));
      }
      return a;
    }
    after(() => {
      for (const server of servers) server.close();
      servers = [];
    });

    for (const special of specials) {
      it(`refuses ${special.name} with its own cause, exit 2, one bounded line`, async () => {
        const file = special.make();
        // The socket listens from this process: let it start before the CLI opens it.
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(validateInProcess(file, [], {}), 'rejected');
        for (const command of ['validate', 'run']) {
          const r = cli([command, '--config', file, '--health-port', '1']);
          assertCliRejection(r, `${command} ${special.name}`);
          assert.match(r.stderr, special.cause, r.stderr);
        }
      });
    }

    it('refuses a CA file that is a device or a FIFO by name, through the real CLI', () => {
      for (const [ca, cause] of [
        ['/dev/zero', /character device/],
        [fifo(), /FIFO/],
      ] as const) {
        const r = cli(['validate'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://127.0.0.1:4317', OTEL_EXPORTER_OTLP_CERTIFICATE: ca });
        assertCliRejection(r, `CA ${ca}`);
        assert.match(r.stderr, /OTEL_EXPORTER_OTLP_CERTIFICATE = /);
        assert.match(r.stderr, cause);
      }
    });
  });

  it('through the real CLI, a sample of generated cases exits 0 or 2 with one bounded message', () => {
    // What can reach a process at all: the kernel caps one argument or variable at 128 KiB (MAX_ARG_STRLEN), and
    // both are NUL-terminated strings.
    const fitsExec = (input: { flags: Array<[string, string]>; env: Record<string, string> }) =>
      [...input.flags.flat(), ...Object.keys(input.env), ...Object.values(input.env)].every((value) => value.length < 100_000 && !value.includes('\0'));
    const sample = fc.sample(inputArb.filter(fitsExec), { numRuns: 25, ...(SEED !== undefined ? { seed: SEED } : {}) });
    for (const { text, flags, env } of sample) {
      const file = writeCase(text);
      const expected = validateInProcess(file, flags, env);
      const r = cli(['validate', '--config', file, ...flags.flatMap(([flag, value]) => [flag, value])], env);
      const what = `case ${JSON.stringify({ text: text.slice(0, 300), flags, env }).slice(0, 800)}`;
      if (expected === 'accepted') assert.equal(r.code, 0, `${what}\n${r.stderr}`);
      else assertCliRejection(r, what);
    }
  });
});
