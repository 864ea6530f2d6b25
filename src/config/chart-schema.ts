/**
 * The `config.probes` part of the Helm chart's values.schema.json, generated
 * from the probe-group registry (scripts/chart-schema.js writes it at build
 * time), so a registered group is in the chart's schema without an edit.
 * No key is required: the agent has a default for every one.
 */
import type { JsonSchema } from './schema';
import type { ProbeGroupEntry } from '../probes/declaration';

export function probesChartSchema(groups: readonly ProbeGroupEntry[]): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    description: 'probe groups, each with its own options (docs/telemetry.md)',
    properties: Object.fromEntries(groups.map((g) => [g.configKey, { description: `${g.name}; without it: ${g.withoutIt}`, ...g.configSchema.json }])),
  };
}
