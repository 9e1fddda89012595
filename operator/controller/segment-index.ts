/**
 * Which nodes share an L2 segment (pure). A node's segment keys come from plan.segmentKey (one per
 * family, e.g. "subnet:10.0.1.0/24" or "label:rack-1"); the nodes with a key in common are that
 * segment's members, whose blocks and addresses its L2Segments hold (segment-reconciler.ts).
 */
export class SegmentIndex {
  private readonly segments = new Map<string, Set<string>>();
  private readonly nodeSegments = new Map<string, string[]>();

  /**
   * Records the node's keys. Returns the keys it left (their segments lost a member), else nothing.
   */
  update(name: string, keys: string[]): string[] {
    const old = this.nodeSegments.get(name) ?? [];
    const left = old.filter((k) => !keys.includes(k));
    for (const k of old) if (!keys.includes(k)) this.segments.get(k)?.delete(name);
    for (const k of keys) {
      let s = this.segments.get(k);
      if (!s) this.segments.set(k, (s = new Set()));
      s.add(name);
    }
    if (keys.length) this.nodeSegments.set(name, keys);
    else this.nodeSegments.delete(name);
    return [...new Set(left)];
  }

  remove(name: string): void {
    for (const k of this.nodeSegments.get(name) ?? []) this.segments.get(k)?.delete(name);
    this.nodeSegments.delete(name);
  }

  /** The node's segment keys (as last recorded). */
  keysOf(name: string): string[] {
    return this.nodeSegments.get(name) ?? [];
  }

  /** The nodes with this segment key. */
  membersOf(key: string): string[] {
    return [...(this.segments.get(key) ?? [])];
  }

  /** Every segment key with a member. */
  keys(): string[] {
    return [...this.segments].filter(([, m]) => m.size > 0).map(([k]) => k);
  }

  /** Subnets some node's agent reported (segment keys `subnet:…` with members). */
  knownSubnets(): string[] {
    const out: string[] = [];
    for (const [k, members] of this.segments) if (members.size && k.startsWith('subnet:')) out.push(k.slice('subnet:'.length));
    return out;
  }
}
