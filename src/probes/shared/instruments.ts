import type { Meter, ObservableCounter } from '@opentelemetry/api';
import type { MetricName } from '../../semconv';

/** An ObservableCounter with the name, unit and description from src/semconv. */
export function observableCounter(meter: Meter, metric: MetricName): ObservableCounter {
  return meter.createObservableCounter(metric.name, { unit: metric.unit, description: metric.description });
}
