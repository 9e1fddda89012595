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
import { spawn, type ChildProcess } from 'node:child_process';
import { RESERVED_ROUTE_PROTOCOLS } from '../api/fabricconfig.js';
import { formatCidr, formatIP, normalizeIP, parseCidr, parseIP } from '../lib/ip.js';

export interface KernelRoute {
  /** Destination CIDR, v4 or v6, canonical (host bits clear, v6 compressed lowercase). */
  dst: string;
  via: string;
  dev: string;
}

export interface RouteError {
  route: KernelRoute;
  op: 'add' | 'del';
  error: string;
}

export interface RouteTable {
  /** Routes with our protocol, main table, both families. */
  list(): Promise<KernelRoute[]>;
  /** Deletes first, then adds (`replace`). Never throws for a bad route: it is reported in `errors`. */
  apply(add: KernelRoute[], del: KernelRoute[]): Promise<{ errors: RouteError[] }>;
  close(): void;
}

/** The ip-batch implementation, with what tests and metrics want to see of its child process. */
export interface IpRouteTable extends RouteTable {
  /** pid of the current `ip -batch` child (undefined before the first apply or after it died). */
  readonly pid: number | undefined;
  /** How many times a child was started. */
  readonly spawns: number;
}

export function validateProtocol(p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 255 || RESERVED_ROUTE_PROTOCOLS.includes(p)) {
    throw new Error(
      `route protocol ${p} is reserved or out of range (must be 1-255 and not one of ${RESERVED_ROUTE_PROTOCOLS.join(',')}: ` +
        'those belong to the kernel, static routes or other routing daemons); e.g. 201',
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Pure part

interface SortKey {
  dstOk: boolean;
  family: number;
  network: bigint;
  prefixLength: number;
  viaFamily: number;
  viaValue: bigint;
  route: KernelRoute;
}

/** Parses a route once: its sort key, and (with normalize) the canonical route it carries. */
function prep(r: KernelRoute, normalize: boolean): SortKey {
  const c = parseCidr(r.dst);
  const v = parseIP(r.via);
  const route = normalize ? { dst: c ? formatCidr(c) : r.dst, via: v ? formatIP(v.family, v.value) : r.via, dev: r.dev } : r;
  return { dstOk: !!c, family: c?.family ?? 0, network: c?.network ?? 0n, prefixLength: c?.prefixLength ?? 0, viaFamily: v?.family ?? 99, viaValue: v?.value ?? 0n, route };
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a.dstOk !== b.dstOk) return a.dstOk ? -1 : 1;
  if (a.dstOk) {
    if (a.family !== b.family) return a.family - b.family;
    if (a.network !== b.network) return a.network < b.network ? -1 : 1;
    if (a.prefixLength !== b.prefixLength) return a.prefixLength - b.prefixLength;
  } else if (a.route.dst !== b.route.dst) return a.route.dst < b.route.dst ? -1 : 1;
  if (a.viaFamily !== b.viaFamily) return a.viaFamily - b.viaFamily;
  if (a.viaValue !== b.viaValue) return a.viaValue < b.viaValue ? -1 : 1;
  if (a.route.via !== b.route.via) return a.route.via < b.route.via ? -1 : 1;
  return a.route.dev < b.route.dev ? -1 : a.route.dev > b.route.dev ? 1 : 0;
}

/**
 * Canonical form of a route. A destination with host bits set (10.0.0.1/24) or an invalid address is
 * NOT repaired: it is kept as written, so it shows up in `add` and `apply` reports it as an error,
 * instead of silently routing a block nobody asked for.
 */
export function normalizeRoute(r: KernelRoute): KernelRoute {
  return prep(r, true).route;
}

/** v4 before v6, then numerically by destination, then by next hop and device; unparsable ones last. */
export function compareRoutes(a: KernelRoute, b: KernelRoute): number {
  return compareKeys(prep(a, false), prep(b, false));
}

/** A sorted copy (compareRoutes order), parsing every route once. */
export function sortRoutes<T extends KernelRoute>(rs: readonly T[]): T[] {
  return rs
    .map((r) => prep(r, false))
    .sort(compareKeys)
    .map((k) => k.route as T);
}

const key = (r: KernelRoute) => `${r.dst}|${r.via}|${r.dev}`;

/**
 * What to add (= `replace`) and delete so the kernel holds exactly `desired`. Pure and deterministic:
 * both inputs are normalised and deduplicated, results sorted with compareRoutes. The kernel keeps
 * one route per destination (replace swaps a changed next hop in place, no delete), so when `desired`
 * names two next hops for one destination the first in compareRoutes order wins, whatever the input
 * order. Several observed routes to one destination: every one that is not the desired route goes.
 */
export function diffRoutes(desired: KernelRoute[], observed: KernelRoute[]): { add: KernelRoute[]; del: KernelRoute[] } {
  const want = new Map<string, SortKey>();
  for (const k of desired.map((r) => prep(r, true)).sort(compareKeys)) if (!want.has(k.route.dst)) want.set(k.route.dst, k);
  const have = new Map<string, Map<string, SortKey>>();
  for (const k of observed.map((r) => prep(r, true))) {
    const m = have.get(k.route.dst) ?? new Map<string, SortKey>();
    m.set(key(k.route), k);
    have.set(k.route.dst, m);
  }
  const add: SortKey[] = []; // built in sorted order
  const del: SortKey[] = [];
  for (const [dst, w] of want) {
    const cur = have.get(dst);
    const wk = key(w.route);
    if (!cur?.has(wk)) add.push(w);
    if (cur && cur.size > 1) for (const [k, c] of cur) if (k !== wk) del.push(c);
  }
  for (const [dst, cur] of have) if (!want.has(dst)) del.push(...cur.values());
  return { add: add.map((k) => k.route), del: del.sort(compareKeys).map((k) => k.route) };
}

const DEV_RE = /^[^\s/:"'\\#]{1,15}$/;

/**
 * The canonical route, or why it must not be sent to ip (ip would fail the line, or exit outright on
 * an unparsable address). Parses each address once (this runs for every route of a batch).
 */
export function checkRoute(r: KernelRoute): { route: KernelRoute; error?: undefined } | { route?: undefined; error: string } {
  const c = typeof r.dst === 'string' ? parseCidr(r.dst) : null;
  if (!c) {
    return parseCidr(r.dst, { strict: false }) ? { error: `invalid destination ${r.dst}: host bits set` } : { error: `invalid destination ${JSON.stringify(r.dst)}: not a CIDR` };
  }
  const via = typeof r.via === 'string' ? parseIP(r.via) : null;
  if (!via) return { error: `invalid next hop ${JSON.stringify(r.via)}` };
  if (via.family !== c.family) return { error: `next hop ${r.via} is IPv${via.family}, destination ${r.dst} is IPv${c.family}` };
  // Linux: 1-15 bytes, no '/', ':' or whitespace, not "." or ".."; and nothing ip's line parser treats specially.
  if (typeof r.dev !== 'string' || !DEV_RE.test(r.dev) || r.dev === '.' || r.dev === '..') return { error: `invalid device ${JSON.stringify(r.dev)}` };
  return { route: { dst: formatCidr(c), via: formatIP(via.family, via.value), dev: r.dev } };
}

/** Why a route must not be sent to ip, or null when it is fine. */
export function invalidRoute(r: KernelRoute): string | null {
  return checkRoute(r).error ?? null;
}

/** Errors of one batch from ip's stderr: each failing line N is reported as "<message>\nCommand failed -:N". */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let msg: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(line);
    if (m) {
      out.set(Number(m[1]), msg.join(' ').trim() || 'failed');
      msg = [];
    } else if (line.trim()) msg.push(line.trim());
  }
  return out;
}

/** `ip -j route show` entry → canonical CIDR ("default" and bare host addresses included). */
function jsonDst(dst: string, family: 4 | 6): string | null {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  const full = dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
  const c = parseCidr(full);
  return c ? formatCidr(c) : null;
}

// ---------------------------------------------------------------------------------------------------
// The persistent ip -batch child

type BatchOutcome = { done: true; errors: Map<number, string> } | { done: false; reason: string; errors: Map<number, string> };

const MARKER = 'podfabric-batch-marker';

interface Child {
  proc: ChildProcess;
  /** Lines written to this child so far: ip numbers lines per process, from 1. */
  fed: number;
  stderr: string;
}

interface Waiter {
  child: Child;
  base: number;
  marker: number;
  resolve: (o: BatchOutcome) => void;
  timer: NodeJS.Timeout;
}

/** One `ip -force -batch -` child at a time; runs one batch at a time (callers serialise). */
class IpBatch {
  private child: Child | undefined;
  private waiter: Waiter | undefined;
  private closed = false;
  spawns = 0;

  constructor(private readonly args: string[]) {}

  get pid(): number | undefined {
    return this.child?.proc.pid;
  }

  private spawnChild(): Child {
    const proc = spawn('ip', this.args, { stdio: ['pipe', 'ignore', 'pipe'] });
    const c: Child = { proc, fed: 0, stderr: '' };
    this.spawns++;
    this.child = c;
    proc.stdin!.on('error', () => undefined); // EPIPE when it died: reported by 'close'
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      c.stderr += d;
      const w = this.waiter;
      if (!w || w.child !== c) return;
      const end = c.stderr.indexOf(`Command failed -:${w.marker}\n`);
      if (end < 0) return;
      const text = c.stderr.slice(0, end);
      c.stderr = c.stderr.slice(end).replace(/^[^\n]*\n/, '');
      this.settle(w, { done: true, errors: relativeErrors(text, w.base, w.marker) });
    });
    let gone = false;
    const onGone = (why: string) => {
      if (gone) return;
      gone = true;
      if (this.child === c) this.child = undefined;
      const w = this.waiter;
      if (!w || w.child !== c) return;
      const tail = c.stderr.trim().split('\n').slice(-3).join(' | ');
      this.settle(w, { done: false, reason: `${why}${tail ? `: ${tail}` : ''}`, errors: relativeErrors(c.stderr, w.base, w.marker) });
    };
    proc.on('error', (e) => onGone(`ip -batch could not run: ${e.message}`));
    proc.on('close', (code, signal) => onGone(`ip -batch exited (${signal ?? `code ${code}`})`));
    return c;
  }

  private settle(w: Waiter, o: BatchOutcome): void {
    if (this.waiter !== w) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve(o);
  }

  run(lines: string[], timeoutMs: number): Promise<BatchOutcome> {
    if (this.waiter) throw new Error('IpBatch.run: a batch is already running');
    if (this.closed) return Promise.resolve({ done: false, reason: 'route table closed', errors: new Map() });
    const alive = this.child && this.child.proc.exitCode === null && this.child.proc.signalCode === null;
    const c = alive ? this.child! : this.spawnChild();
    return new Promise<BatchOutcome>((resolve) => {
      const base = c.fed;
      const marker = base + lines.length + 1;
      c.fed = marker;
      const timer = setTimeout(() => {
        c.stderr += `\ntimed out after ${timeoutMs} ms`;
        c.proc.kill('SIGKILL'); // its 'close' reports the batch as not done
      }, timeoutMs);
      this.waiter = { child: c, base, marker, resolve, timer };
      c.proc.stdin!.write(lines.length ? `${lines.join('\n')}\n${MARKER}\n` : `${MARKER}\n`);
    });
  }

  /** ip exits at EOF, after finishing what it was given (a batch in flight still completes). */
  close(): void {
    this.closed = true;
    this.child?.proc.stdin?.end();
  }
}

/**
 * A persistent `ip -j -batch -` child (no -force) for reads: each `route show` prints exactly one line
 * of JSON, so one query at a time maps one-to-one onto stdout lines — about 0.1 ms a query instead of
 * a process spawn (4 ms idle, tens of ms on a loaded node). A failing command makes ip exit: that
 * query is rejected and the next one starts a new child.
 */
export class IpReader {
  private proc: ChildProcess | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  spawns = 0;

  constructor(private readonly args: string[]) {}

  query(command: string, timeoutMs = 10_000): Promise<string> {
    const p = this.chain.then(() => this.once(command, timeoutMs));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private once(command: string, timeoutMs: number): Promise<string> {
    if (this.closed) return Promise.reject(new Error('ip reader closed'));
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) {
      this.proc = spawn('ip', this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
      this.proc.stdin!.on('error', () => undefined); // EPIPE after it died: reported by 'close'
      this.spawns++;
    }
    const proc = this.proc;
    return new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      const done = (e?: Error, line?: string) => {
        clearTimeout(timer);
        proc.stdout!.off('data', onOut);
        proc.stderr!.off('data', onErr);
        proc.off('close', onClose);
        if (e) reject(e);
        else resolve(line!);
      };
      const onOut = (d: Buffer) => {
        out += d.toString();
        const i = out.indexOf('\n');
        if (i >= 0) done(undefined, out.slice(0, i));
      };
      const onErr = (d: Buffer) => (err += d.toString());
      const onClose = (code: number | null, signal: string | null) => {
        if (this.proc === proc) this.proc = undefined;
        done(new Error(`ip ${command}: ${err.trim() || `exited (${signal ?? `code ${code}`})`}`));
      };
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        done(new Error(`ip ${command}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      proc.stdout!.on('data', onOut);
      proc.stderr!.on('data', onErr);
      proc.on('close', onClose);
      proc.stdin!.write(`${command}\n`);
    });
  }

  close(): void {
    this.closed = true;
    this.proc?.stdin?.end();
  }
}

/**
 * Calls onDeleted whenever the kernel deletes a route of our protocol that we did not ask to delete
 * (someone ran `ip route flush proto N`, a link went down): `ip monitor route`, both families. The agent
 * then re-syncs at once instead of at its next resync. Respawns the monitor if it dies; stop() ends it.
 */
export function watchRouteDeletions(opts: { protocol: number; netns?: string }, onDeleted: (line: string) => void): () => void {
  validateProtocol(opts.protocol);
  const args = [...(opts.netns ? ['-n', opts.netns] : []), 'monitor', 'route'];
  const ours = new RegExp(`\\bproto ${opts.protocol}\\b`);
  let stopped = false;
  let proc: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    if (stopped) return;
    proc = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('Deleted') && ours.test(line)) onDeleted(line);
      }
    });
    proc.on('error', () => undefined);
    proc.on('close', () => {
      if (!stopped) timer = setTimeout(start, 1000);
    });
  };
  start();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    proc?.kill();
  };
}

/** Errors keyed by index into the batch (0-based), leaving out the marker. */
function relativeErrors(text: string, base: number, marker: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const [n, msg] of parseBatchErrors(text)) if (n > base && n < marker) out.set(n - base - 1, msg);
  return out;
}

// ---------------------------------------------------------------------------------------------------

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
