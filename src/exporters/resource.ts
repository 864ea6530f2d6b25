/**
 * The agent's resource: who is reporting. OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_SERVICE_NAME override the defaults, as the specification asks.
 */
import os from 'node:os';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { ATTR_HOST_NAME, ATTR_K8S_NODE_NAME, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '../semconv';

export function agentResource(nodeName: string, version: string): Resource {
  const defaults = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'flowtel',
    [ATTR_SERVICE_VERSION]: version,
    [ATTR_HOST_NAME]: os.hostname(),
    [ATTR_K8S_NODE_NAME]: nodeName,
  });
  return defaults.merge(detectResources({ detectors: [envDetector] }));
}
