// A classic-BPF interpreter for the instructions a seccomp filter may use, run over a synthetic
// `struct seccomp_data`, so that compiled filters are tested by what they decide, not by shape.
// Anything the kernel's seccomp_check_filter() would refuse throws instead of guessing.

// Opcode fields from include/uapi/linux/filter.h (via bpf_common.h).
const BPF_LD = 0x00;
const BPF_LDX = 0x01;
const BPF_ST = 0x02;
const BPF_STX = 0x03;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_MISC = 0x07;
const BPF_W = 0x00;
const BPF_IMM = 0x00;
const BPF_ABS = 0x20;
const BPF_MEM = 0x60;
const BPF_LEN = 0x80;
const BPF_K = 0x00;
const BPF_X = 0x08;
const BPF_A = 0x10;
const BPF_TAX = 0x00;
const BPF_TXA = 0x80;
const BPF_MEMWORDS = 16;
const BPF_MAXINSNS = 4096;

/** `sizeof(struct seccomp_data)`. */
export const SECCOMP_DATA_SIZE = 64;

/** One classic BPF instruction (`struct sock_filter`). */
export interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** The fields of `struct seccomp_data`; missing ones are zero. */
export interface SeccompData {
  /** The syscall number (`int`). */
  nr: number;
  /** The `AUDIT_ARCH_*` value (`__u32`). */
  arch: number;
  /** `instruction_pointer` (`__u64`). */
  instructionPointer?: bigint;
  /** `args[0..5]` (`__u64` each); numbers are taken as unsigned. */
  args?: readonly (bigint | number)[];
}

/** Thrown when a program does something a seccomp filter may not. */
export class BpfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BpfError";
  }
}

/**
 * Lays out `struct seccomp_data` as the kernel gives it to a filter (little-endian).
 * @param data The fields.
 * @returns 64 bytes.
 */
export function seccompData(data: SeccompData): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(SECCOMP_DATA_SIZE);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, data.nr, true);
  view.setUint32(4, data.arch >>> 0, true);
  view.setBigUint64(8, data.instructionPointer ?? 0n, true);
  const args = data.args ?? [];
  if (args.length > 6) throw new RangeError(`seccomp_data has 6 arguments, not ${args.length}`);
  args.forEach((arg, i) => view.setBigUint64(16 + 8 * i, BigInt.asUintN(64, BigInt(arg)), true));
  return bytes;
}

/**
 * Checks a program as the kernel does before running it: length, known opcodes, loads inside
 * `seccomp_data`, jumps inside the program, scratch memory in range, and a final `RET`.
 * @param program The instructions.
 * @throws {BpfError} When the kernel would refuse it.
 */
export function validate(program: readonly Instruction[]): void {
  if (program.length === 0 || program.length > BPF_MAXINSNS) {
    throw new BpfError(`Program length ${program.length} is outside 1..${BPF_MAXINSNS}`);
  }
  program.forEach((ins, pc) => {
    decode(ins, pc);
    const cls = ins.code & 0x07;
    if (cls === BPF_JMP) {
      const targets = (ins.code & 0xf0) === 0x00 ? [ins.k] : [ins.jt, ins.jf];
      for (const offset of targets) {
        if (pc + 1 + offset >= program.length) {
          throw new BpfError(`Jump at ${pc} by ${offset} leaves the program`);
        }
      }
    }
  });
  if ((program[program.length - 1].code & 0x07) !== BPF_RET) {
    throw new BpfError("The last instruction is not a RET");
  }
}

type Op = (state: State) => number | undefined;
interface State {
  a: number;
  x: number;
  mem: number[];
  data: DataView;
  pc: number;
}

function decode(ins: Instruction, pc: number): Op {
  const { code, k, jt, jf } = ins;
  const bad = (why: string) => new BpfError(`Instruction ${pc} (code 0x${hex(code)}): ${why}`);
  if (!isU8(jt) || !isU8(jf) || !isU32(k) || !Number.isInteger(code) || code < 0 || code > 0xffff) {
    throw bad(`fields out of range (jt ${jt}, jf ${jf}, k ${k})`);
  }
  const cls = code & 0x07;
  const memIndex = () => {
    if (k >= BPF_MEMWORDS) throw bad(`scratch memory index ${k} out of range`);
    return k;
  };
  switch (cls) {
    case BPF_LD:
    case BPF_LDX: {
      const load = (value: (s: State) => number): Op =>
        cls === BPF_LD ? (s) => void (s.a = value(s)) : (s) => void (s.x = value(s));
      if (code === (BPF_LD | BPF_W | BPF_ABS)) {
        // seccomp only allows aligned 32-bit loads inside struct seccomp_data.
        if (k >= SECCOMP_DATA_SIZE || k & 3) throw bad(`load at offset ${k} outside seccomp_data`);
        return load((s) => s.data.getUint32(k, true));
      }
      if (code === (cls | BPF_W | BPF_LEN)) return load(() => SECCOMP_DATA_SIZE);
      if (code === (cls | BPF_IMM)) return load(() => k);
      if (code === (cls | BPF_W | BPF_MEM)) {
        const i = memIndex();
        return load((s) => s.mem[i]);
      }
      throw bad("load mode not allowed in seccomp");
    }
    case BPF_ST:
    case BPF_STX: {
      if (code !== cls) throw bad("store mode not allowed");
      const i = memIndex();
      return cls === BPF_ST ? (s) => void (s.mem[i] = s.a) : (s) => void (s.mem[i] = s.x);
    }
    case BPF_ALU: {
      const op = code & 0xf0;
      const src = code & 0x08;
      if ((code & ~0xf8) !== BPF_ALU) throw bad("unknown ALU encoding");
      const operand = (s: State) => (src === BPF_X ? s.x : k);
      if (op === 0x80) {
        if (src !== BPF_K) throw bad("NEG takes no operand");
        return (s) => void (s.a = (-s.a) >>> 0);
      }
      if (src === BPF_K && (op === 0x30 || op === 0x90) && k === 0) throw bad("division by zero");
      const alu: Record<number, (a: number, b: number) => number> = {
        0x00: (a, b) => a + b,
        0x10: (a, b) => a - b,
        0x20: (a, b) => Math.imul(a, b),
        0x30: (a, b) => Math.floor(a / b),
        0x40: (a, b) => a | b,
        0x50: (a, b) => a & b,
        0x60: (a, b) => (b >= 32 ? 0 : a << b),
        0x70: (a, b) => (b >= 32 ? 0 : a >>> b),
        0x90: (a, b) => a % b,
        0xa0: (a, b) => a ^ b,
      };
      const f = alu[op];
      if (!f) throw bad("unknown ALU operation");
      return (s) => {
        const b = operand(s);
        // Division by a zero X ends the filter with 0, as the kernel's interpreter does.
        if ((op === 0x30 || op === 0x90) && b === 0) return 0;
        s.a = f(s.a, b) >>> 0;
      };
    }
    case BPF_JMP: {
      const op = code & 0xf0;
      const src = code & 0x08;
      if ((code & ~0xf8) !== BPF_JMP) throw bad("unknown JMP encoding");
      if (op === 0x00) {
        if (src !== BPF_K) throw bad("JA takes no X");
        return (s) => void (s.pc += k);
      }
      const cmp: Record<number, (a: number, b: number) => boolean> = {
        0x10: (a, b) => a === b,
        0x20: (a, b) => a > b,
        0x30: (a, b) => a >= b,
        0x40: (a, b) => (a & b) !== 0,
      };
      const f = cmp[op];
      if (!f) throw bad("unknown jump condition");
      return (s) => void (s.pc += f(s.a, src === BPF_X ? s.x : k) ? jt : jf);
    }
    case BPF_RET: {
      if (code === (BPF_RET | BPF_K)) return () => k;
      if (code === (BPF_RET | BPF_A)) return (s) => s.a;
      throw bad("RET of anything but K or A");
    }
    case BPF_MISC: {
      if (code === (BPF_MISC | BPF_TAX)) return (s) => void (s.x = s.a);
      if (code === (BPF_MISC | BPF_TXA)) return (s) => void (s.a = s.x);
      throw bad("unknown MISC operation");
    }
  }
  throw bad("unknown instruction class");
}

/**
 * Runs a seccomp program on one syscall, as the kernel would.
 * @param program The instructions; checked with `validate` first.
 * @param data The syscall, as `seccompData` lays it out, or its fields.
 * @returns The filter's 32-bit return value (`SECCOMP_RET_*` | data).
 * @throws {BpfError} When the program is one the kernel would refuse.
 */
export function runBpf(
  program: readonly Instruction[],
  data: Uint8Array | SeccompData,
): number {
  validate(program);
  const ops = program.map(decode);
  const bytes = data instanceof Uint8Array ? data : seccompData(data);
  if (bytes.length !== SECCOMP_DATA_SIZE) {
    throw new BpfError(`seccomp_data is ${SECCOMP_DATA_SIZE} bytes, not ${bytes.length}`);
  }
  const state: State = {
    a: 0,
    x: 0,
    mem: new Array(BPF_MEMWORDS).fill(0),
    data: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    pc: 0,
  };
  while (state.pc < ops.length) {
    const op = ops[state.pc++];
    const result = op(state);
    if (result !== undefined) return result >>> 0;
  }
  // validate() makes this unreachable: every path ends in RET or jumps to one.
  throw new BpfError("Fell off the end of the program");
}

function isU8(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xff;
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}
