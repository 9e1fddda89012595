/**
 * `kubectl fabric` (bin/kubectl-fabric.js; kubectl runs any `kubectl-fabric` on PATH as a plugin).
 *   status            the whole fabric in one table; exit 1 when anything is not Ready
 *   node NAME         one node's plan (NodeFabric spec) against what it really has (status); exit 1 on any discrepancy
 *   map [-o FILE]     an SVG picture of racks, nodes, ToRs and sessions (default fabric.svg, "-" for stdout)
 *   policy SRC DST    why NetworkPolicy allows or denies a flow (policy-view.ts); exit 1 when denied
 *   services          LoadBalancer / advertised Services: addresses, who advertises them, drain; exit 1 on a problem
 * Exit codes: 0 all good, 1 not ready / discrepancy, 2 usage error or the apiserver could not be read.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BGPPeer, FabricConfig, IPPool, L2Segment, NodeFabric, parseObject, type KindDef, type Obj } from '../api/kinds.js';
import { API_PATH as API } from '../api/common.js';
import { KubeRest, isNotFound, loadKubeConfig } from '../kube/rest.js';
import { parseDuration } from '../lib/flags.js';
import type { CoreNode, FabricSnapshot } from './model.js';
import { renderMap } from './map.js';
import { buildNodeReport, renderNodeReport } from './node-report.js';
import { DEFAULT_STALE_AFTER_SECONDS, buildStatus, renderStatus } from './status-report.js';
import { POLICY_HELP, PolicyQueryError, parsePolicyQuery, runPolicy } from './policy-cmd.js';
import { buildServicesReport, renderServicesReport, unadvertisedAddresses, type ServicesReport } from './services-report.js';
import { endpointSliceFromJson } from '../services/model.js';

const COMMON = `Flags:
  --kubeconfig FILE   kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)
  --context NAME      kubeconfig context to use
  -h, --help          this help`;

const HELP: Record<string, string> = {
  root: `kubectl fabric: the podfabric pod network at a glance.

Usage:
  kubectl fabric status [-o table|json] [--stale-after 750s]
  kubectl fabric node NAME [-o table|json] [--stale-after 750s]
  kubectl fabric map [-o FILE.svg]
  kubectl fabric policy SRC DST [--port PORT[/PROTO]] [-o text|json]
  kubectl fabric services [-o table|json]

Commands:
  status     every node, BGP peer and IP pool in one table (exit 1 when anything is not Ready)
  node       one node's plan against what it really has (exit 1 on any discrepancy)
  map        an SVG picture of racks, nodes, ToRs and BGP sessions
  policy     why NetworkPolicy allows or denies traffic from SRC to DST (exit 1 when denied)
  services   LoadBalancer and advertised Services: addresses, advertising nodes, drain (exit 1 on a problem)

Exit codes: 0 all good, 1 not ready / discrepancy, 2 usage error or apiserver unreachable.

${COMMON}`,
  status: `kubectl fabric status: the whole fabric in one report.

Per node (NodeFabric): pod CIDRs, rack, BGP sessions established/total, prefixes advertised/planned,
host routes installed/planned, CNI configuration written, Ready and why not, age of the last agent sync.
Per BGPPeer: address, ASN, nodes selected, sessions established, conditions.
Per IPPool: CIDR, block size, blocks used/total, utilisation, disabled, conditions. FabricConfig summary.
Exits 1 when anything is not Ready (a node not Ready or stale, a peer with sessions down, a pool
exhausted or overlapping), so it can gate scripts.

Usage:
  kubectl fabric status [-o table|json] [--stale-after DURATION]

Flags:
  -o, --output FORMAT      table (default) or json
  --stale-after DURATION   a node whose agent has not synced for longer is not ready (default 750s:
                           two missed status heartbeats)
${COMMON.replace(/^Flags:\n/, '')}`,
  node: `kubectl fabric node NAME: one node's plan (NodeFabric spec, from the controller) against what
the node really has (NodeFabric status, from its agent), with every discrepancy marked "!!":
planned peers vs BGP sessions (state, since, prefixes sent/received, last error), planned
advertisements vs advertised, its L2 segments (the L2Segments its NodeFabric names: key, family,
routes) and their routes to the other members vs kernel routes (missing / extra / other via),
conditions with reasons and messages, CNI status, and the Node's spec.podCIDRs.
Exits 1 on any discrepancy.

Usage:
  kubectl fabric node NAME [-o table|json] [--stale-after DURATION]

Flags:
  -o, --output FORMAT      table (default) or json
  --stale-after DURATION   an agent sync older than this is a discrepancy (default 750s)
${COMMON.replace(/^Flags:\n/, '')}`,
  map: `kubectl fabric map: writes an SVG picture of the fabric: racks (Node label podfabric.io/rack,
else the planned L2 segment, else the subnet the agent reports) with their nodes (name, pod CIDR,
coloured by Ready), the BGP peers above the rack they serve, one line per session coloured by
state (Established green, Active/Connect amber, Idle red, Unknown grey), a legend and a title.

Usage:
  kubectl fabric map [-o FILE]

Flags:
  -o, --output FILE   where to write the SVG (default fabric.svg; "-" writes to stdout)
${COMMON.replace(/^Flags:\n/, '')}`,
  policy: `${POLICY_HELP}\n${COMMON.replace(/^Flags:\n/, '')}`,
  services: `kubectl fabric services: every LoadBalancer Service (any class) and every Service the nodes
advertise: its addresses, loadBalancerClass, externalTrafficPolicy, the nodes advertising each address
(from NodeFabric status.services; "DRAINING" = advertised with GRACEFUL_SHUTDOWN by a cordoned node),
and its conditions; then every advertised prefix and the nodes not advertising normally (Draining,
Drained, Excluded).
Exits 1 when a Service of podfabric's class has no address, or has an address no node advertises while
it has ready endpoints (its EndpointSlices are read for that check only).

Usage:
  kubectl fabric services [-o table|json]

Flags:
  -o, --output FORMAT   table (default) or json
${COMMON.replace(/^Flags:\n/, '')}`,
};

class UsageError extends Error {}

async function list<K extends KindDef>(rest: KubeRest, def: K): Promise<Array<Obj<K>>> {
  const r = await rest.get<{ items: unknown[] }>(`${API}/${def.plural}`);
  return r.items.map((raw) => {
    try {
      return parseObject(def, raw);
    } catch {
      return raw as Obj<K>; // show what is stored even if it no longer validates
    }
  });
}

/** A LIST that answers 404 (FabricConfig: none yet; L2Segment: an install older than this CLI) is empty. */
const listOrNone = <K extends KindDef>(rest: KubeRest, def: K): Promise<Array<Obj<K>>> => list(rest, def).catch((e) => (isNotFound(e) ? [] : Promise.reject(e)));

/** Reads everything the views need (six LISTs). */
export async function readSnapshot(rest: KubeRest): Promise<FabricSnapshot> {
  const [nodes, nodeFabrics, segments, peers, pools, configs] = await Promise.all([
    rest.get<{ items: CoreNode[] }>('/api/v1/nodes').then((r) => r.items),
    list(rest, NodeFabric),
    listOrNone(rest, L2Segment),
    list(rest, BGPPeer),
    list(rest, IPPool),
    listOrNone(rest, FabricConfig),
  ]);
  return { nodes, nodeFabrics, segments, peers, pools, config: configs.find((c) => c.metadata.name === 'default') ?? null };
}

/** Services, NodeFabrics and FabricConfig, then the EndpointSlices of the Services with an unadvertised address only. */
export async function readServicesReport(rest: KubeRest): Promise<ServicesReport> {
  const [services, nodeFabrics, configs] = await Promise.all([
    rest.get<{ items: unknown[] }>('/api/v1/services').then((r) => r.items),
    list(rest, NodeFabric),
    listOrNone(rest, FabricConfig),
  ]);
  const config = configs.find((c) => c.metadata.name === 'default') ?? null;
  const readyEndpoints = new Map<string, number>();
  for (const s of unadvertisedAddresses({ services, nodeFabrics, config })) {
    const sel = encodeURIComponent(`kubernetes.io/service-name=${s.name}`);
    const slices = await rest.get<{ items: unknown[] }>(`/apis/discovery.k8s.io/v1/namespaces/${s.namespace}/endpointslices?labelSelector=${sel}`);
    readyEndpoints.set(`${s.namespace}/${s.name}`, slices.items.map(endpointSliceFromJson).reduce((n, sl) => n + sl.endpoints.filter((e) => e.ready).length, 0));
  }
  return buildServicesReport({ services, nodeFabrics, config, readyEndpoints });
}

function output(v: string | undefined, allowed: string[]): string {
  const o = v ?? allowed[0]!;
  if (!allowed.includes(o)) throw new UsageError(`unknown output format ${o} (use ${allowed.join(' or ')})`);
  return o;
}

function staleAfter(v: string | undefined): number {
  if (v === undefined) return DEFAULT_STALE_AFTER_SECONDS;
  try {
    return Math.round(parseDuration(v) / 1000);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Runs the plugin; resolves with the exit code. Output goes through the given writers (tests pass their own). */
export async function runFabric(
  argv: string[],
  io: { out: (s: string) => void; err: (s: string) => void } = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) },
): Promise<number> {
  let rest: KubeRest | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'stale-after': { type: 'string' },
        port: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    const [cmd, ...args] = positionals;
    if (cmd === undefined || cmd === 'help') {
      io.out(`${HELP.root}\n`);
      return values.help || cmd === 'help' ? 0 : 2;
    }
    if (!(cmd in HELP) || cmd === 'root') throw new UsageError(`unknown command ${cmd}`);
    if (values.help) {
      io.out(`${HELP[cmd]}\n`);
      return 0;
    }
    const arity = cmd === 'node' ? 1 : cmd === 'policy' ? 2 : 0;
    if (args.length !== arity) {
      throw new UsageError(cmd === 'node' ? 'node takes exactly one node name' : cmd === 'policy' ? 'policy takes SRC and DST (NAMESPACE/POD or IP)' : `${cmd} takes no arguments`);
    }
    if (values.port !== undefined && cmd !== 'policy') throw new UsageError('--port is only for policy');
    const format = cmd === 'map' ? (values.output ?? 'fabric.svg') : output(values.output, cmd === 'policy' ? ['text', 'json'] : ['table', 'json']);
    const stale = staleAfter(values['stale-after']);
    const policyQuery = cmd === 'policy' ? parsePolicyQuery(args[0]!, args[1]!, values.port) : undefined;

    const kc = loadKubeConfig(values.kubeconfig);
    if (values.context) {
      if (!kc.getContextObject(values.context)) throw new UsageError(`context ${values.context} not found in the kubeconfig`);
      kc.setCurrentContext(values.context);
    }
    rest = new KubeRest(kc, { qps: 50, burst: 50, userAgent: 'kubectl-fabric', timeoutMs: 20_000 });
    if (policyQuery) return await runPolicy(rest, policyQuery, format === 'json', io);
    if (cmd === 'services') {
      const r = await readServicesReport(rest);
      io.out(format === 'json' ? `${JSON.stringify(r, null, 2)}\n` : renderServicesReport(r));
      return r.ok ? 0 : 1;
    }
    const snap = await readSnapshot(rest);
    const now = new Date();
    const opts = { now, staleAfterSeconds: stale };

    if (cmd === 'status') {
      const r = buildStatus(snap, opts);
      io.out(format === 'json' ? `${JSON.stringify(r, null, 2)}\n` : renderStatus(r));
      return r.ready ? 0 : 1;
    }
    if (cmd === 'node') {
      const name = args[0]!;
      if (!snap.nodeFabrics.some((n) => n.metadata.name === name) && !snap.nodes.some((n) => n.metadata.name === name)) {
        io.err(`kubectl-fabric: node "${name}" not found (neither a Node nor a NodeFabric)\n`);
        return 1;
      }
      const r = buildNodeReport(name, snap, opts);
      io.out(format === 'json' ? `${JSON.stringify(r, null, 2)}\n` : renderNodeReport(r, now));
      return r.discrepancies.length ? 1 : 0;
    }
    const svg = renderMap(snap);
    if (format === '-') io.out(svg);
    else {
      await writeFile(format, svg);
      io.err(`wrote ${format}\n`);
    }
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (e instanceof UsageError || e instanceof PolicyQueryError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      io.err(`kubectl-fabric: ${(e as Error).message}\nRun 'kubectl fabric --help' for usage.\n`);
      return 2;
    }
    io.err(`kubectl-fabric: ${(e as Error).message}\n`);
    return 2;
  } finally {
    rest?.close();
  }
}

/** The bin entry (bin/kubectl-fabric.js): runs with process.argv and sets the exit code. */
export async function main(): Promise<void> {
  process.exitCode = await runFabric(process.argv.slice(2));
}
