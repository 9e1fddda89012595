/**
 * The long-lived `nft -i` session (operator/nftables/session.ts) against the real nft and kernel, in
 * its own namespace (pf-np-session, under the shared lock): one line is one atomic transaction, an
 * error is reported with nft's text and changes nothing, changes made by another nft process are
 * seen, and a killed process is replaced on the next transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNamespace, deleteNamespace } from '../../hack/lab/lib/netns.js';
import { run } from '../../operator/lib/exec.js';
import { NftSession, oneLine } from '../../operator/nftables/session.js';

const NS = 'pf-np-session';
const T = 'inet pf-session-test';
const elements = async (set: string) => {
  const j = JSON.parse((await run(['ip', 'netns', 'exec', NS, 'nft', '-j', 'list', 'set', ...T.split(' '), set])).stdout) as { nftables: Array<{ set?: { elem?: string[] } }> };
  return j.nftables.find((o) => o.set)?.set?.elem ?? [];
};
let s: NftSession;

beforeAll(async () => {
  await deleteNamespace(NS);
  await addNamespace(NS);
  s = new NftSession(['ip', 'netns', 'exec', NS], 20_000);
});
afterAll(async () => {
  s?.close();
  await deleteNamespace(NS);
});

describe('NftSession', () => {
  it('applies a multi-line script as one transaction, in one process', async () => {
    await s.apply(`add table ${T}\nadd set ${T} a { type ipv4_addr; }\nadd element ${T} a { 10.0.0.1, 10.0.0.2 }\n`);
    await s.apply(`delete element ${T} a { 10.0.0.1 }\nadd element ${T} a { 10.0.0.3 }\n`);
    expect(await elements('a')).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(s.starts).toBe(1);
  });

  it('a failing command rejects with nft error text and the commands before it in the script are not applied', async () => {
    await expect(s.apply(`add element ${T} a { 10.0.0.9 }\nadd element ${T} nosuch { 10.0.0.8 }\n`)).rejects.toThrow(/No such file or directory[\s\S]*nosuch/);
    expect(await elements('a')).toEqual(['10.0.0.2', '10.0.0.3']);
    // and the session goes on
    await s.apply(`add element ${T} a { 10.0.0.4 }\n`);
    expect(await elements('a')).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('sees objects another nft process created (its cache follows the kernel)', async () => {
    await run(['ip', 'netns', 'exec', NS, 'nft', `add set ${T} b { type ipv4_addr; }`]);
    await s.apply(`add element ${T} b { 10.1.0.1 }\n`);
    expect(await elements('b')).toEqual(['10.1.0.1']);
  });

  it('serialises concurrent transactions', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.apply(`add element ${T} b { 10.2.0.${i} }\n`)));
    expect((await elements('b')).length).toBe(21);
  });

  it('a killed nft process is replaced on the next transaction', async () => {
    const before = s.starts;
    const pids = (await run(['pgrep', '-f', `^ip netns exec ${NS} nft -i$|^nft -i$`], { allowFail: true })).stdout.trim().split('\n').filter(Boolean);
    const ours = [];
    for (const pid of pids) {
      const ns = (await run(['ip', 'netns', 'identify', pid], { allowFail: true })).stdout.trim();
      if (ns === NS) ours.push(pid);
    }
    expect(ours.length).toBe(1);
    await run(['kill', '-9', ours[0]!]);
    // The first transaction after the kill may fail (the process is gone); the one after works.
    await s.apply(`add element ${T} b { 10.3.0.1 }\n`).catch(() => undefined);
    await s.apply(`add element ${T} b { 10.3.0.2 }\n`);
    expect(await elements('b')).toContain('10.3.0.2');
    expect(s.starts).toBe(before + 1);
  });

  it('oneLine joins commands with ; and drops blank lines', () => {
    expect(oneLine('add table inet t\n\nadd set inet t s { type ipv4_addr; }\n')).toBe('add table inet t ; add set inet t s { type ipv4_addr; }');
  });
});
