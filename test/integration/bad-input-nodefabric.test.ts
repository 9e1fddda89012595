/**
 * NodeFabric bad input against the real apiserver. Its spec is written by the controller only, so these
 * guard against a bug (or a hand edit) putting a plan on record that an agent would choke on: object
 * names, the Secret reference, addresses and prefixes are checked as what they are.
 */
import { badInputSuite, type BadCase, type GoodCase } from '../support/bad-input.js';

const peer = {
  address: '10.0.1.1',
  name: 'tor-r1',
  peerASN: 65101,
  localASN: 64512,
  holdTime: 90,
  keepaliveInterval: 30,
  connectRetry: 5,
};
const withPeer = (extra: Record<string, unknown>) => ({ peers: [{ ...peer, ...extra }] });
const route = { destination: '10.244.1.0/24', via: '10.0.1.11', node: 'r1n2', reason: 'SameSubnet' };

const bad: BadCase[] = [
  { what: 'podCIDR that is no CIDR', spec: { podCIDRs: ['10.244.1.0'] }, field: 'spec.podCIDRs[0]', message: /must be a CIDR/ },
  { what: 'allocation from a pool named in uppercase', spec: { allocations: [{ cidr: '10.244.1.0/24', pool: 'Pods' }] }, field: 'spec.allocations[0].pool', message: /"Pods" is not a DNS-1123 subdomain/ },
  { what: 'planned peer named with an underscore', spec: withPeer({ name: 'tor_r1' }), field: 'spec.peers[0].name', message: /DNS-1123 subdomain/ },
  { what: 'planned peer address that is a hostname', spec: withPeer({ address: 'tor1' }), field: 'spec.peers[0].address', message: /must be an IPv4 or IPv6 address/ },
  { what: 'planned Secret namespace with a dot', spec: withPeer({ passwordSecretRef: { namespace: 'a.b', name: 'md5', key: 'password' } }), field: 'spec.peers[0].passwordSecretRef.namespace', message: /DNS-1123 label/ },
  { what: 'planned Secret key ".."', spec: withPeer({ passwordSecretRef: { namespace: 'ns', name: 'md5', key: '..' } }), field: 'spec.peers[0].passwordSecretRef.key', message: /Secret data key/ },
  { what: 'direct route to a node named with a space', spec: { directRoutes: [{ ...route, node: 'r1 n2' }] }, field: 'spec.directRoutes[0].node', message: /"r1 n2" is not a DNS-1123 subdomain/ },
  { what: 'direct route via a CIDR', spec: { directRoutes: [{ ...route, via: '10.0.1.0/24' }] }, field: 'spec.directRoutes[0].via', message: /must be an IPv4 or IPv6 address/ },
  { what: 'routerId that is IPv6', spec: { routerId: 'fd00::1' }, field: 'spec.routerId', message: /dotted quad/ },
  { what: 'advertisement community out of range', spec: { advertisements: [{ prefix: '10.244.1.0/24', nextHop: '10.0.1.10', communities: ['1:70000'] }] }, field: 'spec.advertisements[0].communities[0]', message: /0-65535/ },
];

const good: GoodCase[] = [
  { what: 'an empty plan', spec: {} },
  {
    what: 'a full dual-stack plan',
    name: 'r1n1.example.com',
    spec: {
      podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      allocations: [{ cidr: '10.244.1.0/24', pool: 'pods-v4' }, { cidr: 'fd00:10:244:1::/64', pool: 'pods.v6' }],
      routerId: '10.0.1.10',
      peers: [{ ...peer, passwordSecretRef: { namespace: 'kube-system', name: 'tor.md5', key: 'tls.password' } }],
      directRoutes: [{ ...route, node: 'r1n2.example.com' }],
    },
  },
];

badInputSuite({ kind: 'NodeFabric', plural: 'nodefabrics', defaultName: 'bad-input-node', bad, good });
