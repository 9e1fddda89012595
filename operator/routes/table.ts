/**
 * Host-gw routes in the kernel's main table, tagged with our own route protocol number.
 *
 * Ownership: we list, replace and delete only routes carrying our protocol number. `ip route del ...
 * proto N` is matched by the kernel on the protocol too (v4 and v6), so a delete can never hit another
 * daemon's route. `ip route replace` however matches on destination (+ metric / TOS) only and WOULD
 * overwrite someone else's route to the same prefix, so before adding we look at every route to that
 * destination in the main table: if one with another protocol exists (static, kernel, bgp, ...) we leave
 * it alone and report a per-route `conflict` error instead of clobbering it. (That check and the
 * replace are not atomic: a route another daemon adds in between can still be replaced.)
 *
 * Mechanics: one persistent `ip -force -batch -` child per table, never a process per route. With
 * -force, ip keeps going after a failing line and reports it on stderr as "<message>\nCommand failed
 * -:<line>", where <line> counts every line the process has read. After each batch we send a marker
 * line (an unknown ip "object": it fails at once, has no side effects and never reaches the kernel);
 * its own "Command failed -:<marker>" on the same stderr stream, in order after every earlier error, is
 * the signal that the batch is done. Line numbers in between map back to routes.
 *
 * Some malformed arguments (an address that does not parse, a v6 gateway on a v4 route, a /33) make ip
 * exit outright instead of failing the line, so every route is validated here first and bad ones come
 * back as per-route errors without reaching ip. If the child dies anyway (killed, OOM), it is respawned
 * and the batch re-sent once (replace is idempotent; a delete that finds nothing on the re-send counts
 * as done).
 */
import { normalizeIP } from '../lib/ip.js';
import { IpBatch } from './ip-batch.js';
import { IpReader } from './ip-reader.js';
import { checkRoute, compareKeys, jsonDst, prep, sortRoutes, validateProtocol, type IpRouteTable, type KernelRoute, type RouteError } from './model.js';

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
}

export interface IpRouteTableOptions {
  protocol: number;
  /** Run in this network namespace (`ip -n NS`), for tests and the lab. */
  netns?: string;
  /** Per batch; default 30 s + 2 ms a line. On expiry the child is killed and the batch re-sent once. */
  timeoutMs?: number;
  /** Called when a batch has been written to the child (attempt 2 = re-sent after the child died). */
  onBatch?: (e: { pid: number | undefined; lines: number; attempt: number }) => void;
}

export function createIpRouteTable(opts: IpRouteTableOptions): IpRouteTable {
  validateProtocol(opts.protocol);
  const proto = opts.protocol;
  const nsArgs = opts.netns ? ['-n', opts.netns] : [];
  const batch = new IpBatch([...nsArgs, '-force', '-batch', '-']);
  let closed = false;
  let chain: Promise<unknown> = Promise.resolve();

  const readers = { 4: new IpReader([...nsArgs, '-N', '-j', '-4', '-batch', '-']), 6: new IpReader([...nsArgs, '-N', '-j', '-6', '-batch', '-']) };
  const show = async (fam: 4 | 6, onlyOurs: boolean): Promise<RouteJson[]> => {
    const line = await readers[fam].query(`route show table main${onlyOurs ? ` proto ${proto}` : ''}`);
    return JSON.parse(line.trim() || '[]') as RouteJson[];
  };

  /** dst → protocols (numbers as text) of every main-table route to it that is not ours. */
  const foreignRoutes = async (): Promise<Map<string, string[]>> => {
    const out = new Map<string, string[]>();
    const ours = String(proto);
    const [v4, v6] = await Promise.all([show(4, false), show(6, false)]);
    for (const [fam, rows] of [[4, v4], [6, v6]] as const) {
      for (const x of rows) {
        const p = x.protocol ?? '3'; // ip leaves out "boot", the default of `ip route add`
        if (p === ours) continue; // most rows: skip before parsing anything
        const cidr = typeof x.dst === 'string' ? jsonDst(x.dst, fam) : null;
        if (!cidr) continue;
        out.set(cidr, [...(out.get(cidr) ?? []), `${p}${x.type && x.type !== 'unicast' ? ` ${x.type}` : ''}`]);
      }
    }
    return out;
  };

  const line = (op: 'add' | 'del', r: KernelRoute) => `route ${op === 'add' ? 'replace' : 'del'} ${r.dst} via ${r.via} dev ${r.dev} proto ${proto}`;

  const doApply = async (add: KernelRoute[], del: KernelRoute[]): Promise<{ errors: RouteError[] }> => {
    if (closed) throw new Error('route table closed');
    const errors: RouteError[] = [];
    let todo: Array<{ route: KernelRoute; op: 'add' | 'del' }> = [];
    for (const [op, list] of [['del', del], ['add', add]] as const) {
      for (const raw of list) {
        const c = checkRoute(raw);
        if (c.route) todo.push({ route: c.route, op });
        else errors.push({ route: raw, op, error: `invalid route: ${c.error}` });
      }
    }
    if (todo.some((t) => t.op === 'add')) {
      const foreign = await foreignRoutes();
      todo = todo.filter((t) => {
        const other = t.op === 'add' ? foreign.get(t.route.dst) : undefined;
        if (other) errors.push({ ...t, error: `conflict: the main table already has a route to ${t.route.dst} with protocol ${other.join(', ')}; left alone (not ours)` });
        return !other;
      });
    }
    if (todo.length) {
      const lines = todo.map((t) => line(t.op, t.route));
      const timeout = opts.timeoutMs ?? 30_000 + lines.length * 2;
      const attempt = (n: number) => {
        const p = batch.run(lines, timeout);
        opts.onBatch?.({ pid: batch.pid, lines: lines.length, attempt: n });
        return p;
      };
      let out = await attempt(1);
      let retried = false;
      if (!out.done) {
        retried = true;
        out = await attempt(2);
      }
      if (!out.done) {
        const reason = out.reason;
        for (const t of todo) errors.push({ ...t, error: reason });
      } else {
        for (const [i, msg] of out.errors) {
          const t = todo[i];
          if (!t) continue;
          // Re-sent after a crash: the first attempt may already have deleted it.
          if (retried && t.op === 'del' && /No such process/.test(msg)) continue;
          errors.push({ ...t, error: msg });
        }
      }
    }
    // Deletes first, then adds, each in compareRoutes order.
    const sorted = errors
      .map((e) => ({ e, k: prep(e.route, false) }))
      .sort((a, b) => (a.e.op === b.e.op ? compareKeys(a.k, b.k) : a.e.op === 'del' ? -1 : 1))
      .map((x) => x.e);
    return { errors: sorted };
  };

  return {
    get pid() {
      return batch.pid;
    },
    get spawns() {
      return batch.spawns;
    },
    async list() {
      const out: KernelRoute[] = [];
      const [v4, v6] = await Promise.all([show(4, true), show(6, true)]); // two ip processes at once
      for (const [fam, rows] of [[4, v4], [6, v6]] as const) {
        // Multipath routes (no single gateway) are not ours to model; we never create them.
        for (const x of rows) {
          const dst = typeof x.dst === 'string' ? jsonDst(x.dst, fam) : null;
          if (dst && x.gateway && x.dev) out.push({ dst, via: normalizeIP(x.gateway) ?? x.gateway, dev: x.dev });
        }
      }
      return sortRoutes(out);
    },
    apply(add, del) {
      const p = chain.then(() => doApply(add, del));
      chain = p.catch(() => undefined);
      return p;
    },
    close() {
      closed = true;
      batch.close();
      readers[4].close();
      readers[6].close();
    },
  };
}
