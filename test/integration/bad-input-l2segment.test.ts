/**
 * L2Segment bad input against the real apiserver. Only the controller writes L2Segments, so these guard
 * against a bug (or a hand edit) putting routes on record that an agent would install wrongly: the
 * family, addresses, prefixes and node names are checked as what they are.
 */
import { badInputSuite, type BadCase, type GoodCase } from '../support/bad-input.js';

const route = { destination: '10.244.1.0/24', via: '10.0.1.11', node: 'r1n2' };
const base = { key: 'subnet:10.0.1.0/24', family: 4, reason: 'SameSubnet', routes: [route] };

const bad: BadCase[] = [
  { what: 'family 5', spec: { ...base, family: 5 }, field: 'spec.family', message: /Unsupported value: 5/ },
  { what: 'an empty key', spec: { ...base, key: '' }, field: 'spec.key', message: /at least 1 chars long|should be at least 1/ },
  { what: 'a reason that is not one of the two', spec: { ...base, reason: 'Nearby' }, field: 'spec.reason', message: /Unsupported value: "Nearby"/ },
  { what: 'a route to a node named with a space', spec: { ...base, routes: [{ ...route, node: 'r1 n2' }] }, field: 'spec.routes[0].node', message: /"r1 n2" is not a DNS-1123 subdomain/ },
  { what: 'a route via a CIDR', spec: { ...base, routes: [{ ...route, via: '10.0.1.0/24' }] }, field: 'spec.routes[0].via', message: /must be an IPv4 or IPv6 address/ },
  { what: 'a destination with host bits', spec: { ...base, routes: [{ ...route, destination: '10.244.1.7/24' }] }, field: 'spec.routes[0].destination', message: /must not have host bits set/ },
  { what: 'omitted 0', spec: { ...base, omitted: 0 }, field: 'spec.omitted', message: /greater than or equal to 1/ },
];

const good: GoodCase[] = [
  { what: 'a segment of one IPv6 route', spec: { key: 'label:hall-a', family: 6, reason: 'SegmentLabel', routes: [{ destination: 'fd00:10:244:1::/64', via: 'fd00:1::11', node: 'r1n1.example.com' }] } },
  { what: 'a segment with no route listed', spec: { ...base, routes: [] } },
];

badInputSuite({ kind: 'L2Segment', plural: 'l2segments', defaultName: 'v4-bad-input-0a1b2c3d', bad, good });
