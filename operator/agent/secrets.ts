/**
 * The peers' password Secrets, read through a watch of exactly the named Secrets (one list+watch per
 * Secret, `fieldSelector=metadata.name=NAME`, which an RBAC rule with resourceNames allows) instead of
 * a GET per sync. A changed, added or deleted Secret calls onChange, so the agent re-applies at once.
 * During an API outage the watch keeps the last value it saw: a control-plane outage changes nothing.
 */
import type { SecretRef } from '../plan/peers.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';

export type { SecretRef };
type SecretObj = KObj & { data?: Record<string, string> };

/** How long want() waits for a newly watched Secret's first list before the sync goes on without it. */
export const SECRET_SYNC_WAIT_MS = 5_000;

export class SecretWatcher {
  private readonly watches = new Map<string, Informer<SecretObj>>();

  constructor(
    private readonly rest: KubeRest,
    private readonly onChange: () => void,
  ) {}

  private static id(ref: { namespace: string; name: string }): string {
    return `${ref.namespace}/${ref.name}`;
  }

  /** Watches exactly these Secrets (starting new watches, stopping unneeded ones); waits briefly for new ones' first list. */
  async want(refs: SecretRef[]): Promise<void> {
    const ids = new Map(refs.map((r) => [SecretWatcher.id(r), r]));
    for (const [id, inf] of this.watches) {
      if (!ids.has(id)) {
        inf.stop();
        this.watches.delete(id);
      }
    }
    const fresh: Array<Promise<void>> = [];
    for (const [id, r] of ids) {
      if (this.watches.has(id)) continue;
      const path = `/api/v1/namespaces/${encodeURIComponent(r.namespace)}/secrets?fieldSelector=${encodeURIComponent(`metadata.name=${r.name}`)}`;
      const inf = new Informer<SecretObj>(this.rest, path, { onAdd: this.onChange, onUpdate: this.onChange, onDelete: this.onChange }, { name: `secret ${id}` });
      this.watches.set(id, inf.start());
      fresh.push(inf.waitForSync());
    }
    if (fresh.length) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(fresh), new Promise<void>((r) => (timer = setTimeout(r, SECRET_SYNC_WAIT_MS)))]);
      clearTimeout(timer);
    }
  }

  /**
   * The Secret's state for the peer's validity (plan/peers.ts): 'missing' and 'no-key' only once its
   * watch has listed; a Secret not seen yet (watch still starting, or forbidden) counts as 'ok', so a
   * slow or refused watch never removes a session (its password is then unknown, as before).
   */
  state(ref: SecretRef): 'ok' | 'missing' | 'no-key' {
    const inf = this.watches.get(SecretWatcher.id(ref));
    if (!inf?.hasSynced()) return 'ok';
    const sec = inf.get(SecretWatcher.id(ref));
    if (!sec) return 'missing';
    return sec.data?.[ref.key] === undefined ? 'no-key' : 'ok';
  }

  /** The password (the key's value, decoded), or undefined when the Secret or key is absent or not yet seen. */
  password(ref: SecretRef): string | undefined {
    const v = this.watches.get(SecretWatcher.id(ref))?.get(SecretWatcher.id(ref))?.data?.[ref.key];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  }

  stop(): void {
    for (const inf of this.watches.values()) inf.stop();
    this.watches.clear();
  }
}
