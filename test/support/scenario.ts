/** A test node with an agent exporting to a fresh receiver, from a YAML config; one teardown for all three. */
import fs from 'node:fs';
import path from 'node:path';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { TestNode, type TestPodSpec } from '../../src/testbed/test-node';
import { startAgentWithReceiver, type AgentProcess } from './agent-process';
import { cgroupRoot, requireKernel } from './kernel';
import { tempDir } from './tmp';
import { PROBE_GROUPS as REGISTERED_GROUPS } from '../../src/probes/registry';

export interface Scenario {
  node: TestNode;
  agent: AgentProcess;
  receiver: OtlpReceiver;
  teardown(): Promise<void>;
}

export async function startScenario(pods: TestPodSpec[], configYaml: string): Promise<Scenario> {
  const node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods });
  try {
    const config = path.join(tempDir('scenario'), 'flowtel.yaml');
    fs.writeFileSync(config, configYaml);
    const { agent, receiver } = await startAgentWithReceiver(['--config', config, '--cgroup-root', cgroupRoot()]);
    return {
      node,
      agent,
      receiver,
      async teardown() {
        await agent.stop();
        await receiver.stop();
        await node.destroy();
      },
    };
  } catch (err) {
    await node.destroy();
    throw err;
  }
}

/** Every registered probe group, by its key under `probes:` in the config. */
export const PROBE_GROUPS: readonly ProbeConfigKey[] = REGISTERED_GROUPS.map((g) => g.configKey);
export type ProbeConfigKey = (typeof REGISTERED_GROUPS)[number]['configKey'];

/** A `probes:` config that turns every group off but `group`, which gets `settings` (a YAML mapping). */
export function onlyGroupConfig(group: ProbeConfigKey, settings: Record<string, string | number | boolean>): string {
  const others = PROBE_GROUPS.filter((g) => g !== group).map((g) => `  ${g}:\n    enabled: false\n`);
  const own = Object.entries(settings).map(([key, value]) => `    ${key}: ${value}\n`);
  return `probes:\n${others.join('')}  ${group}:\n${own.join('')}`;
}

/**
 * Starts a scenario before the enclosing describe's tests (which need the
 * kernel) and tears it down after them; `onStart` receives it.
 */
export function useScenario(pods: TestPodSpec[], configYaml: string, onStart: (scenario: Scenario) => void): void {
  let scenario: Scenario | undefined;
  before(async function () {
    requireKernel(this);
    scenario = await startScenario(pods, configYaml);
    onStart(scenario);
  });
  after(async function () {
    this.timeout(30_000);
    await scenario?.teardown();
  });
}
