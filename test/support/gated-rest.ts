/**
 * A FakeRest whose lists of chosen collections wait until released: a watch that has not listed yet
 * (an apiserver slow to answer, or an agent just restarted), for as long as a test needs.
 */
import { FakeRest } from './fakes.js';

export class GatedRest extends FakeRest {
  private gate: { test: (path: string) => boolean; open: Promise<void>; release: () => void } | undefined;

  /** Holds every list whose path passes `test` (default: all) until release(). */
  hold(test: (path: string) => boolean = () => true): void {
    let release!: () => void;
    const open = new Promise<void>((r) => (release = r));
    this.gate = { test, open, release };
  }

  release(): void {
    this.gate?.release();
    this.gate = undefined;
  }

  override async get<T>(path: string): Promise<T> {
    if (this.gate?.test(path)) await this.gate.open;
    return super.get<T>(path);
  }
}
