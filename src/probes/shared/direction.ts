/** enum flowtel_direction values (from the object's BTF) → network.io.direction. */
import type { LoadedObject, ObjectNames } from '../../bpf/object-names';

export class Directions {
  readonly transmit: number;
  readonly receive: number;

  /** Any object whose BTF has enum flowtel_direction. */
  constructor(object: LoadedObject<ObjectNames & { enums: { flowtel_direction: 'FLOWTEL_DIRECTION_TRANSMIT' | 'FLOWTEL_DIRECTION_RECEIVE' } }>) {
    const values = object.objectEnum('flowtel_direction');
    this.transmit = values.FLOWTEL_DIRECTION_TRANSMIT;
    this.receive = values.FLOWTEL_DIRECTION_RECEIVE;
  }

  /** 'transmit' | 'receive' (semantic-convention values), or undefined. */
  name(value: number): 'transmit' | 'receive' | undefined {
    return value === this.transmit ? 'transmit' : value === this.receive ? 'receive' : undefined;
  }
}
