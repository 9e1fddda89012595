/**
 * planNodePeers: the one rule by which an agent derives its sessions from the BGPPeers it watches (and
 * by which the controller reports selection and conflicts). Table-tested: selection, validity (pool
 * CIDRs, password Secret state), duplicate addresses, ASN/router ID, communities.
 */
import { describe, expect, it } from 'vitest';
import { bgpPeerSpec } from '../../operator/api/bgppeer.js';
import { fabricConfigSpec } from '../../operator/api/fabricconfig.js';
import { hashRouterId, planNodePeers, secretRefsFor, type NodePeersInput, type PeerInfo, type PeerNode, type SecretState } from '../../operator/plan/peers.js';

const cfg = fabricConfigSpec.parse({});
const node = (labels: Record<string, string> = {}, extra: Partial<PeerNode> = {}): PeerNode => ({ name: 'r1n1', labels, annotations: {}, ips: { 4: '10.0.1.11' }, ...extra });
const peer = (name: string, spec: Record<string, unknown>, ts = '2026-01-01T00:00:00Z'): PeerInfo => ({ name, spec: bgpPeerSpec.parse(spec), creationTimestamp: ts });
const secretRef = { namespace: 'net', name: 'md5' };
const input = (peers: PeerInfo[], extra: Partial<NodePeersInput> = {}): NodePeersInput => ({ config: cfg, peers, poolCidrs: [{ pool: 'v4', cidr: '10.244.0.0/16' }], secret: () => 'ok', ...extra });

const tor = peer('tor', { peerAddress: '10.0.1.1', peerASN: 65101, communities: ['65000:2'], nodeSelector: { matchLabels: { rack: 'r1' } } });
const rs = peer('rs', { peerAddress: '10.0.0.254', peerASN: 65000, communities: ['65000:1', '65000:2'] });

describe('planNodePeers', () => {
  const cases: Array<{ name: string; node: PeerNode; input: NodePeersInput; peers: string[]; communities?: string[]; invalid?: string[]; conflicts?: string[] }> = [
    { name: 'no BGPPeer: no sessions', node: node(), input: input([]), peers: [], communities: [] },
    { name: 'selector matches: both peers, communities merged and sorted', node: node({ rack: 'r1' }), input: input([tor, rs]), peers: ['rs@10.0.0.254', 'tor@10.0.1.1'], communities: ['65000:1', '65000:2'] },
    { name: 'selector does not match: only the peer without selector', node: node({ rack: 'r2' }), input: input([tor, rs]), peers: ['rs@10.0.0.254'], communities: ['65000:1', '65000:2'] },
    {
      name: 'peer inside a pod pool: left out, reported invalid',
      node: node(),
      input: input([peer('bad', { peerAddress: '10.244.1.1', peerASN: 1 }), rs]),
      peers: ['rs@10.0.0.254'],
      invalid: ['bad:AddressInPodCIDR'],
    },
    ...(['missing', 'no-key'] as SecretState[]).map((st) => ({
      name: `password Secret ${st}: left out`,
      node: node(),
      input: input([peer('md5', { peerAddress: '10.0.1.2', peerASN: 1, passwordSecretRef: secretRef })], { secret: () => st }),
      peers: [],
      invalid: [`md5:${st === 'missing' ? 'SecretMissing' : 'SecretKeyMissing'}`],
    })),
    {
      name: 'password Secret present: kept, with its reference',
      node: node(),
      input: input([peer('md5', { peerAddress: '10.0.1.2', peerASN: 1, passwordSecretRef: secretRef })]),
      peers: ['md5@10.0.1.2'],
    },
    {
      name: 'an invalid peer that does not select the node is not judged here',
      node: node({ rack: 'r2' }),
      input: input([peer('bad', { peerAddress: '10.244.1.1', peerASN: 1, nodeSelector: { matchLabels: { rack: 'r1' } } })]),
      peers: [],
      invalid: [],
    },
    {
      name: 'two peers with one address: the older wins, the other is a conflict',
      node: node(),
      input: input([peer('new', { peerAddress: '10.0.1.1', peerASN: 2 }, '2026-02-01T00:00:00Z'), peer('old', { peerAddress: '10.0.1.1', peerASN: 1 })]),
      peers: ['old@10.0.1.1'],
      conflicts: ['new→old'],
    },
  ];
  it.each(cases)('$name', (c) => {
    const r = planNodePeers(c.node, c.input);
    expect(r.peers.map((p) => `${p.name}@${p.address}`)).toEqual(c.peers);
    if (c.communities) expect(r.communities).toEqual(c.communities);
    if (c.invalid) expect(r.invalid.map((i) => `${i.peer}:${i.reasons.map((x) => x.reason).join(',')}`)).toEqual(c.invalid);
    if (c.conflicts) expect(r.conflicts.map((x) => `${x.peer}→${x.winner}`)).toEqual(c.conflicts);
  });

  it('planned peer: local ASN from the node label, timers and options carried, router ID from the node IP by default', () => {
    const r = planNodePeers(node({ 'podfabric.io/asn': '65011' }), input([peer('gr', { peerAddress: '10.0.1.1', peerASN: 65101, gracefulRestart: { enabled: true }, ebgpMultihop: 2, passwordSecretRef: secretRef })]));
    expect(r.asn).toBe(65011);
    expect(r.routerId).toBe(cfg.routerIdSource === 'NodeIPv4' ? '10.0.1.11' : hashRouterId('r1n1'));
    expect(r.peers).toEqual([
      { address: '10.0.1.1', name: 'gr', peerASN: 65101, localASN: 65011, holdTime: 90, keepaliveInterval: 30, connectRetry: 5, gracefulRestart: { enabled: true, restartTime: 120 }, ebgpMultihop: 2, passwordSecretRef: { ...secretRef, key: 'password' } },
    ]);
  });

  it('router ID annotation wins; the same inputs give the same sessions (agent and controller agree)', () => {
    const n = node({ rack: 'r1' }, { annotations: { 'podfabric.io/router-id': '1.2.3.4' } });
    const a = planNodePeers(n, input([rs, tor]));
    expect(a.routerId).toBe('1.2.3.4');
    expect(planNodePeers(n, input([tor, rs]))).toEqual(a);
  });

  it('secretRefsFor: the Secrets of the peers selecting the node only', () => {
    const sel = peer('a', { peerAddress: '10.0.1.1', peerASN: 1, passwordSecretRef: secretRef, nodeSelector: { matchLabels: { rack: 'r1' } } });
    const other = peer('b', { peerAddress: '10.0.1.2', peerASN: 1, passwordSecretRef: { namespace: 'net', name: 'other' }, nodeSelector: { matchLabels: { rack: 'r2' } } });
    expect(secretRefsFor(node({ rack: 'r1' }), [sel, other, rs]).map((r) => r.name)).toEqual(['md5']);
  });
});
