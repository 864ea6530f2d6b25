/** Names of a kernel enum's values, with the common prefix removed (SKB_DROP_REASON_NO_SOCKET → NO_SOCKET). */
export class EnumNames {
  private readonly byValue = new Map<number, string>();
  readonly values = new Map<string, number>();

  constructor(kernelEnum: Record<string, number>, prefix: string) {
    for (const [name, value] of Object.entries(kernelEnum)) {
      const short = name.startsWith(prefix) ? name.slice(prefix.length) : name;
      this.values.set(short, value);
      if (!this.byValue.has(value)) this.byValue.set(value, short);
    }
  }

  name(value: number): string {
    return this.byValue.get(value) ?? `UNKNOWN_${value}`;
  }
}
