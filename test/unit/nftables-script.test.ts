/** The nft scripts (full and delta) and the conntrack cutter's pure half. */
import { describe, expect, it } from 'vitest';
import { deniedFlows, parseConntrack } from '../../operator/nftables/conntrack.js';
import { deltaScript, fullScript } from '../../operator/nftables/script.js';
import { compile } from '../../operator/policy/compile.js';
import { namespaceInfo, parsePolicy, type PodInfo, type Policy } from '../../operator/policy/model.js';
import { MAX_GAPS, renderMatch } from '../../operator/policy/objects.js';

const pol = (name: string, spec: Record<string, unknown>): Policy => {
  const r = parsePolicy({ metadata: { name, namespace: 'x' }, spec });
  if (!r.ok) throw new Error(r.error);
  return r.policy;
};
const pod = (name: string, ip: string, labels: Record<string, string>, node = 'n1'): PodInfo => ({ namespace: 'x', name, ips: [ip], labels, nodeName: node, ports: [{ name: 'web', containerPort: 8080 }] });
const namespaces = [namespaceInfo('x')];
const pods = [pod('a', '10.0.0.1', { app: 'web' }), pod('b', '10.0.0.2', { app: 'db' }), pod('c', '10.0.0.3', { app: 'client' }, 'n2')];
const policies = [
  pol('web', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 'web' }] }] }),
  pol('db', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }, { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }] }] }),
];
const rs = (p = pods, ps = policies) => compile({ pods: p, policies: ps, namespaces, node: 'n1' });

describe('fullScript', () => {
  it('replaces the table in one script and names it in every command', () => {
    const s = fullScript(rs());
    const lines = s.text.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['add table inet podfabric-policy', 'delete table inet podfabric-policy', 'add table inet podfabric-policy']);
    for (const l of lines) expect(l).toMatch(/^(add|delete) (table|set|map|chain|rule|element) inet podfabric-policy( |$)/);
    // ipBlock minus except: the hull minus the gap, no interval set (nft would dump its elements on every element change)
    expect(s.text).toContain('ip saddr 192.168.0.0-192.168.255.255 ip saddr != 192.168.1.0-192.168.1.255 accept');
    expect(s.text).toMatch(/^add element inet podfabric-policy ingress4 \{ .*10\.0\.0\.1 : jump gi-/m);
    expect(s.statements).toBe(lines.length);
  });
});

describe('deltaScript', () => {
  it('writes nothing when nothing changed (a fresh compile of the same world)', () => {
    expect(deltaScript(rs(), rs())).toMatchObject({ text: '', statements: 0 });
  });

  it('a pod relabelled client → web: set elements and one map element move, no chain is rewritten', () => {
    const after = pods.map((p) => (p.name === 'c' ? { ...p, labels: { app: 'web' } } : p));
    const d = deltaScript(rs(), rs(after));
    const lines = d.text.trim().split('\n');
    expect(lines.every((l) => / element /.test(l))).toBe(true);
    expect(lines).toEqual(
      expect.arrayContaining([expect.stringMatching(/^delete element inet podfabric-policy pp4-\w+ \{ 10\.0\.0\.3 \}$/), expect.stringMatching(/^add element inet podfabric-policy pp4-\w+ \{ 10\.0\.0\.3 \}$/)]),
    );
    expect(d.statements).toBeLessThanOrEqual(4);
  });

  it('a local pod newly selected gets its map element after its group chain exists; a removed policy is flushed, then deleted, then its sets', () => {
    const p3 = pol('deny-c', { podSelector: { matchLabels: { app: 'client' } } });
    const moved = pods.map((p) => (p.name === 'c' ? { ...p, nodeName: 'n1' } : p));
    const d = deltaScript(rs(), rs(moved, [...policies, p3])).text.split('\n');
    const chainAt = d.findIndex((l) => /^add chain .* gi-/.test(l));
    const elemAt = d.findIndex((l) => /^add element .* ingress4 \{ 10\.0\.0\.3 : jump gi-/.test(l));
    expect(chainAt).toBeGreaterThanOrEqual(0);
    expect(elemAt).toBeGreaterThan(chainAt);

    const back = deltaScript(rs(moved, [...policies, p3]), rs()).text.split('\n');
    const del = (re: RegExp) => back.findIndex((l) => re.test(l));
    const mapDel = del(/^delete element .* ingress4 \{ 10\.0\.0\.3 : jump gi-/);
    const flush = del(/^flush chain .* pi-/);
    const chainDel = del(/^delete chain .* pi-/);
    expect(mapDel).toBeGreaterThanOrEqual(0);
    expect(flush).toBeGreaterThan(mapDel);
    expect(chainDel).toBeGreaterThan(flush);
  });

  it('a policy edit flushes and refills only that policy’s chain', () => {
    const edited = [policies[0]!, pol('db', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ ports: [{ port: 5432 }] }] })];
    const lines = deltaScript(rs(), rs(pods, edited)).text.trim().split('\n');
    const flushed = lines.filter((l) => l.startsWith('flush chain'));
    expect(flushed).toHaveLength(1);
    expect(lines).toContain(`add rule inet podfabric-policy ${flushed[0]!.split(' ').pop()} meta l4proto tcp th dport 5432 accept`);
  });
});

describe('conntrack', () => {
  const text = [
    'tcp      6 431999 ESTABLISHED src=10.0.0.3 dst=10.96.0.10 sport=40000 dport=80 src=10.0.0.2 dst=10.0.0.3 sport=5432 dport=40000 [ASSURED] mark=0 use=1',
    'tcp      6 431999 ESTABLISHED src=10.0.0.3 dst=10.0.0.1 sport=40001 dport=8080 src=10.0.0.1 dst=10.0.0.3 sport=8080 dport=40001 [ASSURED] mark=0 use=1',
    'udp      17 29 src=192.168.0.9 dst=10.0.0.2 sport=5000 dport=53 [UNREPLIED] src=10.0.0.2 dst=192.168.0.9 sport=53 dport=5000 mark=0 use=1',
    'tcp      6 100 TIME_WAIT src=10.0.0.3 dst=10.0.0.2 sport=40002 dport=80 src=10.0.0.2 dst=10.0.0.3 sport=80 dport=40002 [ASSURED] mark=0 use=1',
    'icmp     1 29 src=10.0.0.3 dst=10.0.0.2 type=8 code=0 id=1 src=10.0.0.2 dst=10.0.0.3 type=0 code=0 id=1 mark=0 use=1',
    'conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.',
  ].join('\n');
  it('parses tcp/udp entries with their post-DNAT destination', () => {
    const f = parseConntrack(text);
    expect(f).toHaveLength(4);
    expect(f[0]).toEqual({ state: 'ESTABLISHED', proto: 'tcp', family: 4, src: '10.0.0.3', dst: '10.96.0.10', sport: 40000, dport: 80, replySrc: '10.0.0.2', replySport: 5432 });
  });
  it('skipClosed leaves closed TCP entries out before parsing (the cut never needs them); IPv6 addresses come out normalised', () => {
    const live = parseConntrack(text + '\ntcp      6 9 CLOSE src=10.0.0.3 dst=10.0.0.1 sport=40009 dport=80 src=10.0.0.1 dst=10.0.0.3 sport=80 dport=40009 [ASSURED] mark=0 use=1', { skipClosed: true });
    expect(live.map((f) => f.state ?? f.proto)).toEqual(['ESTABLISHED', 'ESTABLISHED', 'udp']);
    const v6 = parseConntrack('tcp      6 300 ESTABLISHED src=fd00:0::3 dst=FD00::2 sport=1 dport=80 src=fd00::2 dst=fd00::3 sport=80 dport=1 [ASSURED] mark=0 use=1');
    expect(v6[0]).toMatchObject({ family: 6, src: 'fd00::3', dst: 'fd00::2', replySrc: 'fd00::2' });
  });
  it('selects exactly the flows the new ruleset drops, judged on the backend address, skipping the node’s own', () => {
    const flows = parseConntrack(text);
    // c → b (through a Service) is denied; the closed c → b flow needs no cutting; (db only admits web and 192.168/16 minus 192.168.1/24); c → a:8080 is allowed.
    expect(deniedFlows(rs(), flows).map((f) => f.sport)).toEqual([40000]);
    expect(deniedFlows(rs(), flows, ['10.0.0.3'])).toEqual([]);
  });
});

describe('renderMatch: unions of ranges without interval sets', () => {
  // Reads back what renderMatch wrote for `th dport`: hull, gaps (!=), or a plain { … } list.
  const readBack = (text: string) => {
    const items = (s: string) => s.replace(/[{}]/g, '').split(',').map((x) => x.trim()).filter(Boolean).map((x) => x.split('-').map(Number) as [number, number?]);
    const parts = [...text.matchAll(/th dport (!= )?(\{[^}]*\}|\S+)/g)];
    return (v: number) =>
      parts.every(([, neg, body]) => {
        const hit = items(body!).some(([a, b]) => v >= a && v <= (b ?? a));
        return neg ? !hit : hit;
      });
  };
  it('matches exactly the union it was given, and uses no { a-b } set below MAX_GAPS gaps', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let t = 0; t < 300; t++) {
      const ranges = Array.from({ length: 1 + rnd(6) }, (): [number, number] => {
        const a = rnd(100);
        return [a, a + (rnd(3) ? rnd(8) : 0)];
      });
      const text = renderMatch({ m: 'dport', ranges });
      const inside = readBack(text);
      for (let v = 0; v < 120; v++) expect(inside(v), `${text} at ${v}`).toBe(ranges.some(([a, b]) => v >= a && v <= b));
      if (ranges.some(([a, b]) => a !== b)) expect(text).not.toMatch(/\{[^}]*-/);
    }
  });
  it('addresses: the hull minus each gap; past MAX_GAPS gaps an interval set', () => {
    expect(renderMatch({ m: 'ranges', dir: 'daddr', family: 6, ranges: [['fd00::', 'fd00::f'], ['fd00::20', 'fd00::ff']] })).toBe('ip6 daddr fd00::-fd00::ff ip6 daddr != fd00::10-fd00::1f');
    expect(renderMatch({ m: 'ranges', dir: 'saddr', family: 4, ranges: [['10.0.0.0', '10.0.0.9'], ['10.0.0.10', '10.0.0.20']] })).toBe('ip saddr 10.0.0.0-10.0.0.20');
    const many = Array.from({ length: MAX_GAPS + 2 }, (_, i): [number, number] => [i * 10, i * 10 + 5]);
    expect(renderMatch({ m: 'dport', ranges: many })).toMatch(/^th dport \{ 0-5, 10-15, /);
  });
});
