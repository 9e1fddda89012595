/**
 * Host-gw routes apply: the node's direct routes (from its L2Segments, segments.ts) on the uplink of
 * their family, diffed (pure diffRoutes) against the routes of our protocol in the kernel, and only the
 * delta applied. Routes not known yet (a segment cache still listing) change nothing: the kernel's are
 * kept as they are. Owns the route table and its deletion monitor, both re-opened when FabricConfig
 * changes the protocol.
 */
import { parseCidr } from '../lib/ip.js';
import type { Logger } from '../lib/log.js';
import { diffRoutes, type KernelRoute, type RouteTable } from '../routes/model.js';

export interface Uplink {
  dev: string;
  address: string;
  subnet: string;
}

export interface RoutesOutcome {
  changes: number;
  routeErrors: string[];
  /** The routes wanted; when the plan's routes are unknown, what the kernel holds (kept as it is). */
  desiredRoutes: KernelRoute[];
  installed: KernelRoute[];
  /** True when the routes were unknown and the kernel's were left untouched. */
  held: boolean;
}

export interface RouteTables {
  /** Opened with the configured route protocol. */
  open: (protocol: number) => RouteTable;
  /** Reports kernel deletions of our routes (optional). Returns a stop function. */
  watchDeletions?: (protocol: number, onDeleted: (line: string) => void) => () => void;
}

/** The routes the plan wants, on this node's uplinks; a route whose family has no uplink is an error. */
export function desiredRoutes(direct: ReadonlyArray<{ destination: string; via: string }>, uplinks: Map<4 | 6, Uplink>): { routes: KernelRoute[]; errors: string[] } {
  const routes: KernelRoute[] = [];
  const errors: string[] = [];
  for (const r of direct) {
    const fam = parseCidr(r.destination)?.family;
    const up = fam ? uplinks.get(fam) : undefined;
    if (!up) errors.push(`${r.destination}: no IPv${fam} uplink`);
    else routes.push({ dst: r.destination, via: r.via, dev: up.dev });
  }
  return { routes, errors };
}

const brief = (rs: KernelRoute[]) => rs.slice(0, 5).map((r) => `${r.dst} via ${r.via}`).join(', ') + (rs.length > 5 ? `, … (${rs.length})` : '');

export class RoutesApplier {
  private table: RouteTable | undefined;
  private protocol = -1;
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly tables: RouteTables,
    /** A kernel deletion of one of our routes (re-sync), and a change this applier made (an Event). */
    private readonly on: { deleted(line: string): void; changed(message: string): void },
  ) {}

  private tableFor(protocol: number): RouteTable {
    if (!this.table || this.protocol !== protocol) {
      this.table?.close();
      this.table = this.tables.open(protocol);
      this.protocol = protocol;
      this.stopWatch?.();
      this.stopWatch = this.tables.watchDeletions?.(protocol, (line) => this.on.deleted(line));
    }
    return this.table;
  }

  /** `direct`: the routes to install; undefined = not known yet: list the kernel's, change nothing. */
  async apply(direct: ReadonlyArray<{ destination: string; via: string }> | undefined, uplinks: Map<4 | 6, Uplink>, protocol: number, log: Logger): Promise<RoutesOutcome> {
    const table = this.tableFor(protocol);
    let installed = await table.list();
    if (!direct) return { changes: 0, routeErrors: [], desiredRoutes: installed, installed, held: true };
    let changes = 0;
    const { routes: desired, errors: routeErrors } = desiredRoutes(direct, uplinks);
    const rd = diffRoutes(desired, installed);
    if (rd.add.length || rd.del.length) {
      const res = await table.apply(rd.add, rd.del);
      for (const e of res.errors) routeErrors.push(`${e.op} ${e.route.dst} via ${e.route.via}: ${e.error}`);
      changes += rd.add.length + rd.del.length;
      log.info({ add: rd.add.map((r) => `${r.dst} via ${r.via}`), del: rd.del.map((r) => `${r.dst} via ${r.via}`), errors: res.errors.length }, 'host routes changed');
      this.on.changed([rd.add.length ? `added ${brief(rd.add)}` : '', rd.del.length ? `removed ${brief(rd.del)}` : ''].filter(Boolean).join('; '));
      installed = await table.list();
    }
    return { changes, routeErrors, desiredRoutes: desired, installed, held: false };
  }

  close(): void {
    this.stopWatch?.();
    this.table?.close();
  }
}
