/**
 * The agent's own diagnostic log: logfmt lines on stderr, so stdout stays
 * for the console exporter. Not telemetry: what operators read when the
 * agent itself misbehaves.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class AgentLog {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly out: NodeJS.WritableStream = process.stderr,
  ) {}

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields);
  }

  private write(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (ORDER[level] < ORDER[this.level]) return;
    const parts = [`time=${new Date().toISOString()}`, `level=${level}`, `msg=${quote(msg)}`];
    for (const [k, v] of Object.entries(fields)) parts.push(`${k}=${quote(String(v))}`);
    this.out.write(`${parts.join(' ')}\n`);
  }
}

function quote(s: string): string {
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}
