/**
 * Per BGPPeer, the nodes whose plan selected it and the nodes on which it lost a duplicate-address
 * conflict (pure). The node reconciler records; the peer reconciler reads them for the peer's status.
 */
export class PeerIndex {
  private readonly selected = new Map<string, Set<string>>();
  private readonly conflicts = new Map<string, Set<string>>();

  private static set(m: Map<string, Set<string>>, peer: string, node: string, on: boolean): boolean {
    const s = m.get(peer) ?? new Set<string>();
    if (on === s.has(node)) return false;
    if (on) s.add(node);
    else s.delete(node);
    m.set(peer, s);
    return true;
  }

  /** Records whether `node`'s plan selects `peer`; true when that changed. */
  setSelected(peer: string, node: string, on: boolean): boolean {
    return PeerIndex.set(this.selected, peer, node, on);
  }

  /** Records whether `peer` lost an address conflict on `node`; true when that changed. */
  setConflict(peer: string, node: string, on: boolean): boolean {
    return PeerIndex.set(this.conflicts, peer, node, on);
  }

  selectedBy(peer: string): string[] {
    return [...(this.selected.get(peer) ?? [])];
  }

  /** Nodes where the peer lost a conflict, sorted. */
  conflictsOf(peer: string): string[] {
    return [...(this.conflicts.get(peer) ?? [])].sort();
  }

  /** Forgets a deleted node; returns the peers whose counts changed (their status must be redone). */
  forgetNode(node: string): string[] {
    const changed = new Set<string>();
    for (const m of [this.selected, this.conflicts]) for (const [peer, s] of m) if (s.delete(node)) changed.add(peer);
    return [...changed].sort();
  }

  forgetPeer(peer: string): void {
    this.selected.delete(peer);
    this.conflicts.delete(peer);
  }
}
