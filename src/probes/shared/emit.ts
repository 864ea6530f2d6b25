/** Emits one network event as a WARN log record stamped with the kernel's time of the event. */
import type { Attributes } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import type { ProbeContext } from '../types';

export interface NetworkEvent {
  eventName: string;
  /** bpf_ktime_get_ns of the event. */
  kernelTimeNs: bigint;
  body: string;
  attributes: Attributes;
}

export function emitNetworkEvent(context: ProbeContext, event: NetworkEvent): void {
  context.logger.emit({
    eventName: event.eventName,
    timestamp: context.clock.toHrTime(event.kernelTimeNs),
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: event.body,
    attributes: event.attributes,
  });
}
