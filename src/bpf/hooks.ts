/**
 * The kernel hooks of a probe group and, per hook, the program variants that
 * run it on different kernels, best first. Before anything loads, each hook's
 * variant is chosen from the running kernel's BTF: the first whose
 * requirements this kernel meets. A later variant may count less (a
 * degradation, named); a hook no variant fits makes the group unsupported on
 * this kernel, with the requirement it missed and the kernel that brought it.
 *
 * Requirements are facts of the kernel's BTF, never version numbers: a
 * distribution kernel may carry a backport, and a tracepoint's arguments are
 * exactly what the verifier checks a tp_btf program against.
 */

/** What a program variant needs of the running kernel. */
export type KernelRequirement =
  /** The tracepoint exists and passes at least `args` arguments (the last one being `argument`). */
  | { kind: 'tracepoint'; tracepoint: string; args: number; argument?: string; since: string }
  /** A kfunc the program calls. */
  | { kind: 'kfunc'; name: string; since: string }
  /** A BPF helper the program calls (its kernel function, in BTF like every function). */
  | { kind: 'helper'; name: string; since: string }
  /** A kernel struct member the program reads (CO-RE would refuse the load without it). */
  | { kind: 'member'; struct: string; member: string; since: string };

export interface ProgramVariant<Program extends string = string> {
  /**
   * The program's name in the BPF object; null: on kernels this variant is chosen for, the group needs no
   * program at this hook (it gets the same data another way, as its other hooks' variants say).
   */
  program: Program | null;
  requires: readonly KernelRequirement[];
  /** What this variant does not do that the first variant of the hook does; absent for the first. */
  degradation?: string;
}

/** `Program`: the program names of the object (generated from its BTF: src/bpf/objects.generated.ts). */
export interface HookSpec<Program extends string = string> {
  /** Section-style name of the hook, e.g. tp_btf/tcp_retransmit_skb. */
  hook: string;
  /**
   * The name the program goes by in the agent's own metrics (flowtel.bpf.program), whichever variant
   * runs: the first variant's program name.
   */
  program: Program;
  variants: readonly ProgramVariant<Program>[];
  /** Attached by section (tracing programs); false for programs the group attaches itself (cgroup_skb). */
  attachBySection: boolean;
}

/** The BTF facts the choice reads; the native addon gives them for the running kernel. */
export interface KernelFacts {
  /** The argument types of a tracepoint for tp_btf programs, or null if the kernel has no such tracepoint. */
  tracepointArgs(name: string): readonly string[] | null;
  hasFunction(name: string): boolean;
  /** The member names of a kernel struct, or null if there is no such struct. */
  structMembers(name: string): readonly string[] | null;
}

export interface ChosenProgram {
  hook: HookSpec;
  variant: ProgramVariant;
}

export type HookPlan = { supported: true; programs: ChosenProgram[]; degradations: string[] } | { supported: false; reason: string };

/** Why `requirement` does not hold on this kernel, or undefined when it does. */
export function unmetRequirement(requirement: KernelRequirement, kernel: KernelFacts): string | undefined {
  switch (requirement.kind) {
    case 'tracepoint': {
      const args = kernel.tracepointArgs(requirement.tracepoint);
      if (args === null) return `this kernel has no tracepoint ${requirement.tracepoint} (Linux ${requirement.since}+)`;
      if (args.length >= requirement.args) return undefined;
      const what = requirement.argument ? `its ${ordinal(requirement.args)} argument, ${requirement.argument},` : `argument ${requirement.args}`;
      return `tracepoint ${requirement.tracepoint} has ${args.length} argument${args.length === 1 ? '' : 's'} here (${args.join(', ')}); ${what} arrived in Linux ${requirement.since}`;
    }
    case 'kfunc':
      return kernel.hasFunction(requirement.name) ? undefined : `this kernel has no kfunc ${requirement.name} (Linux ${requirement.since}+)`;
    case 'helper':
      return kernel.hasFunction(requirement.name) ? undefined : `this kernel has no BPF helper ${requirement.name} (Linux ${requirement.since}+)`;
    case 'member': {
      const members = kernel.structMembers(requirement.struct);
      if (members?.includes(requirement.member)) return undefined;
      return `this kernel's struct ${requirement.struct} has no member ${requirement.member} (Linux ${requirement.since}+)`;
    }
  }
}

/** Chooses, for each hook, the first variant whose requirements hold. */
export function planHooks(hooks: readonly HookSpec[], kernel: KernelFacts): HookPlan {
  const programs: ChosenProgram[] = [];
  const degradations: string[] = [];
  for (const hook of hooks) {
    let chosen: ProgramVariant | undefined;
    /** What each variant tried before the chosen one lacked, in order. */
    const unmetByVariant: string[][] = [];
    for (const variant of hook.variants) {
      const unmet = variant.requires.map((r) => unmetRequirement(r, kernel)).filter((m): m is string => m !== undefined);
      if (unmet.length === 0) {
        chosen = variant;
        break;
      }
      unmetByVariant.push(unmet);
    }
    // Unsupported: what even the least demanding variant (the last) lacks. Degraded: what the first lacks.
    if (!chosen) return { supported: false, reason: `${hook.hook}: ${unmetByVariant.at(-1)?.join('; ') ?? 'no program variant'}` };
    if (chosen.degradation) degradations.push(`${hook.hook}: ${chosen.degradation} (${unmetByVariant[0].join('; ')})`);
    programs.push({ hook, variant: chosen });
  }
  return { supported: true, programs, degradations };
}

/** The programs of `hooks` that are not chosen in `plan`: not to be loaded. */
export function unchosenPrograms(hooks: readonly HookSpec[], programs: readonly ChosenProgram[]): string[] {
  const chosen = new Set(chosenProgramNames(programs));
  return hooks.flatMap((h) => h.variants.flatMap((v) => (v.program === null || chosen.has(v.program) ? [] : [v.program])));
}

/** The programs `plan` loads (hooks whose chosen variant needs no program have none). */
export function chosenProgramNames(programs: readonly ChosenProgram[]): string[] {
  return programs.flatMap(({ variant }) => (variant.program === null ? [] : [variant.program]));
}

function ordinal(n: number): string {
  return n === 1 ? '1st' : n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}

/** The running kernel's facts, from the native addon (vmlinux BTF). */
export function kernelFactsFrom(addon: {
  kernelTracepointArgs(name: string): string[] | null;
  kernelHasFunction(name: string): boolean;
  kernelStructMembers(name: string): string[] | null;
}): KernelFacts {
  return {
    tracepointArgs: (name) => addon.kernelTracepointArgs(name),
    hasFunction: (name) => addon.kernelHasFunction(name),
    structMembers: (name) => addon.kernelStructMembers(name),
  };
}
