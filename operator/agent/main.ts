/**
 * `podfabric agent --node NAME`: runs next to a gobgpd sidecar (API on a Unix socket) with host
 * networking and NET_ADMIN. Leaves gobgpd and the kernel routes untouched when it exits.
 */
import { parseArgs } from 'node:util';
import { API_PATH } from '../api/common.js';
import { effectiveFabricConfig, fabricConfigSpec } from '../api/fabricconfig.js';
import { FabricConfig, parseObject } from '../api/kinds.js';
import { KubeEventRecorder } from '../kube/events.js';
import { KubeRest, loadKubeConfig } from '../kube/rest.js';
import { log } from '../lib/log.js';
import { newRegistry, serveHealthAndMetrics } from '../lib/metrics.js';
import { parseDuration, parseListen } from '../lib/flags.js';
import { NodeAgent } from './agent.js';
import { AGENT_RESYNC_MS } from './sync.js';
import { readMd5Counters } from '../host/netstat.js';
import { createCniManager } from '../cni/manager.js';
import { createGoBgpRouter } from '../gobgp/client.js';
import { detectUplink } from '../host/links.js';
import { watchRouteDeletions } from '../routes/monitor.js';
import { createIpRouteTable } from '../routes/table.js';
import { nftRunner } from '../nftables/applier.js';
import { conntrackRunner } from '../nftables/conntrack.js';
import { PolicyEnforcer } from '../nftables/enforcer.js';

/** FabricConfig "default" spec.gobgpSocket, or the built-in default when there is none (or no API yet, or it is invalid). */
async function gobgpSocketFromConfig(rest: KubeRest): Promise<string> {
  const defaults = fabricConfigSpec.parse({});
  const raw = await rest.get<unknown>(`${API_PATH}/fabricconfigs/default`).catch(() => null);
  let decoded: Parameters<typeof effectiveFabricConfig>[0];
  try {
    decoded = raw ? { ok: true, value: parseObject(FabricConfig, raw) } : undefined;
  } catch (e) {
    decoded = { ok: false, error: (e as Error).message };
  }
  const path = effectiveFabricConfig(decoded, defaults).spec.gobgpSocket;
  return path.startsWith('unix://') ? path : `unix://${path}`;
}

export async function runAgent(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      node: { type: 'string', default: process.env.NODE_NAME },
      kubeconfig: { type: 'string' },
      // Default: FabricConfig spec.gobgpSocket (read once at start), else /run/podfabric/gobgp.sock.
      'gobgp-api': { type: 'string' },
      'allow-remote-gobgp-api': { type: 'boolean', default: false },
      'bgp-listen-port': { type: 'string', default: '179' },
      'metrics-addr': { type: 'string', default: '127.0.0.1:9091' },
      'cni-conf-dir': { type: 'string' },
      'cni-bin-dir': { type: 'string', default: '/usr/lib/cni' },
      'cni-data-dir': { type: 'string', default: '/var/lib/cni/networks' },
      'no-cni': { type: 'boolean', default: false },
      // NetworkPolicy enforcement (table inet podfabric-policy) is on by default.
      'no-network-policy': { type: 'boolean', default: false },
      // natOutgoing (table inet podfabric-nat, only while some IPPool asks for it) is on by default.
      'no-nat-outgoing': { type: 'boolean', default: false },
      // Lab and tests: the node is a network namespace; the agent runs beside it and manages its routes.
      netns: { type: 'string' },
      resync: { type: 'string', default: `${AGENT_RESYNC_MS / 1000}s` },
      qps: { type: 'string', default: '20' },
      burst: { type: 'string', default: '40' },
    },
  });
  if (!values.node) throw new Error('--node (or NODE_NAME) is required');
  const node = values.node;
  const alog = log.child({ component: 'agent', node });
  // One HTTP/2 connection for the agent's ~10 watches and its writes (not a TLS connection per watch).
  const rest = new KubeRest(loadKubeConfig(values.kubeconfig), { qps: Number(values.qps), burst: Number(values.burst), userAgent: `podfabric-agent/${node}`, http2: true });
  const target = values['gobgp-api'] ?? (await gobgpSocketFromConfig(rest));
  const router = createGoBgpRouter(target, { allowNonLoopback: values['allow-remote-gobgp-api'] });
  const registry = newRegistry('agent');
  const ns = values.netns ? { netns: values.netns } : {};
  // Resolved lazily: the enforcer asks for the node's addresses only when it cuts flows.
  let agentRef: NodeAgent | undefined;
  const policy = values['no-network-policy'] ? undefined : new PolicyEnforcer(nftRunner(ns), conntrackRunner(ns), () => agentRef?.nodeAddresses() ?? []);
  const agent = new NodeAgent({
    nodeName: node,
    rest,
    router,
    routes: (protocol) => createIpRouteTable({ protocol, ...(values.netns ? { netns: values.netns } : {}) }),
    watchRouteDeletions: (protocol, onDeleted) => watchRouteDeletions({ protocol, ...(values.netns ? { netns: values.netns } : {}) }, onDeleted),
    detectUplink: async (ip) => {
      const u = await detectUplink(ip, values.netns ? { netns: values.netns } : {});
      return u ? { dev: u.dev, address: u.address, subnet: u.subnet } : null;
    },
    registry,
    md5Counters: () => readMd5Counters(values.netns),
    events: new KubeEventRecorder(rest, 'podfabric-agent', node),
    bgpListenPort: Number(values['bgp-listen-port']),
    resyncMs: parseDuration(values.resync!),
    ...(policy ? { policy } : {}),
    ...(values['no-nat-outgoing'] ? {} : { nat: nftRunner(ns) }),
    ...(values['no-cni']
      ? {}
      : { cni: createCniManager({ binDir: values['cni-bin-dir']!, dataDir: values['cni-data-dir']!, ...(values['cni-conf-dir'] ? { confDirOverride: values['cni-conf-dir'] } : {}) }) }),
  });
  agentRef = agent;
  const listen = parseListen(values['metrics-addr']!);
  const server = await serveHealthAndMetrics(
    registry,
    {
      healthz: () => ({ ok: agent.isHealthy() }),
      readyz: () => (agent.isReady() ? { ok: true } : { ok: false, detail: 'sessions not established or routes not installed (see NodeFabric status)' }),
    },
    listen.host,
    listen.port,
  );
  alog.info({ port: server.port, gobgp: target }, 'agent starting; metrics and health endpoints listening');
  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    alog.info({ signal: sig }, 'stopping; gobgpd and kernel routes are left as they are');
    await agent.stop().catch(() => undefined);
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await agent.start();
}
