// npm run lab -- up [--racks N] [--nodes-per-rack N] [--dual-stack] [--pods-per-node N] [--proxy-mode nftables|iptables] | down | status
//                | pod add NODE NAME [--namespace NS] [--labels k=v,...] | pod del NODE NAME [--namespace NS] | node add RACK | node del NAME
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runFabric } from '../../operator/cli/fabric.js';
import { parseLabels } from './pods.js';
import { addPod, DEFAULTS, OUTSIDE, delPod, down, growNode, loadState, removeNode, renderStatus, STATE, status, up, waitNodesReady, type ProxyMode } from './lab.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    racks: { type: 'string' },
    'nodes-per-rack': { type: 'string' },
    'dual-stack': { type: 'boolean', default: false },
    'pods-per-node': { type: 'string' },
    'no-pings': { type: 'boolean', default: false },
    'proxy-mode': { type: 'string' },
    namespace: { type: 'string' },
    labels: { type: 'string' },
  },
});
const [cmd, ...args] = positionals;

async function main(): Promise<void> {
  switch (cmd) {
    case 'up': {
      const s = await up({
        racks: Number(values.racks ?? DEFAULTS.racks),
        nodesPerRack: Number(values['nodes-per-rack'] ?? DEFAULTS.nodesPerRack),
        dualStack: values['dual-stack']!,
        podsPerNode: Number(values['pods-per-node'] ?? DEFAULTS.podsPerNode),
        controllers: DEFAULTS.controllers,
        proxyMode: parseProxyMode(values['proxy-mode']),
      });
      console.log(renderStatus(await status(s)));
      // The same fabric as an operator sees it through the kubectl plugin: a map of racks and sessions.
      const svg = join(STATE, 'fabric.svg');
      const quiet = { out: () => undefined, err: (t: string) => process.stderr.write(t) };
      await runFabric(['map', '--kubeconfig', s.kubeconfig, '-o', svg], quiet);
      console.log(`\nkubectl --kubeconfig=${s.kubeconfig} get nodefabrics,ippools,bgppeers`);
      console.log(`KUBECONFIG=${s.kubeconfig} PATH=$PWD/bin:$PATH kubectl fabric status   # or: node r1n1, map (one is in ${svg})`);
      console.log(`ip netns exec ${OUTSIDE.ns} curl -s telnet://<LoadBalancer IP>:80   # the outside client (${OUTSIDE.ip4}) beyond the spine`);
      console.log('npm run lab -- status | down');
      return;
    }
    case 'down':
      await down();
      console.log('lab: everything removed');
      return;
    case 'status': {
      const s = await loadState().catch(() => null);
      if (!s) {
        console.log('lab: not running (npm run lab -- up)');
        process.exitCode = 1;
        return;
      }
      const r = await status(s, { pings: !values['no-pings'] });
      console.log(renderStatus(r));
      if (r.matrix.some((m) => !m.ok) || r.nodes.some((n) => n.ready !== 'True')) process.exitCode = 1;
      return;
    }
    case 'pod': {
      const [op, node, name] = args;
      if (!node || !name || (op !== 'add' && op !== 'del')) throw new Error('usage: npm run lab -- pod add|del NODE NAME [--namespace NS] [--labels k=v,...]');
      const s = await loadState();
      const namespace = values.namespace ?? 'default';
      if (op === 'add') console.log(JSON.stringify(await addPod(s, node, name, { namespace, labels: parseLabels(values.labels ?? '') })));
      else await delPod(s, node, name, { namespace });
      return;
    }
    case 'node': {
      const [op, arg] = args;
      const s = await loadState();
      if (op === 'add' && arg) {
        const n = await growNode(s, Number(arg.replace(/^r/, '')));
        await waitNodesReady(s, [n.name]);
        console.log(`lab: node ${n.name} added and ready`);
      } else if (op === 'del' && arg) {
        await removeNode(s, arg);
        console.log(`lab: node ${arg} removed`);
      } else throw new Error('usage: npm run lab -- node add RACK | node del NAME');
      return;
    }
    default:
      console.log(
        'usage: npm run lab -- up [--racks 2] [--nodes-per-rack 2] [--dual-stack] [--pods-per-node 2] [--proxy-mode nftables|iptables] | status | down\n' +
          '       | pod add NODE NAME [--namespace NS] [--labels k=v,...] | pod del NODE NAME [--namespace NS] | node add RACK | node del NAME',
      );
      if (cmd) process.exitCode = 2;
  }
}

function parseProxyMode(v: string | undefined): ProxyMode {
  if (v === undefined || v === 'nftables' || v === 'iptables') return v ?? 'nftables';
  throw new Error(`--proxy-mode must be nftables or iptables, not ${JSON.stringify(v)}`);
}

main().catch((e: Error) => {
  console.error(`lab: ${e.message}`);
  process.exit(1);
});
