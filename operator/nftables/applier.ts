/**
 * The applier: keeps one private nftables table equal to the desired objects. The first sync (and
 * the first after a failed one) replaces the whole table in one transaction; later syncs write only
 * the delta against what this applier last committed, also in one transaction (`nft -f` is atomic:
 * a script that fails changes nothing). The kernel is behind `NftRunner`.
 */
import { run } from '../lib/exec.js';
import type { Ruleset } from '../policy/objects.js';
import { deltaScript, fullScript, type Script } from './script.js';
import { NftSession, SESSION_MAX_BYTES } from './session.js';

export interface NftRunner {
  /** Applies one `nft -f` script atomically; rejects with nft's error. */
  apply(script: string): Promise<void>;
  /** `nft -j list table inet NAME` (JSON text), or null when the table does not exist. */
  list(table: string): Promise<string | null>;
  /** Ends a long-lived nft process, if the runner keeps one. */
  close?(): void;
}

/**
 * The real nft binary, optionally inside a network namespace (`ip netns exec NS nft ...`). Scripts
 * up to SESSION_MAX_BYTES (every delta of a pod or policy change) go to one long-lived `nft -i`
 * (session.ts: no process start, warm cache); longer ones (a whole table) and every script with
 * `session: false` to a fresh `nft -f -`. Both are one atomic transaction per script.
 */
export function nftRunner(opts: { netns?: string; timeoutMs?: number; session?: boolean } = {}): NftRunner {
  const pre = opts.netns ? ['ip', 'netns', 'exec', opts.netns] : [];
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const session = opts.session === false ? undefined : new NftSession(pre, timeoutMs);
  return {
    async apply(script) {
      if (session?.usable && script.length <= SESSION_MAX_BYTES) await session.apply(script);
      else await run([...pre, 'nft', '-f', '-'], { input: script, timeoutMs });
    },
    close: () => session?.close(),
    async list(table) {
      const r = await run([...pre, 'nft', '-j', 'list', 'table', 'inet', table], { allowFail: true, timeoutMs });
      return r.code === 0 ? r.stdout : null;
    },
  };
}

export interface SyncResult extends Script {
  /** Whole sync; of which diffMs building the script and nftMs in nft. */
  ms: number;
  diffMs: number;
  nftMs: number;
}

export class PolicyTableApplier {
  private applied: Ruleset | null = null;
  constructor(private readonly nft: NftRunner) {}

  /** What was last committed (null before the first sync or after a failed one). */
  get tracked(): Ruleset | null {
    return this.applied;
  }

  /** Makes the table equal to `desired` (treated as immutable from here on) in one transaction. */
  async sync(desired: Ruleset): Promise<SyncResult> {
    const t0 = performance.now();
    const script = this.applied && this.applied.table === desired.table ? deltaScript(this.applied, desired) : fullScript(desired);
    const t1 = performance.now();
    if (script.statements > 0) {
      try {
        await this.nft.apply(script.text);
      } catch (e) {
        this.applied = null; // unknown state: the next sync replaces the whole table
        throw e;
      }
    }
    this.applied = desired;
    const t2 = performance.now();
    return { ...script, ms: t2 - t0, diffMs: t1 - t0, nftMs: t2 - t1 };
  }

  /**
   * Does the kernel's table still look like what was committed? Compares object names, set and map
   * sizes and rule counts per chain (not contents): catches a table deleted, a chain flushed or
   * elements removed behind our back. On drift the applier forgets its record, so the next sync
   * replaces the whole table.
   */
  async checkDrift(): Promise<string | null> {
    const rs = this.applied;
    if (!rs) return null;
    const text = await this.nft.list(rs.table);
    const drift = text === null ? `table inet ${rs.table} is gone` : driftOf(rs, text);
    if (drift) this.applied = null;
    return drift;
  }

  /** Forget what was applied, so the next sync rewrites the table (e.g. after someone flushed it). */
  reset(): void {
    this.applied = null;
  }

  /** Removes the table (agent shutdown with policy enforcement turned off). */
  async remove(table: string): Promise<void> {
    await this.nft.apply(`add table inet ${table}\ndelete table inet ${table}\n`);
    this.applied = null;
  }
}

/** The first difference between a ruleset and `nft -j list table` of it (names, sizes, rule counts), or null. */
export function driftOf(rs: Ruleset, json: string): string | null {
  let objs: Array<Record<string, { name?: string; chain?: string; elem?: unknown[] }>>;
  try {
    objs = (JSON.parse(json) as { nftables?: typeof objs }).nftables ?? [];
  } catch {
    return 'unreadable nft -j output';
  }
  const seen = new Map<string, number>();
  for (const o of objs) {
    const [kind, body] = Object.entries(o)[0] ?? [];
    if (!body) continue;
    if (kind === 'set' || kind === 'map') seen.set(`${kind} ${body.name}`, body.elem?.length ?? 0);
    else if (kind === 'chain') seen.set(`chain ${body.name}`, seen.get(`chain ${body.name}`) ?? 0);
    else if (kind === 'rule') seen.set(`chain ${body.chain}`, (seen.get(`chain ${body.chain}`) ?? 0) + 1);
  }
  const want = new Map<string, number>([
    ...Object.values(rs.sets).map((s) => [`set ${s.name}`, s.elements.length] as const),
    ...Object.values(rs.maps).map((m) => [`map ${m.name}`, Object.keys(m.elements).length] as const),
    ...Object.values(rs.chains).map((c) => [`chain ${c.name}`, c.rules.length] as const),
  ]);
  for (const [k, n] of want) if (seen.get(k) !== n) return `${k}: ${seen.has(k) ? `${seen.get(k)} in the kernel, ${n} committed` : 'missing'}`;
  for (const k of seen.keys()) if (!want.has(k)) return `${k}: not ours`;
  return null;
}
