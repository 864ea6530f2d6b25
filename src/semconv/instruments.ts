/** Instruments made from the names, units and descriptions of ./metrics (the agent's self-metrics). */
import type { Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter } from '@opentelemetry/api';
import type { MetricName } from './metrics';

/** An ObservableCounter with the name, unit and description from src/semconv (agent self-metrics). */
export function observableCounter(meter: Meter, metric: MetricName): ObservableCounter {
  return meter.createObservableCounter(metric.name, { unit: metric.unit, description: metric.description });
}

/** An ObservableUpDownCounter the same way (self-metrics that go down as well as up: memory). */
export function observableUpDownCounter(meter: Meter, metric: MetricName): ObservableUpDownCounter {
  return meter.createObservableUpDownCounter(metric.name, { unit: metric.unit, description: metric.description });
}

/** An ObservableGauge the same way (self-metrics that are a state or a last value). */
export function observableGauge(meter: Meter, metric: MetricName): ObservableGauge {
  return meter.createObservableGauge(metric.name, { unit: metric.unit, description: metric.description });
}
