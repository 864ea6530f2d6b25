/** A test node with an agent exporting to a fresh receiver, from a YAML config; one teardown for all three. */
import fs from 'node:fs';
import path from 'node:path';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { TestNode, type TestPodSpec } from '../../src/testbed/test-node';
import { startAgentWithReceiver, type AgentProcess } from './agent-process';
import { cgroupRoot } from './kernel';
import { tempDir } from './tmp';

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
