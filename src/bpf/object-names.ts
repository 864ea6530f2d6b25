/**
 * The names a BPF object defines, as string-literal types generated from its
 * BTF (./objects.generated.ts), and the two views of an object that use them:
 * an opened object (what may be set before load) and a loaded one (what may be
 * read after). Both are types over the same native object: no code, only what
 * tsc checks.
 */
import type { MapInfo, MapRows, StructLayoutInfo } from './native';

export interface ObjectNames {
  file: string;
  maps: string;
  programs: string;
  globals: string;
  structs: string;
  /** Each enum our sources define, with the names of its members. */
  enums: Record<string, string>;
}

/** An object before load: globals, map sizes and layouts to check them against. */
export interface OpenedObject<N extends ObjectNames> {
  setGlobal(name: N['globals'], value: Buffer): void;
  setMapMaxEntries(name: N['maps'], entries: number): void;
  structLayout(name: N['structs']): StructLayoutInfo;
  objectEnum<E extends keyof N['enums'] & string>(name: E): Record<N['enums'][E], number>;
}

/** An object after load: its maps and its own types. */
export interface LoadedObject<N extends ObjectNames> {
  mapInfo(name: N['maps']): MapInfo;
  mapReadAll(name: N['maps']): MapRows;
  mapReadEach(name: N['maps'], keys: Buffer, values: Buffer, onBatch: (count: number) => void): number;
  mapDeleteKeys(name: N['maps'], keys: Buffer): number;
  mapUpdate(name: N['maps'], key: Buffer, value: Buffer): void;
  structLayout(name: N['structs']): StructLayoutInfo;
  objectEnum<E extends keyof N['enums'] & string>(name: E): Record<N['enums'][E], number>;
  /** Runs a loaded program once (BPF_PROG_TEST_RUN); returns its return value. */
  programTestRun(name: N['programs']): number;
  /** Attaches a loaded program by its section for a while; closing the object detaches it too. Returns a link id. */
  attach(name: N['programs']): number;
  detach(linkId: number): void;
}

/** Any object, as code shared by every group sees it (a typed object is one, method by method). */
export type AnyLoadedObject = LoadedObject<ObjectNames>;
