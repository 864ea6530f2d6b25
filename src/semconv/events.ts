/** Log-record event names (the OTLP LogRecord event_name field). */
export const EVENT_TCP_RETRANSMIT = 'flowtel.tcp.retransmit';
