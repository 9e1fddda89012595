/**
 * Which nodes share an L2 segment (pure). A node's segment keys come from plan.segmentKey (one per
 * family, e.g. "subnet:10.0.1.0/24" or a label value); nodes with a key in common are host-gw
 * neighbours and must be re-planned together when one of them changes.
 */
export class SegmentIndex {
  private readonly segments = new Map<string, Set<string>>();
  private readonly nodeSegments = new Map<string, string[]>();

  /**
   * Records the node's keys. Returns the other members of its old and new segments when the keys
   * changed (they must be re-planned), else nothing.
   */
  update(name: string, keys: string[]): string[] {
    const old = this.nodeSegments.get(name) ?? [];
    const affected = new Set<string>();
    if (old.length !== keys.length || old.some((k, i) => k !== keys[i])) {
      for (const k of new Set([...old, ...keys])) for (const m of this.segments.get(k) ?? []) if (m !== name) affected.add(m);
    }
    for (const k of old) if (!keys.includes(k)) this.segments.get(k)?.delete(name);
    for (const k of keys) {
      let s = this.segments.get(k);
      if (!s) this.segments.set(k, (s = new Set()));
      s.add(name);
    }
    if (keys.length) this.nodeSegments.set(name, keys);
    else this.nodeSegments.delete(name);
    return [...affected];
  }

  remove(name: string): void {
    for (const k of this.nodeSegments.get(name) ?? []) this.segments.get(k)?.delete(name);
    this.nodeSegments.delete(name);
  }

  /** Every node sharing a segment with `name`, not itself. */
  othersOf(name: string): string[] {
    const out = new Set<string>();
    for (const k of this.nodeSegments.get(name) ?? []) for (const m of this.segments.get(k) ?? []) if (m !== name) out.add(m);
    return [...out];
  }

  /** Subnets some node's agent reported (segment keys `subnet:…` with members). */
  knownSubnets(): string[] {
    const out: string[] = [];
    for (const [k, members] of this.segments) if (members.size && k.startsWith('subnet:')) out.push(k.slice('subnet:'.length));
    return out;
  }
}
