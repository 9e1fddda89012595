/**
 * IPPool bad input against the real apiserver: what is not a usable pod range or block is refused with
 * one error naming the field; the valid edges next to each refused range are accepted.
 */
import { App } from 'cdk8s';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_ID, PodfabricChart } from '../../cdk8s/chart.js';
import { POOL_WARNINGS_POLICY } from '../../cdk8s/warnings.js';
import { badInputSuite, object, type BadCase, type GoodCase } from '../support/bad-input.js';
import { applyObjects, kubectl, testRest, waitFor } from '../support/kube.js';
import { API_PATH } from '../../operator/api/common.js';
import type { KubeError } from '../../operator/kube/rest.js';

const L63 = 'a'.repeat(63);
const sel = (nodeSelector: unknown) => ({ cidr: '10.244.0.0/16', nodeSelector });

const bad: BadCase[] = [
  { what: 'cidr that is no CIDR', spec: { cidr: '10.244.0.0' }, field: 'spec.cidr', message: /must be a CIDR/ },
  { what: 'cidr with host bits', spec: { cidr: '10.244.0.1/16' }, field: 'spec.cidr', message: /host bits/ },
  { what: 'cidr in IPv4-mapped form', spec: { cidr: '::ffff:10.0.0.0/104' }, field: 'spec.cidr', message: /IPv4-mapped .* write the IPv4 form/ },
  { what: 'loopback 127.0.0.0/16', spec: { cidr: '127.0.0.0/16' }, field: 'spec.cidr', message: /"127.0.0.0\/16" is not usable pod address space: it overlaps loopback/ },
  { what: '0.0.0.0/0 (covers everything)', spec: { cidr: '0.0.0.0/0' }, field: 'spec.cidr', message: /overlaps "this network" \(0.0.0.0\/8\)/ },
  { what: '"this network" 0.0.0.0/16', spec: { cidr: '0.0.0.0/16' }, field: 'spec.cidr', message: /"this network"/ },
  { what: 'a /7 around loopback', spec: { cidr: '126.0.0.0/7' }, field: 'spec.cidr', message: /loopback \(127.0.0.0\/8\)/ },
  { what: 'link-local 169.254.0.0/20', spec: { cidr: '169.254.0.0/20' }, field: 'spec.cidr', message: /link-local \(169.254.0.0\/16\)/ },
  { what: 'multicast 239.0.0.0/16', spec: { cidr: '239.0.0.0/16' }, field: 'spec.cidr', message: /multicast \(224.0.0.0\/4\)/ },
  { what: 'reserved 240.0.0.0/8', spec: { cidr: '240.0.0.0/8' }, field: 'spec.cidr', message: /reserved \(240.0.0.0\/4/ },
  { what: 'the block holding the broadcast address', spec: { cidr: '255.255.255.0/24' }, field: 'spec.cidr', message: /broadcast address 255.255.255.255/ },
  { what: 'IPv6 ::/0 (covers ::)', spec: { cidr: '::/0' }, field: 'spec.cidr', message: /the unspecified address/ },
  { what: 'IPv6 around the IPv4-mapped block', spec: { cidr: '::fffe:0:0/95' }, field: 'spec.cidr', message: /IPv4-mapped addresses \(::\/80/ },
  { what: 'IPv6 link-local fe80::/64', spec: { cidr: 'fe80::/64' }, field: 'spec.cidr', message: /link-local \(fe80::\/10\)/ },
  { what: 'IPv6 multicast ff02::/16', spec: { cidr: 'ff02::/16' }, field: 'spec.cidr', message: /multicast \(ff00::\/8\)/ },
  { what: 'IPv4 blockSize 31 (no room for a pod)', spec: { cidr: '10.244.0.0/16', blockSize: 31 }, field: 'spec.blockSize', message: /no address for pods .* \/30 or larger \(IPv4\)/ },
  { what: 'IPv4 blockSize 32', spec: { cidr: '10.244.0.0/16', blockSize: 32 }, field: 'spec.blockSize', message: /no address for pods/ },
  { what: 'IPv6 blockSize 127', spec: { cidr: 'fd00:10:244::/56', blockSize: 127 }, field: 'spec.blockSize', message: /\/126 or larger \(IPv6\)/ },
  { what: 'IPv6 blockSize 128', spec: { cidr: 'fd00:10:244::/56', blockSize: 128 }, field: 'spec.blockSize', message: /no address for pods/ },
  { what: 'a /31 pool without blockSize is its own block', spec: { cidr: '10.244.0.0/31' }, field: 'spec.cidr', message: /without blockSize this pool is its own block/ },
  { what: 'a /127 IPv6 pool without blockSize', spec: { cidr: 'fd00::/127' }, field: 'spec.cidr', message: /its own block/ },
  { what: 'blockSize shorter than the pool', spec: { cidr: '10.244.0.0/24', blockSize: 16 }, field: 'spec.blockSize', message: /must not be shorter than the pool prefix/ },
  { what: 'blockSize 33 for IPv4 (one error, not two)', spec: { cidr: '10.244.0.0/16', blockSize: 33 }, field: 'spec.blockSize', message: /at most 32 for an IPv4 pool/ },
  { what: 'matchLabels key with a space', spec: sel({ matchLabels: { 'my rack': 'r1' } }), field: 'spec.nodeSelector.matchLabels', message: /every key must be a label key/ },
  { what: 'matchLabels key with an uppercase prefix', spec: sel({ matchLabels: { 'Example.com/rack': 'r1' } }), field: 'spec.nodeSelector.matchLabels', message: /label key/ },
  { what: 'matchLabels key with a 64-character name', spec: sel({ matchLabels: { [`podfabric.io/${'a'.repeat(64)}`]: 'r1' } }), field: 'spec.nodeSelector.matchLabels', message: /at most 63 characters/ },
  { what: 'matchLabels with an empty key', spec: sel({ matchLabels: { '': 'r1' } }), field: 'spec.nodeSelector.matchLabels', message: /every key must be a label key/ },
  { what: 'matchExpressions with an empty key', spec: sel({ matchExpressions: [{ key: '', operator: 'Exists' }] }), field: 'spec.nodeSelector.matchExpressions[0].key', message: /"" is not a label key/ },
  { what: 'matchLabels value ending in a dash', spec: sel({ matchLabels: { rack: 'r1-' } }), field: 'spec.nodeSelector.matchLabels[rack]', message: /"r1-" is not a label value/ },
  { what: 'matchLabels value of 64 characters (only "Too long")', spec: sel({ matchLabels: { rack: `${L63}b` } }), field: 'spec.nodeSelector.matchLabels.rack', message: /Too long: may not be more than 63/ },
  { what: 'matchExpressions key ending in a slash', spec: sel({ matchExpressions: [{ key: 'example.com/', operator: 'Exists' }] }), field: 'spec.nodeSelector.matchExpressions[0].key', message: /"example.com\/" is not a label key/ },
  { what: 'matchExpressions key with two slashes', spec: sel({ matchExpressions: [{ key: 'a/b/c', operator: 'Exists' }] }), field: 'spec.nodeSelector.matchExpressions[0].key', message: /is not a label key/ },
  { what: 'matchExpressions value with a slash', spec: sel({ matchExpressions: [{ key: 'rack', operator: 'In', values: ['r1', 'r/2'] }] }), field: 'spec.nodeSelector.matchExpressions[0].values[1]', message: /"r\/2" is not a label value/ },
  { what: 'In without values', spec: sel({ matchExpressions: [{ key: 'rack', operator: 'In' }] }), field: 'spec.nodeSelector.matchExpressions[0]', message: /In and NotIn need a non-empty values list/ },
];

const good: GoodCase[] = [
  { what: 'the smallest IPv4 pool: a /30 (gateway + one pod)', spec: { cidr: '10.244.0.0/30' } },
  { what: 'the smallest IPv6 pool: a /126', spec: { cidr: 'fd00::/126' } },
  { what: 'IPv4 blockSize 30 and IPv6 blockSize 126', spec: { cidr: '10.244.0.0/16', blockSize: 30 } },
  { what: 'IPv6 blockSize 126', spec: { cidr: 'fd00:10:244::/56', blockSize: 126 } },
  { what: 'right below loopback: 126.255.255.0/24', spec: { cidr: '126.255.255.0/24' } },
  { what: 'right after "this network": 1.0.0.0/8', spec: { cidr: '1.0.0.0/8' } },
  { what: 'right below multicast: 223.255.255.0/24', spec: { cidr: '223.255.255.0/24' } },
  { what: 'CGNAT space 100.64.0.0/10', spec: { cidr: '100.64.0.0/10' } },
  { what: 'IPv6 ULA fc00::/7 as one pool', spec: { cidr: 'fc00::/7' } },
  { what: 'IPv6 fe00::/9 (next to link-local)', spec: { cidr: 'fe00::/9' } },
  {
    what: 'selector with prefixed keys, empty value and 63-character names',
    spec: sel({
      matchLabels: { 'podfabric.io/rack': 'r1', [L63]: '', 'a.b-c.d/E_f.G-h': L63 },
      matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['', 'n1', 'N_1.a-b'] }, { key: 'x', operator: 'DoesNotExist' }],
    }),
  },
];

badInputSuite({ kind: 'IPPool', plural: 'ippools', defaultName: 'bad-input-pool', bad, good });

describe('IPPool: an update is checked too', () => {
  const rest = testRest();
  const path = `${API_PATH}/ippools/bad-input-immutable`;
  afterAll(async () => {
    await rest.request('DELETE', path).catch(() => undefined);
  });

  it('changing cidr is refused with one error on spec.cidr, even to a valid range', async () => {
    await rest.request('POST', `${API_PATH}/ippools`, object('IPPool', 'bad-input-immutable', { cidr: '10.250.0.0/16' }));
    const err = await rest
      .request('PATCH', `${path}?dryRun=All`, { spec: { cidr: '10.251.0.0/16' } }, 'application/merge-patch+json')
      .then(() => null, (e: KubeError) => e);
    expect(err?.code).toBe(422);
    const causes = (err!.details as { causes: Array<{ field: string; message: string }> }).causes;
    expect(causes.map((c) => c.field)).toEqual(['spec.cidr']);
    expect(causes[0]!.message).toMatch(/cidr is immutable: create a new pool and disable this one/);
    // blockSize may change; a block size with no room for pods may not.
    await rest.request('PATCH', `${path}?dryRun=All`, { spec: { blockSize: 26 } }, 'application/merge-patch+json');
    const tiny = await rest.request('PATCH', `${path}?dryRun=All`, { spec: { blockSize: 32 } }, 'application/merge-patch+json').then(() => null, (e: KubeError) => e);
    expect((tiny!.details as { causes: Array<{ field: string }> }).causes.map((c) => c.field)).toEqual(['spec.blockSize']);
  });
});

/**
 * Flagged, not refused: the install chart's Warn-mode ValidatingAdmissionPolicy (cdk8s/warnings.ts),
 * installed here as the chart builds it. The pool is accepted and kubectl prints a Warning naming the field.
 */
describe('IPPool: accepted but flagged by the install chart warning policy', () => {
  const policy = new PodfabricChart(new App({ outdir: 'dist' }), CHART_ID, {}).toJson().filter((o: { metadata: { name: string } }) => o.metadata.name === POOL_WARNINGS_POLICY);
  const create = (spec: Record<string, unknown>) =>
    kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(object('IPPool', 'flag-probe', spec)) });

  beforeAll(async () => {
    expect(policy.map((o: { kind: string }) => o.kind).sort()).toEqual(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    await applyObjects(policy);
    // The policy takes effect once the apiserver's admission plugin has loaded it.
    await waitFor('the warning policy to take effect', async () => /Warning:/.test((await create({ cidr: '192.0.2.0/24' })).stderr), 30_000, 200);
  });
  afterAll(async () => {
    await kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', POOL_WARNINGS_POLICY, '--ignore-not-found']);
  });

  const flagged: Array<[string, Record<string, unknown>, RegExp]> = [
    ['documentation range 192.0.2.0/24', { cidr: '192.0.2.0/24', blockSize: 25 }, /spec.cidr "192.0.2.0\/24" overlaps space set aside for documentation/],
    ['documentation range 2001:db8::/48', { cidr: '2001:db8::/48' }, /documentation or benchmarking/],
    ['benchmarking range 198.18.0.0/15', { cidr: '198.18.0.0/15' }, /documentation or benchmarking/],
    ['public IPv4 8.8.0.0/16', { cidr: '8.8.0.0/16' }, /spec.cidr "8.8.0.0\/16" is public IPv4 space/],
    ['deprecated site-local fec0::/10', { cidr: 'fec0::/10' }, /outside unique-local \(fc00::\/7\) and global unicast/],
    ['IPv4 /26 blocks', { cidr: '10.244.0.0/16', blockSize: 26 }, /spec.blockSize: a \/26 block holds fewer than 110 pod addresses/],
    ['a /28 pool without blockSize', { cidr: '10.244.0.0/28' }, /a \/28 block \(no blockSize: the pool itself\) holds fewer than 110/],
    ['IPv6 /122 blocks', { cidr: 'fd00:10:244::/56', blockSize: 122 }, /a \/122 block/],
  ];
  it.each(flagged)('%s', async (_what, spec, warning) => {
    const r = await create(spec);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/created \(server dry run\)/);
    expect(r.stderr).toMatch(/Warning: .*podfabric-ippool-warnings/);
    expect(r.stderr).toMatch(warning);
  });

  const clean: Array<[string, Record<string, unknown>]> = [
    ['private IPv4 with /24 blocks', { cidr: '10.244.0.0/16' }],
    ['CGNAT space with /25 blocks', { cidr: '100.64.0.0/10', blockSize: 25 }],
    ['IPv6 ULA with /64 blocks', { cidr: 'fd00:10:244::/56' }],
    ['IPv6 global unicast with /121 blocks', { cidr: '2a01:db9::/48', blockSize: 121 }],
  ];
  it.each(clean)('%s: no warning', async (_what, spec) => {
    const r = await create(spec);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/Warning/);
  });
});
