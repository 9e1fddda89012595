import { describe, expect, it } from 'vitest';
import { diffBgp, normalizeCommunityList, type BgpState } from '../../operator/agent/bgp-diff.js';
import type { Advertisement, BgpGlobalConfig, PeerConfig } from '../../operator/gobgp/speaker.js';

const g: BgpGlobalConfig = { asn: 65001, routerId: '10.0.1.11', listenPort: 179 };
const peer = (address: string, extra: Partial<PeerConfig> = {}): PeerConfig => ({ address, peerAsn: 65100, holdTime: 90, keepaliveInterval: 30, connectRetry: 5, ...extra });
const adv = (prefix: string, nextHop = '10.0.1.11', communities: string[] = []): Advertisement => ({ prefix, nextHop, communities });
const none = { addPeers: [], updatePeers: [], deletePeers: [], addAdvertisements: [], deleteAdvertisements: [] };
const state = (global: BgpGlobalConfig | null, peers: PeerConfig[] = [], advertisements: Advertisement[] = []): BgpState => ({ global, peers, advertisements });

describe('diffBgp', () => {
  it.each([
    {
      name: 'fresh gobgpd: start BGP, add everything',
      desired: state(g, [peer('10.0.1.1')], [adv('10.244.0.0/24')]),
      observed: state(null),
      want: { ...none, startBgp: g, addPeers: [peer('10.0.1.1')], addAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'restarted gobgpd (unconfigured): leftovers in observed are ignored, everything is added',
      desired: state(g, [peer('10.0.1.1')], [adv('10.244.0.0/24')]),
      observed: state(null, [peer('10.0.1.9')], [adv('10.9.0.0/24')]),
      want: { ...none, startBgp: g, addPeers: [peer('10.0.1.1')], addAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'nothing changed → nothing to do (sessions are not touched)',
      desired: state(g, [peer('10.0.1.1', { password: 'x' }), peer('fd00::1')], [adv('10.244.0.0/24', '10.0.1.11', ['65000:2', '65000:1'])]),
      observed: state({ ...g, listenAddresses: ['0.0.0.0', '::'] }, [peer('FD00:0::1'), peer('10.0.1.1', { password: 'x' })], [adv('10.244.0.0/24', '10.0.1.11', ['65000:1', '65000:2'])]),
      want: none,
    },
    {
      name: 'equivalent spellings are no change: v6 forms, community order/padding/duplicates, local ASN = global, GR time 0 = hold time',
      desired: state(
        g,
        [peer('fd00:0:0::0001', { localAsn: 65001, gracefulRestart: { enabled: true, restartTime: 0 }, ebgpMultihop: 0, password: '', description: '' })],
        [adv('FD00:244:0:1::/64', 'FD00::0b', ['065000:01', '65000:1', '1:2'])],
      ),
      observed: state(g, [peer('fd00::1', { gracefulRestart: { enabled: true, restartTime: 90 } })], [adv('fd00:244:0:1::/64', 'fd00::b', ['1:2', '65000:1'])]),
      want: none,
    },
    {
      name: 'an invalid prefix (host bits set) is passed through verbatim, for the router to reject loudly',
      desired: state(g, [], [adv('10.244.0.7/24')]),
      observed: state(g, [], [adv('10.244.0.0/24')]),
      want: { ...none, addAdvertisements: [adv('10.244.0.7/24')], deleteAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'one peer timer changed: only that peer is updated',
      desired: state(g, [peer('10.0.1.1', { holdTime: 9, keepaliveInterval: 3 }), peer('10.0.1.2')]),
      observed: state(g, [peer('10.0.1.1'), peer('10.0.1.2')]),
      want: { ...none, updatePeers: [peer('10.0.1.1', { holdTime: 9, keepaliveInterval: 3 })] },
    },
    {
      name: 'password changed is an update; peer gone is a delete; new peer an add',
      desired: state(g, [peer('10.0.1.1', { password: 'new' }), peer('10.0.1.3')]),
      observed: state(g, [peer('10.0.1.1', { password: 'old' }), peer('10.0.1.2')]),
      want: { ...none, addPeers: [peer('10.0.1.3')], updatePeers: [peer('10.0.1.1', { password: 'new' })], deletePeers: ['10.0.1.2'] },
    },
    {
      name: 'password removed is an update',
      desired: state(g, [peer('10.0.1.1')]),
      observed: state(g, [peer('10.0.1.1', { password: 'old' })]),
      want: { ...none, updatePeers: [peer('10.0.1.1')] },
    },
    {
      name: 'peer ASN, local ASN, multihop, GR, description changes are updates',
      desired: state(g, [
        peer('10.0.1.1', { peerAsn: 65200 }),
        peer('10.0.1.2', { localAsn: 64999 }),
        peer('10.0.1.3', { ebgpMultihop: 2 }),
        peer('10.0.1.4', { gracefulRestart: { enabled: true, restartTime: 120 } }),
        peer('10.0.1.5', { description: 'tor-b' }),
      ]),
      observed: state(g, [peer('10.0.1.1'), peer('10.0.1.2'), peer('10.0.1.3'), peer('10.0.1.4'), peer('10.0.1.5', { description: 'tor-a' })]),
      want: {
        ...none,
        updatePeers: [
          peer('10.0.1.1', { peerAsn: 65200 }),
          peer('10.0.1.2', { localAsn: 64999 }),
          peer('10.0.1.3', { ebgpMultihop: 2 }),
          peer('10.0.1.4', { gracefulRestart: { enabled: true, restartTime: 120 } }),
          peer('10.0.1.5', { description: 'tor-b' }),
        ],
      },
    },
    {
      name: 'GR disabled explicitly = no GR',
      desired: state(g, [peer('10.0.1.1', { gracefulRestart: { enabled: false, restartTime: 120 } })]),
      observed: state(g, [peer('10.0.1.1')]),
      want: none,
    },
    {
      name: 'peer addresses are canonicalised in the output; deletes name the canonical address',
      desired: state(g, [peer('FD00:0::2')]),
      observed: state(g, [peer('fd00::1')]),
      want: { ...none, addPeers: [peer('fd00::2')], deletePeers: ['fd00::1'] },
    },
    {
      name: 'CIDR changed: new prefix added, old withdrawn',
      desired: state(g, [], [adv('10.244.9.0/24')]),
      observed: state(g, [], [adv('10.244.0.0/24')]),
      want: { ...none, addAdvertisements: [adv('10.244.9.0/24')], deleteAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'same prefix, new community: re-added in place (GoBGP replaces the path, no withdraw)',
      desired: state(g, [], [adv('10.244.0.0/24', '10.0.1.11', ['65000:9'])]),
      observed: state(g, [], [adv('10.244.0.0/24')]),
      want: { ...none, addAdvertisements: [adv('10.244.0.0/24', '10.0.1.11', ['65000:9'])] },
    },
    {
      name: 'same prefix, new next hop: re-added in place',
      desired: state(g, [], [adv('fd00:244::/64', 'fd00::12')]),
      observed: state(g, [], [adv('fd00:244::/64', 'fd00::11')]),
      want: { ...none, addAdvertisements: [adv('fd00:244::/64', 'fd00::12')] },
    },
    {
      name: 'community removed: re-added without it',
      desired: state(g, [], [adv('10.244.0.0/24')]),
      observed: state(g, [], [adv('10.244.0.0/24', '10.0.1.11', ['65000:1'])]),
      want: { ...none, addAdvertisements: [adv('10.244.0.0/24')] },
    },
    {
      name: 'a prefix listed twice: the last entry wins',
      desired: state(g, [], [adv('10.244.0.0/24', '10.0.1.11', ['65000:1']), adv('10.244.0.0/24', '10.0.1.11', ['65000:2'])]),
      observed: state(g, [], [adv('10.244.0.0/24', '10.0.1.11', ['65000:2'])]),
      want: none,
    },
    {
      name: 'both families at once, outputs sorted',
      desired: state(g, [peer('fd00::1'), peer('10.0.1.1')], [adv('fd00:244:1::/64', 'fd00::11'), adv('10.244.1.0/24'), adv('10.244.0.0/24')]),
      observed: state(g, [], [adv('fd00:244:9::/64', 'fd00::11'), adv('10.244.9.0/24')]),
      want: {
        ...none,
        addPeers: [peer('10.0.1.1'), peer('fd00::1')],
        addAdvertisements: [adv('10.244.0.0/24'), adv('10.244.1.0/24'), adv('fd00:244:1::/64', 'fd00::11')],
        deleteAdvertisements: [adv('10.244.9.0/24'), adv('fd00:244:9::/64', 'fd00::11')],
      },
    },
    {
      name: 'listen addresses not named in desired: whatever gobgpd defaulted to is fine',
      desired: state(g),
      observed: state({ ...g, listenAddresses: ['0.0.0.0', '::'] }),
      want: none,
    },
  ])('$name', ({ desired, observed, want }) => {
    expect(diffBgp(desired as BgpState & { global: BgpGlobalConfig }, observed)).toEqual(want);
  });

  it.each([
    { name: 'ASN', observed: g, desired: { ...g, asn: 65002 }, reason: 'ASN 65001 → 65002' },
    { name: 'router ID', observed: g, desired: { ...g, routerId: '10.0.1.12' }, reason: 'router ID 10.0.1.11 → 10.0.1.12' },
    { name: 'listen port', observed: g, desired: { ...g, listenPort: -1 }, reason: 'listen port 179 → -1' },
    { name: 'listen addresses', observed: { ...g, listenAddresses: ['0.0.0.0', '::'] }, desired: { ...g, listenAddresses: ['10.0.1.11'] }, reason: 'listen addresses 0.0.0.0,:: → 10.0.1.11' },
  ])('a $name change on a running BGP asks for a restart with a reason, and re-adds everything', ({ observed, desired, reason }) => {
    const d = diffBgp(
      { global: desired, peers: [peer('10.0.1.1'), peer('10.0.1.2')], advertisements: [adv('10.244.0.0/24')] },
      { global: observed, peers: [peer('10.0.1.1')], advertisements: [adv('10.244.0.0/24')] },
    );
    expect(d).toEqual({ ...none, restartNeeded: reason, addPeers: [peer('10.0.1.1'), peer('10.0.1.2')], addAdvertisements: [adv('10.244.0.0/24')] });
    expect(d.startBgp).toBeUndefined();
  });

  it('is pure: inputs are not modified', () => {
    const desired = state(g, [peer('FD00::1', { localAsn: 65001 })], [adv('10.244.0.5/24', '10.0.1.11', ['2:2', '1:1'])]) as BgpState & { global: BgpGlobalConfig };
    const observed = state(g, [peer('10.0.1.9')], [adv('10.9.0.0/24')]);
    const before = JSON.stringify([desired, observed]);
    diffBgp(desired, observed);
    expect(JSON.stringify([desired, observed])).toBe(before);
  });

  it('normalizeCommunityList sorts numerically and dedupes', () => {
    expect(normalizeCommunityList(['65000:100', '9:1', '65000:20', '065000:020'])).toEqual(['9:1', '65000:20', '65000:100']);
    expect(normalizeCommunityList(undefined)).toEqual([]);
  });
});
