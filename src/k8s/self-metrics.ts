/** Health of the Kubernetes metadata cache, exported with the agent's other self-metrics. */
import type { BatchObservableResult, Meter } from '@opentelemetry/api';
import {
  ATTR_FLOWTEL_K8S_RESOURCE,
  METRIC_AGENT_K8S_ERRORS,
  METRIC_AGENT_K8S_LISTS,
  METRIC_AGENT_K8S_OBJECTS,
  METRIC_AGENT_K8S_RELISTS,
  METRIC_AGENT_K8S_SYNCED,
  METRIC_AGENT_K8S_WATCHES,
} from '../semconv';
import { observableCounter, observableGauge } from '../semconv/instruments';
import type { KubernetesMetadata } from './metadata';

export function registerKubernetesMetrics(meter: Meter, metadata: KubernetesMetadata): () => void {
  const objects = observableGauge(meter, METRIC_AGENT_K8S_OBJECTS);
  const synced = observableGauge(meter, METRIC_AGENT_K8S_SYNCED);
  const lists = observableCounter(meter, METRIC_AGENT_K8S_LISTS);
  const watches = observableCounter(meter, METRIC_AGENT_K8S_WATCHES);
  const relists = observableCounter(meter, METRIC_AGENT_K8S_RELISTS);
  const errors = observableCounter(meter, METRIC_AGENT_K8S_ERRORS);
  const callback = (observer: BatchObservableResult): void => {
    for (const s of metadata.stats()) {
      const attributes = { [ATTR_FLOWTEL_K8S_RESOURCE]: s.resource };
      observer.observe(objects, s.objects, attributes);
      observer.observe(synced, s.synced && !s.lastError ? 1 : 0, attributes);
      observer.observe(lists, s.lists, attributes);
      observer.observe(watches, s.watches, attributes);
      observer.observe(relists, s.relists410, attributes);
      observer.observe(errors, s.errors, attributes);
    }
  };
  const all = [objects, synced, lists, watches, relists, errors];
  meter.addBatchObservableCallback(callback, all);
  return () => meter.removeBatchObservableCallback(callback, all);
}
