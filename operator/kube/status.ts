/**
 * The one status writer, shared by the controller and the agent: server-side apply of a kind's status
 * subresource under one field manager, with metav1.Condition merging (setConditions) so each writer
 * owns only its condition types. `writeIfChanged` skips the write when the object already shows what
 * would be written; the agent decides when to write itself (heartbeat) and calls `write`.
 */
import { API_PATH, API_VERSION, type Condition } from '../api/common.js';
import { sameConditions, setConditions, type ConditionInput } from '../api/conditions.js';
import { stableStringify } from '../lib/stable.js';
import type { KObj } from './informer.js';
import type { KubeRest } from './rest.js';

/** The kind a status belongs to: what api/kinds.ts's KindDef carries. */
export interface StatusKind {
  kind: string;
  plural: string;
}

export type WithStatus = KObj & { status?: ({ conditions?: Condition[] } & Record<string, unknown>) | undefined };

/**
 * The conditions after applying `updates` to those of the same types on `obj` (others are not ours).
 * `owned` widens "ours" to types this writer may stop sending (server-side apply then removes them).
 */
export function mergeConditions(obj: WithStatus, updates: ConditionInput[], generation: number | undefined, now: Date, owned: readonly string[] = []): { existing: Condition[]; next: Condition[] } {
  const sent = new Set(updates.map((u) => u.type));
  const types = new Set([...sent, ...owned]);
  const existing = (obj.status?.conditions ?? []).filter((c) => types.has(c.type));
  return { existing, next: setConditions(existing.filter((c) => sent.has(c.type)), updates, generation, now) };
}

export class StatusWriter {
  constructor(
    private readonly rest: KubeRest,
    readonly fieldManager: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Applies `status` (only the fields this manager owns) to kind/name's status subresource. */
  async write(kind: StatusKind, name: string, status: Record<string, unknown>): Promise<void> {
    await this.rest.apply(
      `${API_PATH}/${kind.plural}/${encodeURIComponent(name)}/status`,
      { apiVersion: API_VERSION, kind: kind.kind, metadata: { name }, status },
      this.fieldManager,
    );
  }

  /** The conditions to write, and whether they or the extra fields differ from what the object shows. */
  private compare(obj: WithStatus, updates: ConditionInput[], generation: number | undefined, extra: Record<string, unknown>, owned: readonly string[]): { changed: boolean; next: Condition[] } {
    const { existing, next } = mergeConditions(obj, updates, generation, this.now(), owned);
    const changed = !sameConditions(existing, next) || !Object.entries(extra).every(([k, v]) => stableStringify(obj.status?.[k]) === stableStringify(v));
    return { changed, next };
  }

  /** Whether writeIfChanged would write: the object does not show these conditions and fields yet. */
  differs(obj: WithStatus, updates: ConditionInput[], generation: number | undefined, extra: Record<string, unknown> = {}, owned: readonly string[] = []): boolean {
    return this.compare(obj, updates, generation, extra, owned).changed;
  }

  /**
   * Writes these conditions (and extra status fields) when they differ from what the object shows.
   * Returns whether anything was written. Condition types in `owned` but not in `updates` are removed.
   */
  async writeIfChanged(kind: StatusKind, obj: WithStatus, updates: ConditionInput[], generation: number | undefined, extra: Record<string, unknown> = {}, owned: readonly string[] = []): Promise<boolean> {
    const { changed, next } = this.compare(obj, updates, generation, extra, owned);
    if (!changed) return false;
    await this.write(kind, obj.metadata.name!, { ...extra, conditions: next });
    return true;
  }
}
