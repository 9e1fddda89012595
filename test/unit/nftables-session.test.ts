/** The nft -i session's protocol against a stand-in process (the real nft: test/integration/nftables-session.test.ts). */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { NftSession, oneLine } from '../../operator/nftables/session.js';

// Replaces `nft -i`: records each line, answers `describe meta mark` like nft 1.0.6, an error for a
// line containing "bad" (on stderr), and nothing at all once it has read "hang" (an nft whose output
// the session does not understand).
const FAKE = `log=$LOG; quiet=0
while IFS= read -r line; do
  echo "$line" >> "$log"
  case "$line" in
    *hang*) quiet=1 ;;
    "describe meta mark") [ $quiet = 1 ] || echo "meta expression, datatype mark (packet mark) (basetype integer), 32 bits" ;;
    *bad*) echo "Error: Could not process rule: No such file or directory" >&2; echo "$line" >&2 ;;
  esac
done`;

const fake = (log: string, timeoutMs = 5000) => {
  process.env.LOG = log;
  // prefix + ['nft', '-i'] → sh -c FAKE fake nft -i
  return new NftSession(['sh', '-c', FAKE, 'fake'], timeoutMs);
};

describe('oneLine', () => {
  it('joins a script into one transaction line and drops comment lines (a # would swallow the rest)', () => {
    expect(oneLine('# header\nadd element inet t s { 10.0.0.1 }\n\n  flush chain inet t c  \n# end\n')).toBe('add element inet t s { 10.0.0.1 } ; flush chain inet t c');
  });
});

describe('NftSession protocol', () => {
  afterAll(() => {
    for (const n of [1, 2]) rmSync(`/tmp/pf-nftsession-${process.pid}-${n}.log`, { force: true });
  });
  it('one line per script, commands joined with ;, the error text of a failed one, in order', async () => {
    const log = `/tmp/pf-nftsession-${process.pid}-1.log`;
    const s = fake(log);
    await s.apply('add element inet t s { 1.2.3.4 }\ndelete element inet t s { 1.2.3.5 }\n');
    await expect(s.apply('add element inet t bad { 1.1.1.1 }\n')).rejects.toThrow(/^nft: Error: Could not process rule[\s\S]*bad/);
    await s.apply('add element inet t s { 1.2.3.6 }\n');
    const lines = (await import('node:fs')).readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toEqual([
      'add element inet t s { 1.2.3.4 } ; delete element inet t s { 1.2.3.5 }',
      'describe meta mark',
      'add element inet t bad { 1.1.1.1 }',
      'describe meta mark',
      'add element inet t s { 1.2.3.6 }',
      'describe meta mark',
    ]);
    expect(s.starts).toBe(1);
    s.close();
  });

  it('no marker in time: the transaction fails and the session is no longer used', async () => {
    const s = fake(`/tmp/pf-nftsession-${process.pid}-2.log`, 300);
    await s.apply('add table inet t\n');
    expect(s.usable).toBe(true);
    await expect(s.apply('hang\n')).rejects.toThrow(/no answer within 300 ms/);
    expect(s.usable).toBe(false);
    s.close();
  });
});
