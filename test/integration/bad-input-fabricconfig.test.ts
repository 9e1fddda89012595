/**
 * FabricConfig bad input against the real apiserver: the segment label must be a label key, route
 * protocols of others and impossible values are refused, each with one error naming the field.
 */
import { badInputSuite, type BadCase, type GoodCase } from '../support/bad-input.js';

const seg = (segmentLabel: string) => ({ hostRoutes: { segmentLabel } });

const bad: BadCase[] = [
  // A rule on the whole object gets no field path from the apiserver ("<nil>"): its message names metadata.name.
  { what: 'a FabricConfig not named default', name: 'cluster', spec: {}, field: '<nil>', message: /metadata.name: .* must be named 'default', not "cluster"/ },
  { what: 'segmentLabel with a space', spec: seg('l2 segment'), field: 'spec.hostRoutes.segmentLabel', message: /"l2 segment" is not a label key/ },
  { what: 'segmentLabel with an empty name after the prefix', spec: seg('podfabric.io/'), field: 'spec.hostRoutes.segmentLabel', message: /is not a label key/ },
  { what: 'segmentLabel with an uppercase prefix', spec: seg('Podfabric.io/segment'), field: 'spec.hostRoutes.segmentLabel', message: /is not a label key/ },
  { what: 'segmentLabel empty', spec: seg(''), field: 'spec.hostRoutes.segmentLabel', message: /"" is not a label key/ },
  { what: 'segmentLabel with a 64-character name', spec: seg(`podfabric.io/${'s'.repeat(64)}`), field: 'spec.hostRoutes.segmentLabel', message: /name of at most 63 characters/ },
  { what: 'asn 0', spec: { asn: 0 }, field: 'spec.asn', message: /greater than or equal to 1/ },
  { what: 'routerIdSource unknown', spec: { routerIdSource: 'Random' }, field: 'spec.routerIdSource', message: /Unsupported value: "Random"/ },
  { what: 'routeProtocol of the kernel (2)', spec: { routeProtocol: 2 }, field: 'spec.routeProtocol', message: /reserved by the kernel or another routing daemon/ },
  { what: 'routeProtocol of bird (12)', spec: { routeProtocol: 12 }, field: 'spec.routeProtocol', message: /reserved/ },
  { what: 'routeProtocol 256', spec: { routeProtocol: 256 }, field: 'spec.routeProtocol', message: /less than or equal to 255/ },
  { what: 'gobgpSocket relative path', spec: { gobgpSocket: 'run/gobgp.sock' }, field: 'spec.gobgpSocket', message: /should match/ },
  { what: 'CNI bridge name of 16 characters', spec: { cni: { bridge: 'b'.repeat(16) } }, field: 'spec.cni.bridge', message: /Too long: may not be more than 15/ },
  { what: 'CNI MTU below the IPv6 minimum', spec: { cni: { mtu: 1279 } }, field: 'spec.cni.mtu', message: /greater than or equal to 1280/ },
];

const good: GoodCase[] = [
  { what: 'all defaults', spec: {} },
  { what: 'segmentLabel without a prefix', spec: seg('segment') },
  { what: 'segmentLabel with a 253-character prefix', spec: seg(`${'p'.repeat(63)}.${'p'.repeat(63)}.${'p'.repeat(63)}.${'p'.repeat(61)}/${'n'.repeat(63)}`) },
  { what: 'routeProtocol 201 and 255, MTU 9000', spec: { routeProtocol: 255, cni: { mtu: 9000 } } },
  { what: 'gobgpSocket as a unix:// URL', spec: { gobgpSocket: 'unix:///run/podfabric/gobgp.sock' } },
];

badInputSuite({ kind: 'FabricConfig', plural: 'fabricconfigs', defaultName: 'default', bad, good });
