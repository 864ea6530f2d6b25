/**
 * Why a probe group did not load, in words an operator can act on. A kernel
 * that cannot carry a hook (caught before load from its BTF, see ./hooks) is
 * not the same as a verifier that refuses a program the kernel should run (a
 * bug of ours), a map the kernel could not allocate (memory limits), or a
 * missing privilege or file: each gets its own state and text.
 */
import { CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN, capabilityName, effectiveCapabilities, hasCapability } from './capabilities';
import { KernelUnsupportedError } from './runtime';

function readCapabilities(): bigint | undefined {
  try {
    return effectiveCapabilities();
  } catch {
    return undefined;
  }
}

export type LoadFailureState =
  /** The kernel lacks what the group needs. */
  | 'unsupported'
  /** The kernel should run it, and did not: the reason says what to do (or that it is our bug). */
  | 'failed';

export interface LoadFailure {
  state: LoadFailureState;
  /** One line: what failed and why. */
  reason: string;
}

/** What the native addon attaches to its errors (native/src/errors.cc). */
interface NativeError extends Error {
  errno?: number;
  subject?: string;
  libbpfLog?: string;
}

const EPERM = 1;
const ENOENT = 2;
const ENOMEM = 12;
const EACCES = 13;
const E2BIG = 7;
/** libbpf's own error codes start here (LIBBPF_ERRNO__START): a file that is no valid BPF ELF object, for one. */
const LIBBPF_ERRNO_START = 4000;

/** `caps`: the agent's effective capabilities (CapEff), to say which privilege a refusal is about. */
export function describeLoadFailure(err: unknown, caps: bigint | undefined = readCapabilities()): LoadFailure {
  if (err instanceof KernelUnsupportedError) return { state: 'unsupported', reason: err.reason };
  const e = (err instanceof Error ? err : new Error(String(err))) as NativeError;
  const log = e.libbpfLog ?? '';
  const firstLine = e.message.split('\n')[0];
  const map = /map '([^']+)': failed to create/.exec(log);
  if (map) {
    const cause = e.errno === ENOMEM || e.errno === E2BIG ? 'the kernel could not allocate it' : 'the kernel refused it';
    return {
      state: 'failed',
      reason: `cannot create BPF map ${map[1]} (${cause}: ${errnoText(e)}): lower the group's maxRows or raise the memory the agent may lock or use (RLIMIT_MEMLOCK before 5.11, the pod's memory limit after)`,
    };
  }
  if (/failed to resolve CO-RE relocation|<invalid CO-RE relocation>/.test(log)) {
    const relocation = /relo #\d+: (.*)/.exec(log)?.[1] ?? firstLine;
    return {
      state: 'unsupported',
      reason: `a kernel type a program reads is not as Flowtel expects on this kernel (${relocation.trim()}); please report it: Flowtel should declare this requirement`,
    };
  }
  // The log keeps its tail only (a verifier log can be megabytes): its end says a program failed to load.
  if (/END PROG LOAD LOG|prog '[^']+': failed to load: -\d+/.test(log)) {
    const program = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(log)?.[1] ?? 'a program';
    if (e.errno === EPERM && !/processed \d+ insns/.test(log)) return permission(e, caps);
    return {
      state: 'failed',
      reason: `the kernel's verifier refused ${program}, which this kernel should run: a bug in Flowtel, please report it with the agent's debug log (${verifierSummary(log)})`,
    };
  }
  if (e.errno === EPERM || e.errno === EACCES) return permission(e, caps);
  if (e.errno === ENOENT && /: open: /.test(firstLine))
    return { state: 'failed', reason: `the BPF object is missing: ${firstLine} (run npm run build, or check bpfObjectDir)` };
  if (e.errno !== undefined && e.errno >= LIBBPF_ERRNO_START && /: open: /.test(firstLine)) {
    return {
      state: 'failed',
      reason: `the BPF object is damaged or not one of Flowtel's: ${firstLine} (rebuild it with npm run build:bpf, or check bpfObjectDir)`,
    };
  }
  if (/: open: /.test(firstLine)) return { state: 'failed', reason: `the BPF object cannot be read: ${firstLine}` };
  return { state: 'failed', reason: firstLine };
}

/**
 * Names the privilege the failed step needs and whether the agent has it: the
 * step is in the native error ("on cgroup …: attach" for cgroup programs).
 */
function permission(e: NativeError, caps: bigint | undefined): LoadFailure {
  const what = e.message.split('\n')[0];
  const lacks = (cap: number) => caps !== undefined && !hasCapability(caps, cap);
  if (/ on cgroup .*: attach: /.test(what)) {
    const cause = lacks(CAP_NET_ADMIN)
      ? 'attaching a program at a cgroup needs CAP_NET_ADMIN, which the agent does not have (the Helm chart grants it)'
      : 'the kernel refused to attach a program at a cgroup although the agent has CAP_NET_ADMIN (a security module such as SELinux, or a cgroup the agent may not use)';
    return { state: 'failed', reason: `permission denied (${what}): ${cause}` };
  }
  const missing = caps === undefined || hasCapability(caps, CAP_SYS_ADMIN) ? [] : [CAP_BPF, CAP_PERFMON].filter(lacks).map(capabilityName);
  if (missing.length > 0)
    return { state: 'failed', reason: `permission denied (${what}): loading needs ${missing.join(' and ')}, which the agent does not have` };
  return {
    state: 'failed',
    reason: `permission denied (${what}): the agent has CAP_BPF and CAP_PERFMON; before Linux 5.11 loading also needs RLIMIT_MEMLOCK room (CAP_SYS_RESOURCE), and a security module may refuse it`,
  };
}

function errnoText(e: NativeError): string {
  return /: ([^:(]+) \(errno \d+\)/.exec(e.message.split('\n')[0])?.[1]?.trim() ?? `errno ${e.errno ?? '?'}`;
}

/** The verifier's own last words: the line that says what it refused. */
function verifierSummary(log: string): string {
  const lines = log.split('\n').map((l) => l.replace(/^libbpf: /, '').trim());
  const end = lines.findIndex((l) => l.includes('END PROG LOAD LOG'));
  const body = lines.slice(0, end < 0 ? lines.length : end).filter((l) => l && !/^processed \d+ insns/.test(l) && !/^\d+: /.test(l) && !l.startsWith(';'));
  return body.slice(-2).join('; ');
}
