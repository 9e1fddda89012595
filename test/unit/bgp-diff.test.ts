import { describe, expect, it } from 'vitest';
import { diffBgp } from '../../operator/agent/bgp-diff.js';
import type { Advertisement, PeerConfig } from '../../operator/agent/router.js';

const g = { asn: 65001, routerId: '10.0.1.11', listenPort: 179 };
const peer = (address: string, extra: Partial<PeerConfig> = {}): PeerConfig => ({ address, peerAsn: 65100, holdTime: 90, keepaliveInterval: 30, connectRetry: 5, ...extra });
const adv = (prefix: string, nextHop = '10.0.1.11', communities: string[] = []): Advertisement => ({ prefix, nextHop, communities });
const none = { addPeers: [], updatePeers: [], deletePeers: [], addAdvertisements: [], deleteAdvertisements: [] };

describe('diffBgp', () => {
  it.each([
    {
      name: 'fresh gobgpd: start BGP, add everything',
      desired: { global: g, peers: [peer('10.0.1.1')], advertisements: [adv('10.244.0.0/24')] },
      observed: { global: null, peers: [], advertisements: [] },
      want: { ...none, startBgp: g, addPeers: [peer('10.0.1.1')], addAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'nothing changed → nothing to do (sessions are not touched)',
      desired: { global: g, peers: [peer('10.0.1.1', { password: 'x' }), peer('fd00::1')], advertisements: [adv('10.244.0.0/24', '10.0.1.11', ['65000:2', '65000:1'])] },
      observed: { global: { ...g, listenAddresses: ['0.0.0.0', '::'] }, peers: [peer('FD00:0::1'), peer('10.0.1.1', { password: 'x' })], advertisements: [adv('10.244.0.0/24', '10.0.1.11', ['65000:1', '65000:2'])] },
      want: none,
    },
    {
      name: 'one peer timer changed: only that peer is updated',
      desired: { global: g, peers: [peer('10.0.1.1', { holdTime: 9, keepaliveInterval: 3 }), peer('10.0.1.2')], advertisements: [] },
      observed: { global: g, peers: [peer('10.0.1.1'), peer('10.0.1.2')], advertisements: [] },
      want: { ...none, updatePeers: [peer('10.0.1.1', { holdTime: 9, keepaliveInterval: 3 })] },
    },
    {
      name: 'password changed is an update; peer gone is a delete; new peer an add',
      desired: { global: g, peers: [peer('10.0.1.1', { password: 'new' }), peer('10.0.1.3')], advertisements: [] },
      observed: { global: g, peers: [peer('10.0.1.1', { password: 'old' }), peer('10.0.1.2')], advertisements: [] },
      want: { ...none, addPeers: [peer('10.0.1.3')], updatePeers: [peer('10.0.1.1', { password: 'new' })], deletePeers: ['10.0.1.2'] },
    },
    {
      name: 'CIDR changed: new prefix added, old withdrawn',
      desired: { global: g, peers: [], advertisements: [adv('10.244.9.0/24')] },
      observed: { global: g, peers: [], advertisements: [adv('10.244.0.0/24')] },
      want: { ...none, addAdvertisements: [adv('10.244.9.0/24')], deleteAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'same prefix, new community: re-added in place (no withdraw)',
      desired: { global: g, peers: [], advertisements: [adv('10.244.0.0/24', '10.0.1.11', ['65000:9'])] },
      observed: { global: g, peers: [], advertisements: [adv('10.244.0.0/24')] },
      want: { ...none, addAdvertisements: [adv('10.244.0.0/24', '10.0.1.11', ['65000:9'])] },
    },
  ])('$name', ({ desired, observed, want }) => {
    expect(diffBgp(desired, observed)).toEqual(want);
  });

  it('a router ID or ASN change on a running BGP asks for a restart with a reason', () => {
    const d = diffBgp({ global: { ...g, asn: 65002 }, peers: [peer('10.0.1.1')], advertisements: [adv('10.244.0.0/24')] }, { global: g, peers: [peer('10.0.1.1')], advertisements: [] });
    expect(d.restartNeeded).toBe('ASN 65001 → 65002');
    expect(d.addPeers).toHaveLength(1);
  });
});
