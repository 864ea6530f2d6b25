/**
 * Reads a file the operator named (config file, kubeconfig, PEM files) with
 * bounds: only a regular file, only up to a size. A device such as /dev/zero
 * would be read until memory runs out, and opening a FIFO blocks until a
 * writer comes; both are refused by name before anything is read.
 */
import fs from 'node:fs';
import { ConfigError } from './schema';

export interface InputFile {
  /** The config field or variable that named the file, for the error. */
  field: string;
  /** Where that name came from (a flag, a variable, a config file). */
  source: string;
  /** What the file should hold, for the error: "a YAML or JSON config file". */
  what: string;
  maxBytes: number;
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

export function readInputFile(file: string, input: InputFile): Buffer {
  const refuse = (problem: string): never => {
    throw new ConfigError(input.field, file, `${input.what}, a regular file of at most ${input.maxBytes} bytes (${problem})`, input.source);
  };
  let fd: number;
  try {
    // Non-blocking, so that a path swapped for a FIFO after any check cannot hang the open.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    return refuse(`it cannot be opened: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return refuse(`it is ${kindOf(stat)}`);
    if (stat.size > input.maxBytes) return refuse(`it has ${stat.size} bytes`);
    const buffer = Buffer.alloc(input.maxBytes + 1);
    let length = 0;
    for (;;) {
      const read = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length > input.maxBytes) return refuse(`it grew past the limit while being read`);
    }
    return buffer.subarray(0, length);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    return refuse(`reading it failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}
