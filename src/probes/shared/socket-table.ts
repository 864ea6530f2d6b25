/**
 * The user-space side of a group's socket table (bpf/tcp_rtt.bpf.c, bpf/flows.bpf.c): running its walk, and
 * adopting the connections that predate the agent for ADOPTION_WINDOW_MS after start.
 */
import type { LoadedObject, ObjectNames } from '../../bpf/object-names';
import type { ProbeContext } from '../types';

/**
 * How long after start tcp_probe adopts the connections established before the agent (each at its first
 * received segment). A connection that receives nothing in that time is not counted until it reconnects.
 */
export const ADOPTION_WINDOW_MS = 10_000;

/** Attaches `program` (on tcp_probe) until ADOPTION_WINDOW_MS has passed or the group unloads. */
export function adoptExistingSockets<N extends ObjectNames>(object: LoadedObject<N>, program: N['programs'], context: ProbeContext): void {
  let link: number | undefined = object.attach(program);
  const end = (): void => {
    if (link !== undefined) object.detach(link);
    link = undefined;
  };
  const timer = setTimeout(end, ADOPTION_WINDOW_MS).unref();
  context.onUnload(() => {
    clearTimeout(timer);
    end();
  });
}

/**
 * Runs a walk program (BPF_PROG_TEST_RUN); a failure is logged once, as `consequence` says, and the walk is
 * tried again next time. Returns the program's return value, or undefined when it failed.
 */
export function walker<N extends ObjectNames>(
  object: LoadedObject<N>,
  program: N['programs'],
  context: ProbeContext,
  consequence: string,
): () => number | undefined {
  let warned = false;
  return () => {
    try {
      return object.programTestRun(program);
    } catch (err) {
      if (!warned) context.log.warn(`${program}: reading the sockets failed (${(err as Error).message}); ${consequence}`);
      warned = true;
      return undefined;
    }
  };
}
