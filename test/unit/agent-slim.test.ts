import { describe, expect, it } from 'vitest';
import { slimPod, withoutStatus } from '../../operator/agent/slim.js';
import { stripManagedFields } from '../../operator/kube/informer.js';
import { Informer, type KObj } from '../../operator/kube/informer.js';
import { podInfoFromObject } from '../../operator/policy/model.js';
import { FakeRest } from '../support/fakes.js';

const managedFields = [{ manager: 'kubelet', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': { 'f:conditions': {}, 'f:podIPs': {} } } }];

const fullPod = (over: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'shop', uid: 'u1', resourceVersion: '7', labels: { app: 'web', tier: 'front' }, annotations: { big: 'x'.repeat(2000) }, managedFields, ownerReferences: [{ kind: 'ReplicaSet', name: 'web' }] },
  spec: {
    nodeName: 'node-1',
    containers: [
      { name: 'app', image: 'registry.example/web:1', env: [{ name: 'A', value: 'b' }], ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { containerPort: 53, protocol: 'UDP' }] },
      { name: 'sidecar', image: 'registry.example/side:1' },
    ],
    volumes: [{ name: 'v', emptyDir: {} }],
    tolerations: [{ key: 'k', operator: 'Exists' }],
  },
  status: { phase: 'Running', podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }, { ip: 'fd00::5' }], conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'app', ready: true }] },
  ...over,
});

describe('agent cache slimming', () => {
  it('a slim Pod gives the policy compiler exactly what the whole Pod gives it, in a fraction of the size', () => {
    for (const pod of [
      fullPod(),
      fullPod({ spec: { nodeName: 'n2', hostNetwork: true, containers: [{ name: 'c' }] } }),
      fullPod({ status: { phase: 'Succeeded', podIP: '10.1.0.6' } }),
      fullPod({ status: { podIP: '10.1.0.7' } }),
      fullPod({ spec: {}, status: {} }),
    ]) {
      const slim = slimPod(pod as unknown as KObj);
      expect(podInfoFromObject(slim)).toEqual(podInfoFromObject(pod));
      expect(slim.metadata).toMatchObject({ name: pod.metadata.name, namespace: 'shop', uid: 'u1', resourceVersion: '7' });
    }
    const slim = slimPod(fullPod() as unknown as KObj);
    expect(JSON.stringify(slim).length).toBeLessThan(JSON.stringify(fullPod()).length / 5);
    expect(JSON.stringify(slim)).not.toContain('managedFields');
  });

  it('stripManagedFields (every informer) drops only managedFields', () => {
    const svc = { metadata: { name: 's', namespace: 'n', labels: { a: 'b' }, managedFields }, spec: { ports: [{ port: 80 }] } };
    expect(stripManagedFields(svc)).toEqual({ metadata: { name: 's', namespace: 'n', labels: { a: 'b' } }, spec: { ports: [{ port: 80 }] } });
  });

  it('an Informer with a trim stores and hands out transformed objects, from the list and from the watch', async () => {
    const rest = new FakeRest();
    rest.set('/api/v1/pods', [fullPod()]);
    const added: KObj[] = [];
    const updated: KObj[] = [];
    const inf = new Informer<KObj>(rest.asRest(), '/api/v1/pods', { onAdd: (o) => added.push(o), onUpdate: (_o, n) => updated.push(n) }, { trim: slimPod });
    inf.start();
    await inf.waitForSync();
    expect(inf.get('shop/web-1')).toEqual(slimPod(rest.objects.get('/api/v1/pods')![0]! as KObj));
    for (let i = 0; i < 50 && rest.count('WATCH', /pods/) === 0; i++) await new Promise((r) => setImmediate(r));
    rest.emit('/api/v1/pods', 'MODIFIED', fullPod({ metadata: { ...fullPod().metadata, labels: { app: 'db' } } }));
    expect(updated).toHaveLength(1);
    expect(updated[0]!.metadata.annotations).toBeUndefined();
    expect(updated[0]!.metadata.labels).toEqual({ app: 'db' });
    expect(inf.get('shop/web-1')).toBe(updated[0]);
    expect(added[0]!.metadata.managedFields).toBeUndefined();
    inf.stop();
  });

  it('withoutStatus (the agent\'s BGPPeer cache) keeps metadata and spec, drops status', () => {
    const peer = { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'tor', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { peerAddress: '10.0.0.1', peerASN: 65000 }, status: { nodesSelected: 40, conditions: [{ type: 'Ready', status: 'True' }] } };
    expect(withoutStatus(structuredClone(peer) as KObj)).toEqual({ apiVersion: peer.apiVersion, kind: 'BGPPeer', metadata: peer.metadata, spec: peer.spec });
  });
});
