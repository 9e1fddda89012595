import { describe, expect, it } from 'vitest';
import { bgpPeerSpec } from '../../operator/api/bgppeer.js';
import { labelSelector } from '../../operator/api/common.js';
import { badLabelKey, isValid } from '../../operator/api/names.js';

const long = (n: number, c = 'a') => c.repeat(n);

describe('reference validators (same rules as the CRD CEL)', () => {
  const cases: Array<[Parameters<typeof isValid>[0], string, boolean]> = [
    ['labelKey', 'rack', true],
    ['labelKey', 'podfabric.io/rack', true],
    ['labelKey', 'kubernetes.io/hostname', true],
    ['labelKey', 'A_b.c-9', true],
    ['labelKey', `${long(253)}/${long(63)}`, true], // as in Kubernetes: the prefix is bounded as a whole (253), not per DNS label
    ['labelKey', `${long(63)}.${long(63)}.${long(63)}.${long(61)}/${long(63)}`, true],
    ['labelKey', `${long(63)}.${long(63)}.${long(63)}.${long(62)}/x`, false], // prefix 254
    ['labelKey', long(64), false],
    ['labelKey', '', false],
    ['labelKey', 'a/b/c', false],
    ['labelKey', '/rack', false],
    ['labelKey', 'example.com/', false],
    ['labelKey', 'Example.com/rack', false],
    ['labelKey', '-rack', false],
    ['labelKey', 'rack_', false],
    ['labelKey', 'a b', false],
    ['labelValue', '', true],
    ['labelValue', 'r1', true],
    ['labelValue', 'R1_a.b-c', true],
    ['labelValue', long(63), true],
    ['labelValue', long(64), false],
    ['labelValue', '-r1', false],
    ['labelValue', 'r1.', false],
    ['labelValue', 'a/b', false],
    ['dnsSubdomain', 'bgp-md5', true],
    ['dnsSubdomain', 'a.b-c.d', true],
    ['dnsSubdomain', 'A', false],
    ['dnsSubdomain', 'a..b', false],
    ['dnsSubdomain', 'a_b', false],
    ['dnsSubdomain', long(254), false],
    ['dnsLabel', 'kube-system', true],
    ['dnsLabel', 'a.b', false],
    ['dnsLabel', long(64), false],
    ['secretKey', 'password', true],
    ['secretKey', '.hidden', true],
    ['secretKey', 'tls.key', true],
    ['secretKey', '.', false],
    ['secretKey', '..', false],
    ['secretKey', '..data', false],
    ['secretKey', 'a/b', false],
    ['secretKey', '', false],
    ['secretKey', long(254), false],
  ];
  it.each(cases)('%s %j → %s', (kind, v, ok) => {
    expect(isValid(kind, v)).toBe(ok);
  });

  it('badLabelKey names the first bad key of a map', () => {
    expect(badLabelKey({ rack: 'a', 'bad key': 'b' })).toBe('bad key');
    expect(badLabelKey({ 'podfabric.io/rack': 'a' })).toBeUndefined();
  });

  it('the zod schemas refuse what the CRD refuses, naming the field', () => {
    const sel = labelSelector.safeParse({ matchLabels: { 'bad key': 'x' }, matchExpressions: [{ key: 'k', operator: 'In', values: ['-x'] }] });
    expect(sel.success).toBe(false);
    const paths = sel.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['matchLabels', 'matchExpressions.0.values.0']));
    const peer = bgpPeerSpec.safeParse({ peerAddress: '10.0.0.1', peerASN: 65000, passwordSecretRef: { namespace: 'Kube', name: 'md5' } });
    expect(peer.error?.issues.map((i) => i.path.join('.'))).toEqual(['passwordSecretRef.namespace']);
    expect(bgpPeerSpec.parse({ peerAddress: '10.0.0.1', peerASN: 65000, passwordSecretRef: { namespace: 'kube-system', name: 'md5' } }).passwordSecretRef?.key).toBe('password');
  });
});
