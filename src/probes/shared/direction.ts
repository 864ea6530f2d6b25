/** enum flowtel_direction values (from the object's BTF) → network.io.direction. */
import type { NativeBpfObject } from '../../bpf/native';

export class Directions {
  readonly transmit: number;
  readonly receive: number;

  constructor(object: NativeBpfObject) {
    const values = object.objectEnum('flowtel_direction');
    this.transmit = values.FLOWTEL_DIRECTION_TRANSMIT;
    this.receive = values.FLOWTEL_DIRECTION_RECEIVE;
  }

  /** 'transmit' | 'receive' (semantic-convention values), or undefined. */
  name(value: number): 'transmit' | 'receive' | undefined {
    return value === this.transmit ? 'transmit' : value === this.receive ? 'receive' : undefined;
  }
}
