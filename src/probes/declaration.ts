/**
 * What a probe group declares about itself, so that the agent, the config,
 * the CLI, `flowtel doctor`, the chart's schema check and the docs check can
 * all walk the registry (./registry) instead of naming groups: its config
 * fragment (schema, defaults), its kernel hooks with their program variants,
 * the telemetry it produces, and how to build it.
 */
import type { HookSpec } from '../bpf/hooks';
import type { KernelHz } from '../bpf/kernel-hz';
import type { MetricName } from '../semconv/metrics';
import type { ObjectSpec, Spec } from '../config/schema';
import type { CommonProbeConfig } from './config';
import type { ProbeGroup } from './types';

/** What groups may need to know of the node before they are built. */
export interface NodeFacts {
  /** The kernel's tick rate; measured at start only when an enabled group declares `needsKernelHz`. */
  kernelHz: KernelHz;
  /** The cgroup v2 mount the agent watches. */
  cgroupRoot: string;
}

type Shape = Record<string, Spec<unknown>>;

/** A group's declaration, typed by its config key and its config. */
export interface ProbeGroupDeclaration<Key extends string, Config extends CommonProbeConfig> {
  /** The group's name in logs, doctor, /readyz and self-metrics (kebab-case). */
  readonly name: string;
  /** Its key under `probes` in the config file and the chart's values (camelCase). */
  readonly configKey: Key;
  readonly config: {
    readonly schema: ObjectSpec<Shape> & { readonly shape: Record<keyof Config, Spec<unknown>> };
    readonly defaults: Config;
  };
  readonly hooks: readonly HookSpec[];
  /** What is missing from the telemetry while the group does not run. */
  readonly withoutIt: string;
  /** The metrics and log-record event names it produces (docs/telemetry.md must describe each). */
  readonly telemetry: { readonly metrics: readonly MetricName[]; readonly events: readonly string[] };
  /** Whether it samples by the kernel's tick (the agent then measures CONFIG_HZ before building it). */
  readonly needsKernelHz?: boolean;
  /** Warnings `validate` prints for a config this kernel cannot honour in full (the group logs them too at start). */
  configWarnings?(config: Config): string[];
  /** The config for a trial load (`flowtel doctor`), with every kernel map at most `rows` entries. */
  trialConfig?(config: Config, rows: number): Config;
  build(config: Config, node: NodeFacts): ProbeGroup;
}

/** The registry's view of a group: the same declaration, with its config taken from the whole agent config. */
export interface ProbeGroupEntry {
  readonly name: string;
  readonly configKey: string;
  readonly hooks: readonly HookSpec[];
  readonly withoutIt: string;
  readonly telemetry: { readonly metrics: readonly MetricName[]; readonly events: readonly string[] };
  readonly needsKernelHz: boolean;
  readonly configSchema: ObjectSpec<Shape>;
  defaults(): CommonProbeConfig;
  configOf(probes: object): CommonProbeConfig;
  enabled(probes: object): boolean;
  configWarnings(probes: object): string[];
  /** `probes` with this group's maps shrunk to at most `rows` entries. */
  withTrialConfig<P extends object>(probes: P, rows: number): P;
  build(probes: object, node: NodeFacts): ProbeGroup;
}

export type DeclaredGroup<Key extends string, Config extends CommonProbeConfig> = ProbeGroupEntry & {
  readonly configKey: Key;
  /** Carries the config type for ProbesConfig; never read. */
  readonly configType?: Config;
};

/**
 * Declares a group. tsc checks that the schema has a spec for every key of the config; the defaults
 * must pass the schema, which is checked here, when the module loads.
 */
export function defineProbeGroup<Key extends string, Config extends CommonProbeConfig>(
  declaration: ProbeGroupDeclaration<Key, Config>,
): DeclaredGroup<Key, Config> {
  const { config } = declaration;
  config.schema.parse(config.defaults, `probes.${declaration.configKey}`, `the defaults of probe group ${declaration.name}`);
  const configOf = (probes: object): Config => (probes as Record<string, Config>)[declaration.configKey];
  return {
    name: declaration.name,
    configKey: declaration.configKey,
    hooks: declaration.hooks,
    withoutIt: declaration.withoutIt,
    telemetry: declaration.telemetry,
    needsKernelHz: declaration.needsKernelHz ?? false,
    configSchema: config.schema,
    defaults: () => structuredClone(config.defaults),
    configOf,
    enabled: (probes) => configOf(probes).enabled,
    configWarnings: (probes) => (declaration.configWarnings ? declaration.configWarnings(configOf(probes)) : []),
    withTrialConfig<P extends object>(probes: P, rows: number): P {
      const own = configOf(probes);
      const small = declaration.trialConfig ? declaration.trialConfig(own, rows) : own;
      return { ...probes, [declaration.configKey]: { ...small, maxRows: Math.min(small.maxRows, rows) } };
    },
    build: (probes, node) => declaration.build(configOf(probes), node),
  };
}

/** The config of every group of a registry, keyed by its config key. */
export type ProbesConfigOf<Groups extends readonly ProbeGroupEntry[]> = {
  [G in Groups[number] as G['configKey']]: G extends DeclaredGroup<string, infer C> ? C : never;
};
