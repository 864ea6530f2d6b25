/**
 * `validate` rejects every input that `run` rejects before it loads a
 * program, with the same message and exit code: an operator who validates a
 * config in CI must not meet a new refusal on the node.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, agentEnv } from '../support/agent-process';
import { tempDir } from '../support/tmp';

interface BadInput {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** The field the message must name. */
  field: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: agentEnv(env), encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new Error(`cannot start the CLI: ${result.error.message}`);
  return { code: result.status, signal: result.signal, stderr: result.stderr };
}

describe('validate rejects what run rejects, with the same message', function () {
  this.timeout(120_000);
  const dir = tempDir('parity');
  const file = (name: string, text: string): string => {
    const at = path.join(dir, name);
    fs.writeFileSync(at, text);
    return at;
  };
  const fifo = path.join(dir, 'config.fifo');
  before(() => {
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  });
  const https = { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://127.0.0.1:4317' };
  const http = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' };

  const inputs: BadInput[] = [
    { name: 'an endpoint port out of range', args: ['--otlp-endpoint', 'http://collector:99999'], field: 'exporters.otlp.endpoint' },
    { name: 'an endpoint without a host', args: ['--otlp-endpoint', 'http://:4317'], field: 'exporters.otlp.endpoint' },
    { name: 'an endpoint on port 0', args: [], env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:0' }, field: 'exporters.otlp.endpoint' },
    { name: 'an unknown compression', args: [], env: { ...http, OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli' }, field: 'OTEL_EXPORTER_OTLP_COMPRESSION' },
    {
      name: 'an unknown compression for logs only',
      args: [],
      env: { ...http, OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: 'zstd' },
      field: 'OTEL_EXPORTER_OTLP_LOGS_COMPRESSION',
    },
    {
      name: 'a reserved header in the config file',
      args: ['--config', file('te.yaml', 'exporters:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n    headers: {te: trailers}\n')],
      field: 'exporters.otlp.headers',
    },
    {
      name: 'a header value with a line break',
      args: ['--config', file('crlf.yaml', 'exporters:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n    headers: {x-a: "b\\r\\nx-c: d"}\n')],
      field: 'exporters.otlp.headers.x-a',
    },
    {
      name: 'a CA file that does not exist',
      args: [],
      env: { ...https, OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent/ca.crt' },
      field: 'OTEL_EXPORTER_OTLP_CERTIFICATE',
    },
    {
      name: 'a CA file that is not PEM',
      args: [],
      env: { ...https, OTEL_EXPORTER_OTLP_CERTIFICATE: file('ca.crt', 'not a certificate\n') },
      field: 'OTEL_EXPORTER_OTLP_CERTIFICATE',
    },
    {
      name: 'a CA file that is a device',
      args: [],
      env: { ...https, OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: '/dev/zero' },
      field: 'OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE',
    },
    {
      name: 'a client certificate without its key',
      args: [],
      env: { ...https, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: file('client.crt', 'x') },
      field: 'OTEL_EXPORTER_OTLP_CLIENT_KEY',
    },
    {
      name: 'a headers variable with a pair lacking "="',
      args: [],
      env: { ...http, OTEL_EXPORTER_OTLP_HEADERS: 'api-key=1,tenant' },
      field: 'OTEL_EXPORTER_OTLP_HEADERS',
    },
    {
      name: 'a headers variable with bad percent-encoding',
      args: [],
      env: { ...http, OTEL_EXPORTER_OTLP_HEADERS: 'api-key=%zz' },
      field: 'OTEL_EXPORTER_OTLP_HEADERS api-key',
    },
    {
      name: 'a headers variable with a bad header name',
      args: [],
      env: { ...http, OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'api key=1' },
      field: 'OTEL_EXPORTER_OTLP_METRICS_HEADERS',
    },
    { name: 'a NODE_NAME that is no node name', args: [], env: { NODE_NAME: 'Worker_1' }, field: 'nodeName' },
    { name: 'a Prometheus host that is no address', args: ['--prometheus-host', 'not a host!'], field: 'exporters.prometheus.host' },
    { name: 'the health and Prometheus ports equal', args: ['--prometheus-port', '9555', '--health-port', '9555'], field: 'health.port' },
    { name: 'a config file that is a FIFO', args: ['--config', fifo], field: '--config' },
    { name: 'a prototype-named config key', args: ['--config', file('proto.yaml', 'constructor: 1\n')], field: 'constructor' },
    { name: 'a prototype-named flag', args: ['constructor', 'x'], field: 'constructor' },
  ];

  for (const input of inputs) {
    it(`${input.name}: exit 2 from both, one identical line naming ${input.field}`, () => {
      const run = cli(['run', ...input.args], input.env);
      const validate = cli(['validate', ...input.args], input.env);
      assert.equal(run.signal, null, `run did not stop by itself: it accepted the input\n${run.stderr}`);
      assert.equal(run.code, 2, run.stderr);
      assert.equal(validate.code, 2, validate.stderr);
      assert.equal(validate.stderr, run.stderr);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.ok(run.stderr.startsWith(`flowtel: invalid configuration: ${input.field} = `), run.stderr);
    });
  }

  it('prints, without failing, the warning run logs for a drop reason this kernel lacks', () => {
    const config = file('reasons.yaml', 'probes:\n  drops:\n    denyReasons: [NOT_SPECIFIED, NETFILTER_DORP]\n');
    const validate = cli(['validate', '--config', config]);
    assert.equal(validate.code, 0, validate.stderr);
    assert.match(
      validate.stderr,
      /^flowtel: warning: probes\.drops\.denyReasons\[1\]: NETFILTER_DORP is not a drop reason of this kernel \(.+\); it is ignored here$/m,
    );
  });
});
