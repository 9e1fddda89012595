import { describe, expect, it } from 'vitest';
import { defaultFailStopMs, LeaderThread } from '../../operator/kube/leader-thread.js';

describe('LeaderThread', () => {
  it('fail-stop comes within half the margin between renew deadline and lease duration, at most 2 s', () => {
    expect(defaultFailStopMs(15_000, 10_000)).toBe(2_000);
    expect(defaultFailStopMs(2_000, 1_500)).toBe(250);
    expect(defaultFailStopMs(1_001, 1_000)).toBe(1);
  });

  it('refuses timings a leader could not keep', () => {
    const cb = { onStartedLeading: () => undefined, onStoppedLeading: () => undefined };
    expect(() => new LeaderThread({ namespace: 'n', leaseName: 'l', identity: 'i', leaseDurationMs: 10_000, renewDeadlineMs: 10_000, ...cb })).toThrow(/leaseDuration > renewDeadline/);
  });

  it('a lease thread that fails counts as lost: onStoppedLeading once, never onStartedLeading, and run() resolves', async () => {
    let started = 0;
    let stopped = 0;
    const t = new LeaderThread({
      kubeconfig: '/nonexistent/podfabric-kubeconfig',
      namespace: 'n',
      leaseName: 'l',
      identity: 'i',
      onStartedLeading: () => void started++,
      onStoppedLeading: () => void stopped++,
    });
    await t.run();
    expect(started).toBe(0);
    expect(stopped).toBe(1);
    expect(t.isLeader()).toBe(false);
    await t.stop(); // after the end: a no-op that resolves
    expect(stopped).toBe(1);
  });
});
