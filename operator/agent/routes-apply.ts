/**
 * Host-gw routes apply: the plan's direct routes on the uplink of their family, diffed (pure
 * diffRoutes) against the routes of our protocol in the kernel, and only the delta applied. Owns the
 * route table and its deletion monitor, both re-opened when FabricConfig changes the protocol.
 */
import type { NodeFabricSpec } from '../api/nodefabric.js';
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
  desiredRoutes: KernelRoute[];
  installed: KernelRoute[];
}

export interface RouteTables {
  /** Opened with the configured route protocol. */
  open: (protocol: number) => RouteTable;
  /** Reports kernel deletions of our routes (optional). Returns a stop function. */
  watchDeletions?: (protocol: number, onDeleted: (line: string) => void) => () => void;
}

/** The routes the plan wants, on this node's uplinks; a route whose family has no uplink is an error. */
export function desiredRoutes(spec: NodeFabricSpec, uplinks: Map<4 | 6, Uplink>): { routes: KernelRoute[]; errors: string[] } {
  const routes: KernelRoute[] = [];
  const errors: string[] = [];
  for (const r of spec.directRoutes ?? []) {
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

  async apply(spec: NodeFabricSpec, uplinks: Map<4 | 6, Uplink>, protocol: number, log: Logger): Promise<RoutesOutcome> {
    let changes = 0;
    const { routes: desired, errors: routeErrors } = desiredRoutes(spec, uplinks);
    const table = this.tableFor(protocol);
    let installed = await table.list();
    const rd = diffRoutes(desired, installed);
    if (rd.add.length || rd.del.length) {
      const res = await table.apply(rd.add, rd.del);
      for (const e of res.errors) routeErrors.push(`${e.op} ${e.route.dst} via ${e.route.via}: ${e.error}`);
      changes += rd.add.length + rd.del.length;
      log.info({ add: rd.add.map((r) => `${r.dst} via ${r.via}`), del: rd.del.map((r) => `${r.dst} via ${r.via}`), errors: res.errors.length }, 'host routes changed');
      this.on.changed([rd.add.length ? `added ${brief(rd.add)}` : '', rd.del.length ? `removed ${brief(rd.del)}` : ''].filter(Boolean).join('; '));
      installed = await table.list();
    }
    return { changes, routeErrors, desiredRoutes: desired, installed };
  }

  close(): void {
    this.stopWatch?.();
    this.table?.close();
  }
}
