/**
 * A small kubeconfig loader: what KubeRest needs (the current cluster's server, TLS material and bearer
 * token) without loading @kubernetes/client-node, whose import alone costs ~60 MB of resident memory in
 * every podfabric process (it pulls in its whole generated API). Same lookup as client-node's
 * loadFromDefault: $KUBECONFIG (files merged, first wins), ~/.kube/config, then the in-cluster service
 * account. Client certificates, tokens and token files are handled here; a user that needs a credential
 * plugin (exec, auth-provider) is handed to client-node's KubeConfig, loaded only then.
 */
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';

/** What KubeRest uses of a kubeconfig (client-node's KubeConfig has the same shape). */
export interface KubeConfigLike {
  getCurrentCluster(): { server: string } | null;
  applyToHTTPSOptions(o: https.RequestOptions): Promise<void>;
}

type Named<T> = { name: string } & T;
interface Cluster {
  server: string;
  'certificate-authority-data'?: string;
  'certificate-authority'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
}
interface User {
  token?: string;
  tokenFile?: string;
  'client-certificate-data'?: string;
  'client-certificate'?: string;
  'client-key-data'?: string;
  'client-key'?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}
interface Context {
  cluster: string;
  user: string;
  namespace?: string;
}
interface Doc {
  clusters?: Array<Named<{ cluster: Cluster }>>;
  users?: Array<Named<{ user: User }>>;
  contexts?: Array<Named<{ context: Context }>>;
  'current-context'?: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class LightKubeConfig implements KubeConfigLike {
  private constructor(
    private readonly doc: Required<Omit<Doc, 'current-context'>>,
    private current: string,
    /** Where it came from, for the client-node fallback (undefined: the default lookup). */
    private readonly path: string | undefined,
  ) {}

  static load(path?: string): LightKubeConfig {
    if (path) return LightKubeConfig.fromDocs([readDoc(path)], path);
    const env = process.env.KUBECONFIG?.split(':').filter(Boolean) ?? [];
    const files = env.length ? env.filter((f) => existsSync(f)) : [join(homedir(), '.kube', 'config')].filter((f) => existsSync(f));
    if (files.length) return LightKubeConfig.fromDocs(files.map(readDoc), files.length === 1 ? files[0] : undefined);
    const host = process.env.KUBERNETES_SERVICE_HOST;
    if (host && existsSync(join(SA_DIR, 'token'))) {
      const server = `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`;
      return LightKubeConfig.fromDocs(
        [
          {
            clusters: [{ name: 'inCluster', cluster: { server, 'certificate-authority': join(SA_DIR, 'ca.crt') } }],
            users: [{ name: 'inClusterUser', user: { tokenFile: join(SA_DIR, 'token') } }],
            contexts: [{ name: 'inClusterContext', context: { cluster: 'inCluster', user: 'inClusterUser' } }],
            'current-context': 'inClusterContext',
          },
        ],
        undefined,
      );
    }
    return LightKubeConfig.fromDocs([{ clusters: [{ name: 'cluster', cluster: { server: 'http://localhost:8080' } }], users: [{ name: 'user', user: {} }], contexts: [{ name: 'loaded-context', context: { cluster: 'cluster', user: 'user' } }], 'current-context': 'loaded-context' }], undefined);
  }

  private static fromDocs(docs: Doc[], path: string | undefined): LightKubeConfig {
    const merged = <T extends { name: string }>(lists: Array<T[] | undefined>): T[] => {
      const seen = new Map<string, T>();
      for (const l of lists) for (const x of l ?? []) if (!seen.has(x.name)) seen.set(x.name, x);
      return [...seen.values()];
    };
    const doc = { clusters: merged(docs.map((d) => d.clusters)), users: merged(docs.map((d) => d.users)), contexts: merged(docs.map((d) => d.contexts)) };
    return new LightKubeConfig(doc, docs.find((d) => d['current-context'])?.['current-context'] ?? '', path);
  }

  getContextObject(name: string): Context | null {
    return this.doc.contexts.find((c) => c.name === name)?.context ?? null;
  }

  setCurrentContext(name: string): void {
    this.current = name;
  }

  getCurrentCluster(): Cluster | null {
    const ctx = this.getContextObject(this.current);
    return (ctx && this.doc.clusters.find((c) => c.name === ctx.cluster)?.cluster) ?? null;
  }

  private currentUser(): User {
    const ctx = this.getContextObject(this.current);
    return (ctx && this.doc.users.find((u) => u.name === ctx.user)?.user) ?? {};
  }

  async applyToHTTPSOptions(o: https.RequestOptions): Promise<void> {
    const user = this.currentUser();
    if (user.exec || user['auth-provider']) return this.viaClientNode(o);
    const cluster = this.getCurrentCluster();
    const headers = (o.headers ?? {}) as Record<string, string>;
    if (cluster) {
      const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority']);
      if (ca) o.ca = ca;
      if (cluster['insecure-skip-tls-verify']) o.rejectUnauthorized = false;
      if (cluster['tls-server-name']) o.servername = cluster['tls-server-name'];
    }
    const cert = material(user['client-certificate-data'], user['client-certificate']);
    const key = material(user['client-key-data'], user['client-key']);
    if (cert) o.cert = cert;
    if (key) o.key = key;
    const token = user.token ?? (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined);
    if (token) headers.Authorization = `Bearer ${token}`;
    else if (user.username && user.password) headers.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    o.headers = headers;
  }

  /** Credential plugins: client-node's KubeConfig does those (loaded on first use only). */
  private async viaClientNode(o: https.RequestOptions): Promise<void> {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    if (this.path) kc.loadFromFile(this.path);
    else kc.loadFromDefault();
    kc.setCurrentContext(this.current);
    await kc.applyToHTTPSOptions(o);
  }
}

function readDoc(path: string): Doc {
  const doc = (parse(readFileSync(path, 'utf8')) ?? {}) as Doc;
  if (typeof doc !== 'object') throw new Error(`${path}: not a kubeconfig`);
  // File references are relative to the kubeconfig's own directory (as kubectl reads them).
  const abs = (o: Record<string, unknown> | undefined, keys: string[]) => {
    for (const k of keys) if (o && typeof o[k] === 'string' && o[k] && !isAbsolute(o[k] as string)) o[k] = resolve(dirname(path), o[k] as string);
  };
  for (const c of doc.clusters ?? []) abs(c.cluster as unknown as Record<string, unknown>, ['certificate-authority']);
  for (const u of doc.users ?? []) abs(u.user as unknown as Record<string, unknown>, ['client-certificate', 'client-key', 'tokenFile']);
  return doc;
}

/** Inline base64 data, else a file's bytes, else nothing. */
function material(data: string | undefined, file: string | undefined): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (file) return readFileSync(file);
  return undefined;
}
