/**
 * The supervisor's side of the private channel to its child: a pipe the child reports on (a
 * line each: started, exec, error) and the sealed plan it reads, both reached by the child
 * through `/proc/SUPERVISOR/fd/N` and by nothing else (see ffi/descriptors.ts).
 *
 * @module
 */

import { close, makePipe, type Pipe, sealedMemoryFile, writeAll } from "../ffi/descriptors.ts";
import { CHANNEL } from "./supervised_child.ts";

/** The supervisor's side of one child's channel. */
export class ChildChannel {
  /** The plan's descriptor number in this process, for the child's command line. */
  readonly planFd: number;
  /** The channel's write end's number in this process, for the child's command line. */
  readonly writeFd: number;
  /** The answer pipe's read end's number in this process (with `answers`), else -1. */
  readonly answerFd: number;
  readonly #answers: Pipe | undefined;
  readonly #reader: Deno.FsFile;
  readonly #lines: string[] = [];
  readonly #done: Promise<void>;
  #ours = true;

  /**
   * Makes the pipe and the plan file.
   * @param plan The plan's bytes.
   * @param onLine Called with each line the child reports, as it arrives.
   */
  constructor(
    plan: Uint8Array<ArrayBuffer>,
    onLine: (line: string) => void = () => {},
    answers = false,
  ) {
    this.planFd = sealedMemoryFile("llmx-sandbox-plan", plan);
    let pipe;
    try {
      pipe = makePipe();
      this.#answers = answers ? makePipe() : undefined;
    } catch (error) {
      close(this.planFd);
      if (pipe) { for (const fd of [pipe.read, pipe.write]) close(fd); }
      throw error;
    }
    this.writeFd = pipe.write;
    this.answerFd = this.#answers?.read ?? -1;
    try {
      // A file of our own on the read end, so that Deno reads it without blocking the engine.
      this.#reader = Deno.openSync(`/proc/self/fd/${pipe.read}`);
    } catch (error) {
      this.releaseChildEnds();
      throw error;
    } finally {
      close(pipe.read);
    }
    this.#done = this.#read(onLine);
  }

  async #read(onLine: (line: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of this.#reader.readable) {
        pending += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = pending.indexOf("\n")) !== -1) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          this.#lines.push(line);
          // The child has opened both: ours are no longer needed, and the channel ends (EOF)
          // when the child's end closes at execve or exit.
          if (line === CHANNEL.started) this.releaseChildEnds();
          onLine(line);
        }
      }
    } catch {
      // A read error ends the report: what arrived is what the parent judges.
    }
    if (pending) this.#lines.push(pending);
  }

  /**
   * Closes this process's copies of the ends the child opens. Called when the child says it
   * started, and when it has ended (it may have died before opening them).
   */
  releaseChildEnds(): void {
    if (!this.#ours) return;
    this.#ours = false;
    close(this.writeFd);
    close(this.planFd);
    if (this.#answers) close(this.#answers.read);
  }

  /**
   * Sends the child one answer line.
   * @param line The answer, without a newline.
   */
  answer(line: string): void {
    if (!this.#answers) throw new Error("This channel takes no answers");
    writeAll(this.#answers.write, new TextEncoder().encode(`${line}\n`));
  }

  /** Closes the answer pipe's write end: a child still waiting reads the end of it. */
  closeAnswers(): void {
    if (this.#answers && this.#answers.write !== -1) {
      close(this.#answers.write);
      this.#answers.write = -1;
    }
  }

  /**
   * Everything the child said, once its end is closed.
   * @returns The lines.
   */
  async lines(): Promise<string[]> {
    this.releaseChildEnds();
    this.closeAnswers();
    await this.#done;
    return this.#lines;
  }
}
