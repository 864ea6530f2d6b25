/**
 * The retry loop both OTLP transports share: attempt, and on a failure the
 * protocol calls retryable, wait (the server's requested delay, else
 * exponential backoff with jitter) and attempt again, while the export's
 * deadline leaves room and the agent is not stopping.
 */
import type { ExportResponse } from '@opentelemetry/otlp-exporter-base';
import type { ExportClosing } from './closing';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Delay before the first retry; each next one is `multiplier` times longer, ±20% jitter. */
  initialBackoffMs: number;
  multiplier: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 4, initialBackoffMs: 1000, multiplier: 1.5 };

/** The least time left for which a retry is still started (or a quarter of the export timeout, if less). */
const MIN_ATTEMPT_MS = 1000;

/** A failed attempt as the protocol reads it. */
export interface AttemptFailure {
  error: Error;
  retryable: boolean;
  /** The delay the server asked for (RetryInfo, Retry-After), in ms. */
  delayMs?: number;
}

export interface RetryLoop {
  policy: RetryPolicy;
  /** The export's deadline, ms since the epoch (already clamped to the agent's stop). */
  deadline: number;
  timeoutMillis: number;
  closing?: ExportClosing;
  /** True once the transport is shut down. */
  closed: () => boolean;
}

export async function withRetries(attempt: () => Promise<Uint8Array>, classify: (err: unknown) => AttemptFailure, loop: RetryLoop): Promise<ExportResponse> {
  const stopping = () => loop.closed() || loop.closing?.active === true;
  let backoff = loop.policy.initialBackoffMs;
  for (let n = 0; ; n++) {
    try {
      return { status: 'success', data: await attempt() };
    } catch (err) {
      const { error, retryable, delayMs } = classify(err);
      const wait = delayMs ?? backoff * (0.8 + 0.4 * Math.random());
      backoff *= loop.policy.multiplier;
      // An attempt needs time to succeed: one started with a few ms left would only time out (and drop the connection).
      const room = loop.deadline - Date.now() - wait;
      if (!retryable || stopping() || n >= loop.policy.maxRetries || room < Math.min(MIN_ATTEMPT_MS, loop.timeoutMillis / 4))
        return { status: 'failure', error };
      if (loop.closing) await loop.closing.sleep(wait);
      else await new Promise((resolve) => setTimeout(resolve, wait));
      // The agent began to stop during the wait: its final export carries the totals, this one is given up.
      if (stopping()) return { status: 'failure', error };
    }
  }
}
