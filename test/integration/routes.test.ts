/**
 * The kernel route layer against the real kernel, in two namespaces joined by a veth:
 *   pf-rt-a (veth-a: 10.252.0.1/24, fd00:252::1/64) <-> pf-rt-b (veth-b: .2/.3, ::2/::3)
 * Routes go into pf-rt-a with protocol 201 through one persistent `ip -batch` child.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpReader } from '../../operator/routes/ip-reader.js';
import { diffRoutes, type IpRouteTable, type KernelRoute } from '../../operator/routes/model.js';
import { createIpRouteTable } from '../../operator/routes/table.js';
import { detectUplink, addressesOn } from '../../operator/host/links.js';
import { run } from '../../operator/lib/exec.js';
import { addAddress, addNamespace, addVeth, deleteNamespace } from '../../hack/lab/lib/netns.js';

const A = 'pf-rt-a';
const B = 'pf-rt-b';
const PROTO = 201;
const DEV = 'veth-a';
const NH1 = '10.252.0.2';
const NH2 = '10.252.0.3';
const NH6 = 'fd00:252::2';

const rt = (dst: string, via: string, dev = DEV): KernelRoute => ({ dst, via, dev });
const ipJson = async (args: string[]) => JSON.parse((await run(['ip', '-n', A, '-N', '-j', ...args])).stdout.trim() || '[]') as Array<Record<string, unknown>>;
/** Every route in A's main table as "dst via gw proto N" (both families), for before/after comparisons. */
const allRoutes = async () =>
  [...(await ipJson(['-4', 'route', 'show', 'table', 'main'])), ...(await ipJson(['-6', 'route', 'show', 'table', 'main']))]
    .map((x) => `${String(x.dst)} via ${String(x.gateway ?? '-')} dev ${String(x.dev)} proto ${String(x.protocol ?? '3')}`)
    .sort();
const foreign = async () => (await allRoutes()).filter((l) => !l.endsWith(`proto ${PROTO}`));
const sortR = (rs: KernelRoute[]) => [...rs].sort((a, b) => (a.dst + a.via < b.dst + b.via ? -1 : 1));

let table: IpRouteTable;

beforeAll(async () => {
  // Leftovers of a killed run.
  for (const ns of [A, B]) await deleteNamespace(ns);
  await addNamespace(A);
  await addNamespace(B);
  await addVeth(A, DEV, B, 'veth-b');
  await addAddress(A, DEV, '10.252.0.1/24');
  await addAddress(A, DEV, 'fd00:252::1/64');
  for (const c of ['10.252.0.2/24', '10.252.0.3/24', 'fd00:252::2/64', 'fd00:252::3/64']) await addAddress(B, 'veth-b', c);
  // Other people's routes, which must survive everything below.
  await run(['ip', '-n', A, 'route', 'add', '10.99.0.0/24', 'via', NH1, 'dev', DEV, 'proto', 'static']);
  await run(['ip', '-n', A, 'route', 'add', '10.98.0.0/24', 'via', NH1, 'dev', DEV]); // proto boot
  await run(['ip', '-n', A, 'route', 'add', '10.97.0.0/24', 'via', NH1, 'dev', DEV, 'proto', '2']);
  await run(['ip', '-n', A, '-6', 'route', 'add', 'fd00:99::/64', 'via', NH6, 'dev', DEV, 'proto', 'static']);
  table = createIpRouteTable({ protocol: PROTO, netns: A });
});

afterAll(async () => {
  table?.close();
  for (const ns of [A, B]) await deleteNamespace(ns);
});

describe('createIpRouteTable', () => {
  it('refuses reserved and out-of-range protocol numbers', () => {
    for (const p of [0, 2, 4, 12, 42, 99, 186, 192, 256]) expect(() => createIpRouteTable({ protocol: p })).toThrow(/reserved or out of range/);
  });

  it('applies 3 v4 + 1 v6 routes with our protocol and reads them back; others untouched', async () => {
    const before = await foreign();
    expect(before).toEqual(expect.arrayContaining(['10.99.0.0/24 via 10.252.0.2 dev veth-a proto 4', '10.98.0.0/24 via 10.252.0.2 dev veth-a proto 3', '10.97.0.0/24 via 10.252.0.2 dev veth-a proto 2']));
    const want = [rt('10.244.1.0/24', NH1), rt('10.244.2.0/24', NH1), rt('10.244.3.0/24', NH2), rt('FD00:244:0:1::/64', 'FD00:252::2')];
    const { add, del } = diffRoutes(want, await table.list());
    expect(del).toEqual([]);
    expect((await table.apply(add, del)).errors).toEqual([]);

    const shown = (await run(['ip', '-n', A, 'route', 'show', 'proto', String(PROTO)])).stdout;
    expect(shown.trim().split('\n').map((l) => l.trim()).sort()).toEqual(['10.244.1.0/24 via 10.252.0.2 dev veth-a', '10.244.2.0/24 via 10.252.0.2 dev veth-a', '10.244.3.0/24 via 10.252.0.3 dev veth-a']);
    const shown6 = (await run(['ip', '-n', A, '-6', 'route', 'show', 'proto', String(PROTO)])).stdout;
    expect(shown6).toMatch(/^fd00:244:0:1::\/64 via fd00:252::2 dev veth-a metric 1024/m);
    // The protocol really is 201 (a proto filter alone would hide that: ip -j leaves the key out).
    expect((await ipJson(['-4', 'route', 'show', 'table', 'main'])).filter((x) => x.protocol === String(PROTO))).toHaveLength(3);

    const listed = await table.list();
    expect(listed).toEqual([rt('10.244.1.0/24', NH1), rt('10.244.2.0/24', NH1), rt('10.244.3.0/24', NH2), rt('fd00:244:0:1::/64', NH6)]);
    expect(diffRoutes(want, listed)).toEqual({ add: [], del: [] });
    expect(await foreign()).toEqual(before);
  });

  it('a diff that removes one route and moves another to a new next hop does exactly that', async () => {
    const before = await foreign();
    const want = [rt('10.244.1.0/24', NH2), rt('10.244.3.0/24', NH2), rt('fd00:244:0:1::/64', NH6)];
    const d = diffRoutes(want, await table.list());
    expect(d).toEqual({ add: [rt('10.244.1.0/24', NH2)], del: [rt('10.244.2.0/24', NH1)] });
    expect((await table.apply(d.add, d.del)).errors).toEqual([]);
    expect(await table.list()).toEqual(want);
    expect(await foreign()).toEqual(before);
  });

  it('a prefix held by another protocol is a conflict: reported, never replaced; our delete never touches it', async () => {
    const before = await foreign();
    const { errors } = await table.apply([rt('10.99.0.0/24', NH2), rt('10.97.0.0/24', NH2), rt('fd00:99::/64', 'fd00:252::3'), rt('10.244.4.0/24', NH1)], [rt('10.98.0.0/24', NH1)]);
    expect(errors.map((e) => `${e.op} ${e.route.dst}`)).toEqual(['del 10.98.0.0/24', 'add 10.97.0.0/24', 'add 10.99.0.0/24', 'add fd00:99::/64']);
    expect(errors[0]!.error).toMatch(/No such process/); // the kernel matches the protocol on delete
    expect(errors[1]!.error).toMatch(/conflict.*protocol 2/);
    expect(errors[2]!.error).toMatch(/conflict.*protocol 4/);
    expect(await foreign()).toEqual(before);
    expect((await table.list()).map((r) => r.dst)).toContain('10.244.4.0/24'); // the rest of the batch went in
  });

  it('a bad route fails alone, the rest of the batch goes in, the ip child survives it', async () => {
    const pid = table.pid;
    expect(pid).toBeGreaterThan(0);
    const good = [rt('10.245.1.0/24', NH1), rt('10.245.2.0/24', NH1), rt('fd00:245::/64', NH6)];
    const unreachable = rt('10.245.3.0/24', '10.9.9.9'); // not on any link: the kernel refuses it
    const noDev = rt('10.245.4.0/24', NH1, 'nosuchdev0');
    const malformed = [rt('10.245.5.1/24', NH1), rt('10.245.6.0/24', 'fd00:252::2'), rt('10.245.7.0/24', NH1, 'bad dev')]; // would make ip exit
    const { errors } = await table.apply([good[0]!, unreachable, ...malformed, good[1]!, noDev, good[2]!], []);
    expect(errors.map((e) => e.route.dst).sort()).toEqual(['10.245.3.0/24', '10.245.4.0/24', '10.245.5.1/24', '10.245.6.0/24', '10.245.7.0/24']);
    const byDst = new Map(errors.map((e) => [e.route.dst, e.error]));
    expect(byDst.get('10.245.3.0/24')).toMatch(/invalid gateway|unreachable/i);
    expect(byDst.get('10.245.4.0/24')).toMatch(/Cannot find device/);
    expect(byDst.get('10.245.5.1/24')).toMatch(/host bits/);
    expect(byDst.get('10.245.6.0/24')).toMatch(/IPv6/);
    expect(byDst.get('10.245.7.0/24')).toMatch(/device/);
    const listed = await table.list();
    for (const g of good) expect(listed).toContainEqual(g);
    expect(listed.map((r) => r.dst)).not.toContain('10.245.3.0/24');
    expect(table.pid).toBe(pid);
    // clean up this test's routes
    expect((await table.apply([], good)).errors).toEqual([]);
  });

  it('the ip child killed between batches or in the middle of one: the table respawns it and the batch completes', async () => {
    const spawns = table.spawns;
    process.kill(table.pid!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
    expect((await table.apply([rt('10.246.0.0/24', NH1)], [])).errors).toEqual([]);
    expect(table.spawns).toBe(spawns + 1);

    // In the middle: a batch of 1 delete + 8,000 routes, the child killed 20 ms after it got them
    // (the whole batch takes 100-400 ms here). The batch is re-sent to a new child; the delete, already done by
    // the first one, finds nothing the second time and that is not an error.
    const attempts: Array<{ pid: number | undefined; attempt: number }> = [];
    const t = createIpRouteTable({
      protocol: PROTO,
      netns: A,
      onBatch: (e) => {
        attempts.push(e);
        if (e.attempt === 1 && e.lines > 1000) setTimeout(() => process.kill(e.pid!, 'SIGKILL'), 20);
      },
    });
    const many = Array.from({ length: 8000 }, (_, i) => rt(`10.247.${i >> 8}.${i & 255}/32`, NH1));
    const { errors } = await t.apply(many, [rt('10.246.0.0/24', NH1)]);
    t.close();
    expect(errors).toEqual([]);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
    expect(attempts[1]!.pid).not.toBe(attempts[0]!.pid);
    const listed = await table.list();
    expect(listed.filter((r) => r.dst.startsWith('10.247.'))).toHaveLength(8000);
    expect(listed.map((r) => r.dst)).not.toContain('10.246.0.0/24');
    expect((await table.apply([], many)).errors).toEqual([]);
  });

  it('10,000 routes in one batch, read back, removed', async () => {
    const before = await table.list();
    const many: KernelRoute[] = [];
    for (let i = 0; i < 9000; i++) many.push(rt(`10.${100 + (i >> 8)}.${i & 255}.0/24`, i % 2 ? NH1 : NH2));
    for (let i = 0; i < 1000; i++) many.push(rt(`fd00:1000:${i.toString(16)}::/64`, NH6));
    const t0 = performance.now();
    const { errors } = await table.apply(many, []);
    const tApply = performance.now() - t0;
    expect(errors).toEqual([]);
    const t1 = performance.now();
    const listed = await table.list();
    const tList = performance.now() - t1;
    expect(listed).toHaveLength(before.length + 10_000);
    expect(diffRoutes([...before, ...many], listed)).toEqual({ add: [], del: [] });
    // Move half of them to the other next hop (replace in place).
    const moved = many.map((r, i) => (i < 9000 && i % 2 === 0 ? { ...r, via: NH1 } : r));
    const d = diffRoutes([...before, ...moved], listed);
    expect(d.add).toHaveLength(4500);
    expect(d.del).toHaveLength(0);
    const t2 = performance.now();
    expect((await table.apply(d.add, d.del)).errors).toEqual([]);
    const tReplace = performance.now() - t2;
    const t3 = performance.now();
    expect((await table.apply([], moved)).errors).toEqual([]);
    const tDel = performance.now() - t3;
    expect(sortR(await table.list())).toEqual(sortR(before));
    console.log(
      `10k routes (9k v4 + 1k v6): apply ${tApply.toFixed(0)} ms (${Math.round(10_000 / (tApply / 1000))} routes/s, incl. the conflict check), ` +
        `list ${tList.toFixed(0)} ms, 4.5k next-hop replaces ${tReplace.toFixed(0)} ms, delete ${tDel.toFixed(0)} ms (${Math.round(10_000 / (tDel / 1000))} routes/s)`,
    );
  });

  it('concurrent applies are serialised on the one child', async () => {
    const rs = Array.from({ length: 20 }, (_, i) => rt(`10.248.${i}.0/24`, NH1));
    const results = await Promise.all(rs.map((r) => table.apply([r], [])));
    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const listed = await table.list();
    for (const r of rs) expect(listed).toContainEqual(r);
    expect((await table.apply([], rs)).errors).toEqual([]);
  });

  it('a closed table refuses further work', async () => {
    const t = createIpRouteTable({ protocol: PROTO, netns: A });
    expect((await t.apply([rt('10.249.0.0/24', NH1)], [])).errors).toEqual([]);
    expect((await t.apply([], [rt('10.249.0.0/24', NH1)])).errors).toEqual([]);
    t.close();
    await expect(t.apply([rt('10.249.0.0/24', NH1)], [])).rejects.toThrow(/closed/);
  });

  it('close() while a batch is in flight lets that batch finish, and the child exits', async () => {
    let pid: number | undefined;
    const t = createIpRouteTable({
      protocol: PROTO,
      netns: A,
      onBatch: (e) => {
        pid = e.pid;
        t.close();
      },
    });
    const rs = Array.from({ length: 2000 }, (_, i) => rt(`10.249.${i >> 8}.${i & 255}/32`, NH1));
    expect((await t.apply(rs, [])).errors).toEqual([]);
    expect((await table.list()).filter((r) => r.dst.startsWith('10.249.'))).toHaveLength(2000);
    await new Promise((r) => setTimeout(r, 100));
    expect(() => process.kill(pid!, 0)).toThrow(); // gone
    expect((await table.apply([], rs)).errors).toEqual([]);
  });
});

describe('links', () => {
  it('detectUplink finds the interface and subnet of a v4 and a v6 node address', async () => {
    expect(await detectUplink('10.252.0.1', { netns: A })).toEqual({ dev: DEV, address: '10.252.0.1', prefixLength: 24, subnet: '10.252.0.0/24' });
    expect(await detectUplink('FD00:252:0::1', { netns: A })).toEqual({ dev: DEV, address: 'fd00:252::1', prefixLength: 64, subnet: 'fd00:252::/64' });
    expect(await detectUplink('10.252.0.2', { netns: A })).toBeNull(); // the neighbour's, not ours
    expect(await detectUplink('10.252.0.1', { netns: 'pf-rt-nonexistent' })).toBeNull();
  });
  it('addressesOn lists v4 and v6 addresses of one interface', async () => {
    const got = await addressesOn('veth-b', { netns: B });
    expect(got.filter((a) => a.scope === 'global').map((a) => `${a.address}/${a.prefixLength} v${a.family}`).sort()).toEqual(['10.252.0.2/24 v4', '10.252.0.3/24 v4', 'fd00:252::2/64 v6', 'fd00:252::3/64 v6']);
    expect(got.some((a) => a.family === 6 && a.scope === 'link')).toBe(true);
    await expect(addressesOn('nosuchdev0', { netns: B })).rejects.toThrow();
  });
});

describe('IpReader (the persistent ip child for route reads)', () => {
  it('answers many queries from one process, each with the current table', async () => {
    const r = new IpReader(['-n', A, '-N', '-j', '-4', '-batch', '-']);
    try {
      const all = await Promise.all(Array.from({ length: 50 }, () => r.query('route show table main proto static')));
      for (const line of all) expect((JSON.parse(line) as Array<{ dst: string }>).map((x) => x.dst)).toEqual(['10.99.0.0/24']);
      await run(['ip', '-n', A, 'route', 'add', '10.96.0.0/24', 'via', NH1, 'dev', DEV, 'proto', 'static']);
      const after = JSON.parse(await r.query('route show table main proto static')) as Array<{ dst: string }>;
      expect(after.map((x) => x.dst).sort()).toEqual(['10.96.0.0/24', '10.99.0.0/24']);
      expect(r.spawns).toBe(1);
    } finally {
      r.close();
      await run(['ip', '-n', A, 'route', 'del', '10.96.0.0/24'], { allowFail: true });
    }
  });

  it('a failing command rejects with ip\'s message; the next query gets a fresh child', async () => {
    const r = new IpReader(['-n', A, '-N', '-j', '-4', '-batch', '-']);
    try {
      await expect(r.query('route show table nosuchtable')).rejects.toThrow(/nosuchtable|table id value is invalid|Error/);
      const ok = JSON.parse(await r.query('route show table main proto static')) as Array<{ dst: string }>;
      expect(ok.map((x) => x.dst)).toEqual(['10.99.0.0/24']);
      expect(r.spawns).toBe(2);
    } finally {
      r.close();
    }
  });
});
