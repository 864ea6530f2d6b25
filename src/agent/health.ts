/**
 * /healthz and /readyz for kubelet probes. Liveness: the event loop answers.
 * Readiness: the probe groups are loaded and the ring buffer is drained (a
 * consumer whose polls fail is not ready). Both answer JSON so an operator's
 * curl says what is wrong.
 */
import http from 'node:http';

export interface ReadinessReport {
  ready: boolean;
  detail: Record<string, unknown>;
}

export class HealthServer {
  private readiness: () => ReadinessReport = () => ({ ready: false, detail: { reason: 'starting' } });

  private constructor(private readonly server: http.Server) {}

  static async start(host: string, port: number): Promise<HealthServer> {
    let health: HealthServer | undefined;
    const server = http.createServer((req, res) => health?.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`health endpoint cannot listen on ${host}:${port}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    health = new HealthServer(server);
    return health;
  }

  /** Called once the agent runs: from then on /readyz asks `check`. */
  setReadiness(check: () => ReadinessReport): void {
    this.readiness = check;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      this.reply(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      const report = this.readiness();
      this.reply(res, report.ready ? 200 : 503, { status: report.ready ? 'ready' : 'not ready', ...report.detail });
    } else {
      this.reply(res, 404, { status: 'not found', paths: ['/healthz', '/readyz'] });
    }
  }

  private reply(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  }
}
