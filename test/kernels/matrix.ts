/**
 * The kernels of the CI matrix, oldest first: the three CI boots in VMs
 * (Debian's packages, scripts/debian-kernel.sh names the same series) and the
 * CI machine's own. docs/kernels.md has one column for each.
 */
export interface MatrixKernel {
  series: string;
  /** Where the kernel comes from, as the doc says it. */
  source: string;
  /** Booted in a VM (true), or the machine's own kernel. */
  vm: boolean;
}

export const KERNEL_MATRIX: readonly MatrixKernel[] = [
  { series: '5.10', source: 'Debian 11, bullseye', vm: true },
  { series: '6.1', source: 'Debian 12, bookworm', vm: true },
  { series: '6.12', source: 'Debian 12, bookworm-security', vm: true },
  { series: '6.18', source: "the CI machine's own kernel", vm: false },
];

export const VM_KERNELS = KERNEL_MATRIX.filter((k) => k.vm).map((k) => k.series);
