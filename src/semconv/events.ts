/** Log-record event names (the OTLP LogRecord event_name field). */
export const EVENT_TCP_RETRANSMIT = 'flowtel.tcp.retransmit';
export const EVENT_TCP_RESET = 'flowtel.tcp.reset';
export const EVENT_NETWORK_DROP = 'flowtel.network.drop';
export const EVENT_TCP_CONNECTION_FAILURE = 'flowtel.tcp.connection.failure';
