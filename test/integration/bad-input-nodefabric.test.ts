/**
 * NodeFabric bad input against the real apiserver. Its spec is written by the controller only, so these
 * guard against a bug (or a hand edit) putting a plan on record that an agent would choke on: object
 * names, addresses and prefixes are checked as what they are. (BGP sessions are not in the spec: each
 * agent derives them from the BGPPeers, whose own schema is tested in bad-input-bgppeer.)
 */
import { badInputSuite, type BadCase, type GoodCase } from '../support/bad-input.js';

const bad: BadCase[] = [
  { what: 'podCIDR that is no CIDR', spec: { podCIDRs: ['10.244.1.0'] }, field: 'spec.podCIDRs[0]', message: /must be a CIDR/ },
  { what: 'allocation from a pool named in uppercase', spec: { allocations: [{ cidr: '10.244.1.0/24', pool: 'Pods' }] }, field: 'spec.allocations[0].pool', message: /"Pods" is not a DNS-1123 subdomain/ },
  { what: 'L2Segment named in uppercase', spec: { routing: { segments: ['V4-Rack'] } }, field: 'spec.routing.segments[0]', message: /"V4-Rack" is not a DNS-1123 subdomain/ },
  { what: 'routerId that is IPv6', spec: { routerId: 'fd00::1' }, field: 'spec.routerId', message: /dotted quad/ },
  { what: 'advertisement next hop that is a CIDR', spec: { advertisements: [{ prefix: '10.244.1.0/24', nextHop: '10.0.1.0/24' }] }, field: 'spec.advertisements[0].nextHop', message: /must be an IPv4 or IPv6 address/ },
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
      advertisements: [{ prefix: '10.244.1.0/24', nextHop: '10.0.1.10' }],
      routing: { l2Segment: 'label:rack-1', segments: ['v4-label-rack-1-0a1b2c3d', 'v6-label-rack-1-0a1b2c3d'] },
    },
  },
];

badInputSuite({ kind: 'NodeFabric', plural: 'nodefabrics', defaultName: 'bad-input-node', bad, good });
