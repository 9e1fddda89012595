import { describe, expect, it } from 'vitest';
import { blockCount, blockIndex, cidrContains, cidrsOverlap, formatCidr, gatewayOf, normalizeCidr, normalizeIP, nthBlock, parseCidr, parseIP, canonIP, canonPrefix } from '../../operator/lib/ip.js';
import { lastCall, memo, sameElements } from '../../operator/lib/memo.js';

describe('normalizeIP', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:0:1:1:1:1:1:1', '1:0:1:1:1:1:1:1'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
  ])('%s → %s', (input, want) => expect(normalizeIP(input)).toBe(want));

  it.each(['', '10.0.0', '10.0.0.256', '01.0.0.1', '1.2.3.4.5', 'fd00:::1', '1:2:3:4:5:6:7:8:9', 'g::1', 'fe80::1%eth0', '1::2::3'])(
    'rejects %j',
    (bad) => expect(normalizeIP(bad)).toBeNull(),
  );
});

describe('CIDRs', () => {
  it('normalises and rejects host bits', () => {
    expect(normalizeCidr('10.244.0.0/16')).toBe('10.244.0.0/16');
    expect(normalizeCidr('FD00:10:244:0::/56')).toBe('fd00:10:244::/56');
    expect(normalizeCidr('10.244.1.0/16')).toBeNull();
    expect(normalizeCidr('10.244.0.0/33')).toBeNull();
    expect(normalizeCidr('10.244.0.0')).toBeNull();
    expect(formatCidr(parseCidr('10.244.1.7/16', { strict: false })!)).toBe('10.244.0.0/16');
  });

  it('containment and overlap are family-aware', () => {
    const p = parseCidr('10.244.0.0/16')!;
    expect(cidrContains(p, parseCidr('10.244.3.0/24')!)).toBe(true);
    expect(cidrContains(p, parseCidr('10.245.0.0/24')!)).toBe(false);
    expect(cidrContains(parseCidr('10.244.3.0/24')!, p)).toBe(false);
    expect(cidrsOverlap(p, parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(cidrsOverlap(p, parseCidr('10.245.0.0/16')!)).toBe(false);
    expect(cidrsOverlap(parseCidr('::/0')!, p)).toBe(false);
  });

  it('blocks: count, nth, index, gateway', () => {
    const p = parseCidr('10.244.0.0/16')!;
    expect(blockCount(p, 24)).toBe(256);
    expect(blockCount(p, 15)).toBe(0);
    expect(formatCidr(nthBlock(p, 24, 5n))).toBe('10.244.5.0/24');
    expect(blockIndex(p, parseCidr('10.244.200.0/24')!)).toBe(200n);
    const v6 = parseCidr('fd00:10:244::/48')!;
    expect(blockCount(v6, 64)).toBe(65536);
    expect(formatCidr(nthBlock(v6, 64, 65535n))).toBe('fd00:10:244:ffff::/64');
    expect(blockCount(parseCidr('fd00::/8')!, 64)).toBe(Number.MAX_SAFE_INTEGER);
    expect(gatewayOf(parseCidr('10.244.5.0/24')!)).toBe('10.244.5.1');
    expect(gatewayOf(parseCidr('fd00:10:244:5::/64')!)).toBe('fd00:10:244:5::1');
  });
});

describe('canonical text and the bounded memo', () => {
  it('canonIP/canonPrefix: canonical when it parses, the text as given when not', () => {
    expect(canonIP('FD00::0001')).toBe('fd00::1');
    expect(canonPrefix('fd00:0::/64')).toBe('fd00::/64');
    expect(canonIP('not-an-ip')).toBe('not-an-ip');
    expect(canonPrefix('10.0.0.1/24')).toBe('10.0.0.1/24'); // host bits set: not a canonical prefix
  });

  it('memo calls the function once per key and starts over at its bound', () => {
    let calls = 0;
    const f = memo((k: string) => (calls++, k.length), 2);
    expect([f('a'), f('a'), f('bb')]).toEqual([1, 1, 2]);
    expect(calls).toBe(2);
    f('ccc'); // the third key clears the map first
    f('a');
    expect(calls).toBe(4);
  });

  it('parses are remembered: the same text gives the same answer object; strict and loose apart; invalid stays null', () => {
    const a = parseCidr('10.9.8.0/24');
    expect(parseCidr('10.9.8.0/24')).toBe(a);
    expect(a).toEqual({ family: 4, network: 0x0a090800n, prefixLength: 24 });
    expect(parseCidr('10.9.8.7/24')).toBeNull(); // host bits set: refused when strict, even after the loose parse below
    expect(parseCidr('10.9.8.7/24', { strict: false })).toEqual({ family: 4, network: 0x0a090800n, prefixLength: 24 });
    expect(parseCidr('10.9.8.7/24')).toBeNull();
    expect(parseIP('fd00::1')).toBe(parseIP('fd00::1'));
    expect(parseIP('300.1.1.1')).toBeNull();
    expect(parseIP('300.1.1.1')).toBeNull();
    expect(normalizeIP('FD00:0::1')).toBe('fd00::1');
    expect(normalizeCidr('FD00:0::/64')).toBe('fd00::/64');
    expect(normalizeIP(undefined as unknown as string)).toBeNull();
    expect(parseIP(7 as unknown as string)).toBeNull();
  });

  it('lastCall answers again without calling while its inputs are the same', () => {
    let calls = 0;
    const f = lastCall((xs: number[]) => (calls++, xs.reduce((a, b) => a + b, 0)), sameElements);
    expect([f([1, 2]), f([1, 2]), f([1, 3]), f([1, 3]), f([1, 2])]).toEqual([3, 3, 4, 4, 3]);
    expect(calls).toBe(3);
    expect(sameElements([], [])).toBe(true);
    expect(sameElements([{}], [{}])).toBe(false); // identity, not shape
  });
});
