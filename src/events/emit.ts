/** Network events as WARN log records stamped with the kernel's time of the event. */
import type { Attributes } from '@opentelemetry/api';
import { SeverityNumber, type Logger } from '@opentelemetry/api-logs';
import type { KernelClock } from '../bpf/clock';

export interface NetworkEvent {
  eventName: string;
  /** bpf_ktime_get_ns of the event. */
  kernelTimeNs: bigint;
  body: string;
  attributes: Attributes;
}

export function networkEventLogger(logger: Logger, clock: KernelClock): (event: NetworkEvent) => void {
  return (event) =>
    logger.emit({
      eventName: event.eventName,
      timestamp: clock.toHrTime(event.kernelTimeNs),
      severityNumber: SeverityNumber.WARN,
      severityText: 'WARN',
      body: event.body,
      attributes: event.attributes,
    });
}
