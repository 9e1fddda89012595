/**
 * BGPPeer bad input against the real apiserver: addresses that cannot be a neighbour, ASNs, timers,
 * communities, selectors and the MD5 Secret reference, each refused with one error naming the field.
 */
import { badInputSuite, type BadCase, type GoodCase } from '../support/bad-input.js';

const base = { peerAddress: '10.0.1.1', peerASN: 65101 };
const with_ = (extra: Record<string, unknown>) => ({ ...base, ...extra });
const secret = (ref: Record<string, unknown>) => with_({ passwordSecretRef: { namespace: 'kube-system', name: 'tor-md5', ...ref } });

const bad: BadCase[] = [
  { what: 'peerAddress that is a hostname', spec: with_({ peerAddress: 'tor1.example.com' }), field: 'spec.peerAddress', message: /must be an IPv4 or IPv6 address/ },
  { what: 'peerAddress with a prefix length', spec: with_({ peerAddress: '10.0.1.1/24' }), field: 'spec.peerAddress', message: /must be an IPv4 or IPv6 address/ },
  { what: 'peerAddress in IPv4-mapped form', spec: with_({ peerAddress: '::ffff:10.0.1.1' }), field: 'spec.peerAddress', message: /IPv4-mapped .* write the IPv4 form/ },
  { what: 'peerAddress 0.0.0.0', spec: with_({ peerAddress: '0.0.0.0' }), field: 'spec.peerAddress', message: /"0.0.0.0" cannot be a BGP neighbour/ },
  { what: 'peerAddress ::', spec: with_({ peerAddress: '::' }), field: 'spec.peerAddress', message: /cannot be a BGP neighbour/ },
  { what: 'peerAddress multicast 224.0.0.5', spec: with_({ peerAddress: '224.0.0.5' }), field: 'spec.peerAddress', message: /multicast/ },
  { what: 'peerAddress multicast ff02::2', spec: with_({ peerAddress: 'ff02::2' }), field: 'spec.peerAddress', message: /multicast/ },
  { what: 'peerAddress broadcast 255.255.255.255', spec: with_({ peerAddress: '255.255.255.255' }), field: 'spec.peerAddress', message: /reserved \(240.0.0.0\/4\)/ },
  { what: 'peerASN 0', spec: with_({ peerASN: 0 }), field: 'spec.peerASN', message: /should be greater than or equal to 1/ },
  { what: 'peerASN above 4294967295', spec: with_({ peerASN: 4294967296 }), field: 'spec.peerASN', message: /less than or equal to 4294967295/ },
  { what: 'localASN 0', spec: with_({ localASN: 0 }), field: 'spec.localASN', message: /greater than or equal to 1/ },
  { what: 'holdTime 2', spec: with_({ timers: { holdTime: 2, keepaliveInterval: 0 } }), field: 'spec.timers.holdTime', message: /0 \(no keepalives\) or at least 3/ },
  { what: 'keepalive above a third of holdTime', spec: with_({ timers: { holdTime: 9, keepaliveInterval: 4 } }), field: 'spec.timers', message: /at most a third of holdTime/ },
  { what: 'connectRetry 0', spec: with_({ timers: { connectRetry: 0 } }), field: 'spec.timers.connectRetry', message: /greater than or equal to 1/ },
  { what: 'graceful restartTime 4096', spec: with_({ gracefulRestart: { enabled: true, restartTime: 4096 } }), field: 'spec.gracefulRestart.restartTime', message: /less than or equal to 4095/ },
  { what: 'ebgpMultihop 0', spec: with_({ ebgpMultihop: 0 }), field: 'spec.ebgpMultihop', message: /greater than or equal to 1/ },
  { what: 'community half above 65535', spec: with_({ communities: ['65000:100', '65536:1'] }), field: 'spec.communities[1]', message: /0-65535/ },
  { what: 'community without a colon', spec: with_({ communities: ['65000'] }), field: 'spec.communities[0]', message: /should match/ },
  { what: 'nodeSelector key with a space', spec: with_({ nodeSelector: { matchLabels: { 'my rack': 'r1' } } }), field: 'spec.nodeSelector.matchLabels', message: /every key must be a label key/ },
  { what: 'nodeSelector value with a space', spec: with_({ nodeSelector: { matchLabels: { rack: 'rack 1' } } }), field: 'spec.nodeSelector.matchLabels[rack]', message: /"rack 1" is not a label value/ },
  { what: 'nodeSelector expression key starting with a dot', spec: with_({ nodeSelector: { matchExpressions: [{ key: '.rack', operator: 'Exists' }] } }), field: 'spec.nodeSelector.matchExpressions[0].key', message: /is not a label key/ },
  { what: 'Exists with values', spec: with_({ nodeSelector: { matchExpressions: [{ key: 'rack', operator: 'Exists', values: ['r1'] }] } }), field: 'spec.nodeSelector.matchExpressions[0]', message: /Exists and DoesNotExist take no values/ },
  { what: 'Secret namespace in uppercase', spec: secret({ namespace: 'Kube-System' }), field: 'spec.passwordSecretRef.namespace', message: /"Kube-System" is not a DNS-1123 label/ },
  { what: 'Secret namespace with a dot', spec: secret({ namespace: 'kube.system' }), field: 'spec.passwordSecretRef.namespace', message: /DNS-1123 label/ },
  { what: 'Secret namespace of 64 characters (only "Too long")', spec: secret({ namespace: 'n'.repeat(64) }), field: 'spec.passwordSecretRef.namespace', message: /Too long: may not be more than 63/ },
  { what: 'Secret namespace empty', spec: secret({ namespace: '' }), field: 'spec.passwordSecretRef.namespace', message: /"" is not a DNS-1123 label/ },
  { what: 'Secret name with an underscore', spec: secret({ name: 'tor_md5' }), field: 'spec.passwordSecretRef.name', message: /"tor_md5" is not a DNS-1123 subdomain/ },
  { what: 'Secret name with an empty DNS label', spec: secret({ name: 'tor..md5' }), field: 'spec.passwordSecretRef.name', message: /DNS-1123 subdomain/ },
  { what: 'Secret name ending in a dash', spec: secret({ name: 'tor-' }), field: 'spec.passwordSecretRef.name', message: /DNS-1123 subdomain/ },
  { what: 'Secret key with a slash', spec: secret({ key: 'bgp/password' }), field: 'spec.passwordSecretRef.key', message: /"bgp\/password" is not a Secret data key/ },
  { what: 'Secret key ".."', spec: secret({ key: '..' }), field: 'spec.passwordSecretRef.key', message: /not "\.", "\.\." or starting with "\.\."/ },
  { what: 'Secret key starting with ".."', spec: secret({ key: '..data' }), field: 'spec.passwordSecretRef.key', message: /Secret data key/ },
  { what: 'Secret key with a space', spec: secret({ key: 'pass word' }), field: 'spec.passwordSecretRef.key', message: /Secret data key/ },
];

const good: GoodCase[] = [
  { what: 'IPv6 peer', spec: with_({ peerAddress: 'fd00:10::1' }) },
  { what: 'IPv4 link-local peer (unnumbered-style point-to-point)', spec: with_({ peerAddress: '169.254.0.1' }) },
  { what: 'ASN 1 and 4294967295', spec: with_({ peerASN: 1, localASN: 4294967295 }) },
  { what: 'holdTime 0 (no keepalives)', spec: with_({ timers: { holdTime: 0, keepaliveInterval: 0 } }) },
  { what: 'holdTime 3 with keepalive 1', spec: with_({ timers: { holdTime: 3, keepaliveInterval: 1 } }) },
  { what: 'community 0:0 and 65535:65535', spec: with_({ communities: ['0:0', '65535:65535'] }) },
  { what: 'Secret ref with the default key', spec: secret({}) },
  { what: 'Secret key ".password" (a dot file is allowed)', spec: secret({ key: '.password' }) },
  { what: 'Secret key of 253 characters, name with dots, 63-character namespace', spec: secret({ key: 'k'.repeat(253), name: 'tor.md5.v2', namespace: 'n'.repeat(63) }) },
  { what: 'selector on well-known labels', spec: with_({ nodeSelector: { matchLabels: { 'topology.kubernetes.io/zone': 'z1' }, matchExpressions: [{ key: 'podfabric.io/rack', operator: 'In', values: ['r1', 'r2'] }] } }) },
];

badInputSuite({ kind: 'BGPPeer', plural: 'bgppeers', defaultName: 'bad-input-peer', bad, good });
