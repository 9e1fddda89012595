/**
 * Kubernetes Events for decisions (core/v1, so `kubectl describe` shows them). Cluster-scoped objects'
 * events go to the "default" namespace, as client-go's recorder does. Repeats of the same event on the
 * same object within 10 minutes bump its count instead of creating a new Event.
 */
import { randomBytes } from 'node:crypto';
import { log } from '../lib/log.js';
import type { KubeRest } from './rest.js';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  namespace?: string;
}

export interface EventSink {
  emit(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

export class KubeEventRecorder implements EventSink {
  private recent = new Map<string, { name: string; ns: string; count: number; at: number }>();
  sent = 0;

  constructor(
    private readonly rest: KubeRest,
    private readonly component: string,
    private readonly host = process.env.HOSTNAME ?? '',
  ) {}

  emit(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.send(ref, type, reason, message).catch((e: Error) =>
      log.debug({ kind: ref.kind, name: ref.name, reason, err: e.message }, 'event not recorded'),
    );
  }

  private async send(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const ns = ref.namespace ?? 'default';
    const key = `${ref.kind}/${ref.namespace ?? ''}/${ref.name}/${ref.uid ?? ''}/${type}/${reason}/${message}`;
    const now = new Date();
    const prev = this.recent.get(key);
    if (prev && now.getTime() - prev.at < 600_000) {
      prev.count++;
      prev.at = now.getTime();
      await this.rest.request('PATCH', `/api/v1/namespaces/${prev.ns}/events/${prev.name}`, { count: prev.count, lastTimestamp: now.toISOString() }, 'application/merge-patch+json');
      return;
    }
    if (this.recent.size > 5000) this.recent.clear();
    const name = `${ref.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`.slice(0, 253);
    this.recent.set(key, { name, ns, count: 1, at: now.getTime() });
    this.sent++;
    await this.rest.request('POST', `/api/v1/namespaces/${ns}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: ns },
      involvedObject: { apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, ...(ref.uid ? { uid: ref.uid } : {}), ...(ref.namespace ? { namespace: ref.namespace } : {}) },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component, ...(this.host ? { host: this.host } : {}) },
      reportingComponent: `podfabric.io/${this.component}`,
      reportingInstance: this.host || this.component,
      firstTimestamp: now.toISOString(),
      lastTimestamp: now.toISOString(),
      count: 1,
    });
  }
}

/** Collects events in memory (unit tests). */
export class MemoryEventSink implements EventSink {
  events: Array<{ ref: ObjectRef; type: string; reason: string; message: string }> = [];
  emit(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.events.push({ ref, type, reason, message });
  }
}
