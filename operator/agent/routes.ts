/**
 * Host-gw routes in the kernel's main table, tagged with our own route protocol number: we list and
 * change only routes with that number, never anyone else's. Changes go through one persistent
 * `ip -force -batch -` process (never a process per route); after each batch a marker command tells us
 * the batch is done, and `Command failed -:N` lines map errors back to the routes.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { RESERVED_ROUTE_PROTOCOLS } from '../api/fabricconfig.js';
import { run } from '../lib/exec.js';
import { normalizeCidr, normalizeIP, parseCidr } from '../lib/ip.js';

export interface KernelRoute {
  dst: string;
  via: string;
  dev: string;
}

export interface RouteTable {
  /** Routes with our protocol, main table, both families. */
  list(): Promise<KernelRoute[]>;
  apply(add: KernelRoute[], del: KernelRoute[]): Promise<{ errors: Array<{ route: KernelRoute; op: 'add' | 'del'; error: string }> }>;
  close(): void;
}

export function validateProtocol(p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 255 || RESERVED_ROUTE_PROTOCOLS.includes(p)) {
    throw new Error(`route protocol ${p} is reserved or out of range (1-255, not ${RESERVED_ROUTE_PROTOCOLS.join(',')})`);
  }
}

const key = (r: KernelRoute) => `${r.dst}|${r.via}|${r.dev}`;

function norm(r: KernelRoute): KernelRoute {
  return { dst: normalizeCidr(r.dst) ?? r.dst, via: normalizeIP(r.via) ?? r.via, dev: r.dev };
}

/** What to add (or replace) and delete so the kernel has exactly `desired`. Pure. */
export function diffRoutes(desired: KernelRoute[], observed: KernelRoute[]): { add: KernelRoute[]; del: KernelRoute[] } {
  const want = new Map<string, KernelRoute>();
  for (const r of desired.map(norm)) want.set(r.dst, r); // one route per destination, the last wins
  const have = new Map<string, KernelRoute[]>();
  for (const r of observed.map(norm)) have.set(r.dst, [...(have.get(r.dst) ?? []), r]);
  const add: KernelRoute[] = [];
  const del: KernelRoute[] = [];
  for (const [dst, r] of want) {
    const cur = have.get(dst) ?? [];
    if (!cur.some((c) => key(c) === key(r))) add.push(r); // `replace` swaps a changed next hop in place
    for (const c of cur) if (key(c) !== key(r) && cur.length > 1) del.push(c);
  }
  for (const [dst, cur] of have) if (!want.has(dst)) del.push(...cur);
  const order = (a: KernelRoute, b: KernelRoute) => a.dst.localeCompare(b.dst) || a.via.localeCompare(b.via);
  return { add: add.sort(order), del: del.sort(order) };
}

interface Pending {
  base: number;
  lines: Array<{ route: KernelRoute; op: 'add' | 'del' }>;
  resolve: (errors: Array<{ route: KernelRoute; op: 'add' | 'del'; error: string }>) => void;
  reject: (e: Error) => void;
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

export function createIpRouteTable(opts: { protocol: number; netns?: string }): RouteTable {
  validateProtocol(opts.protocol);
  const nsArgs = opts.netns ? ['-n', opts.netns] : [];
  let child: ChildProcessWithoutNullStreams | undefined;
  let stderr = '';
  let stdout = '';
  let lineNo = 0;
  let current: Pending | undefined;
  const waiting: Array<() => void> = [];

  const finish = () => {
    const p = current;
    if (!p) return;
    current = undefined;
    const errors = [...parseBatchErrors(stderr)].flatMap(([n, error]) => {
      const line = p.lines[n - p.base - 1];
      return line ? [{ ...line, error }] : [];
    });
    stderr = '';
    stdout = '';
    p.resolve(errors);
    waiting.shift()?.();
  };

  const spawnIp = () => {
    const c = spawn('ip', [...nsArgs, '-force', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    lineNo = 0;
    stderr = '';
    stdout = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      // The marker command's output: every line before it has run and written its errors.
      if (current && stdout.includes(' lo: ')) setTimeout(finish, 2);
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.stdin.on('error', () => undefined);
    c.on('exit', () => {
      if (child === c) child = undefined;
      const p = current;
      current = undefined;
      p?.reject(new Error(`ip -batch exited: ${stderr.trim().slice(-300)}`));
      waiting.shift()?.();
    });
    return c;
  };

  const exec = (lines: Pending['lines']) =>
    new Promise<Array<{ route: KernelRoute; op: 'add' | 'del'; error: string }>>((resolve, reject) => {
      const go = () => {
        if (!child) child = spawnIp();
        const text = lines
          .map(({ route: r, op }) => `route ${op === 'add' ? 'replace' : 'del'} ${r.dst} via ${r.via} dev ${r.dev} proto ${opts.protocol}`)
          .join('\n');
        current = { base: lineNo, lines, resolve, reject };
        lineNo += lines.length + 1;
        child.stdin.write(`${text}\nlink show dev lo\n`);
      };
      if (current) waiting.push(go);
      else go();
    });

  const listFamily = async (fam: '-4' | '-6'): Promise<KernelRoute[]> => {
    const r = await run(['ip', ...nsArgs, '-j', fam, 'route', 'show', 'table', 'main', 'proto', String(opts.protocol)]);
    const rows = JSON.parse(r.stdout || '[]') as Array<{ dst: string; gateway?: string; dev?: string }>;
    return rows
      .filter((x) => x.gateway && x.dev)
      .map((x) => {
        const dst = x.dst.includes('/') ? x.dst : `${x.dst}/${fam === '-4' ? 32 : 128}`;
        return { dst: normalizeCidr(dst) ?? dst, via: normalizeIP(x.gateway!) ?? x.gateway!, dev: x.dev! };
      });
  };

  return {
    async list() {
      return [...(await listFamily('-4')), ...(await listFamily('-6'))];
    },
    async apply(add, del) {
      const bad = [...add, ...del].filter((r) => !parseCidr(r.dst) || !normalizeIP(r.via) || !/^[^\s/]{1,15}$/.test(r.dev));
      if (bad.length) throw new Error(`invalid routes: ${bad.map((r) => `${r.dst} via ${r.via} dev ${r.dev}`).join(', ')}`);
      const lines = [...del.map((route) => ({ route, op: 'del' as const })), ...add.map((route) => ({ route, op: 'add' as const }))];
      if (!lines.length) return { errors: [] };
      const errors = await exec(lines);
      return { errors };
    },
    close() {
      child?.stdin.end();
      child = undefined;
    },
  };
}
