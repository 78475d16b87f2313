/**
 * Offline checks of the Kubernetes deployment (issue 6), runnable on Node (tsx), Deno and Bun,
 * and shared with tests/deployment_test.ts:
 *
 * 1. `kubectl kustomize` renders both overlays (`local`, `aws`);
 * 2. every rendered object, and both Secrets `secrets.sh render` makes, validate against the
 *    Kubernetes API schemas (`kubernetes-models`: each object built with its model class, then
 *    `.validate()`);
 * 3. the manifests agree with themselves and with the image: the container command is the
 *    Dockerfile's ENTRYPOINT, flags name the container ports, probes hit real routes on the HTTP
 *    port, the key file sits in the mounted Secret, Services select the pods and target the
 *    right ports, `--seeds` is the headless Service's DNS name, the pods are locked down;
 * 4. the flags and env of the rendered container, normalized to what the `node` command sees
 *    (`memberInvocation()` → `nodeFlagInput()`), parse into the settings the manifests assume.
 *    Until `src/cli.ts` exports `parseFlags(args, env)`, a stand-in parser written from the
 *    documented flags does that (`standInParseFlags`);
 * 5. with `--netns` (root): three hosts in network namespaces (deployment/netns_e2e.sh) run a
 *    UDP probe with exactly the rendered args and env, in place of the `node` command: the
 *    seed name resolves to the three hosts, the key file is mounted, datagrams reach every host
 *    on the gossip port.
 *
 *   npx tsx deployment/check.ts [--print] [--netns]      (or deno run -A / bun)
 *
 * KUBECTL names the kubectl binary (default: `kubectl` on PATH).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { parseAllDocuments } from "yaml";
import { Namespace, Secret, Service } from "kubernetes-models/v1";
import type { IContainer, INamespace, ISecret, IService } from "kubernetes-models/v1";
import { StatefulSet } from "kubernetes-models/apps/v1";
import type { IStatefulSet } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
/** The kustomize overlays, each a directory under deployment/k8s/overlays. */
export const OVERLAYS = ["local", "aws"] as const;
/** One of {@link OVERLAYS}. */
export type Overlay = typeof OVERLAYS[number];

/** The flags of the `node` command (issue 5), each with its env twin GOSSIP_KV_<UPPER_SNAKE>. */
export const NODE_FLAGS = [
  "id",
  "bind",
  "port",
  "advertise",
  "seeds",
  "cluster",
  "key-file",
  "http-port",
  "http-bind",
  "http-token",
  "gossip-interval",
  "log-level",
] as const;
/** The HTTP routes a probe may use (issue 4). */
export const PROBE_ROUTES: readonly string[] = ["/healthz", "/state", "/members", "/metrics"];
/** The names the manifests and deployment/k8s/secrets.sh agree on. */
export const NAMES = {
  statefulSet: "gossip-kv",
  container: "gossip-kv",
  gossipService: "gossip-kv-gossip",
  httpService: "gossip-kv-http",
  keySecret: "gossip-kv-cluster-key",
  keySecretKey: "cluster.keys",
  tokenSecret: "gossip-kv-http-token",
  tokenSecretKey: "token",
  tokenEnv: "GOSSIP_KV_HTTP_TOKEN",
} as const;

/** A rendered Kubernetes object, before validation. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [field: string]: unknown };
  [field: string]: unknown;
}

/** The env name twin of a flag: `http-token` → `GOSSIP_KV_HTTP_TOKEN`. */
export function envTwin(flag: string): string {
  return `GOSSIP_KV_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/** The kubectl to use: $KUBECTL or `kubectl` on PATH, or null when there is none. */
export function findKubectl(): string | null {
  const kubectl = process.env.KUBECTL || "kubectl";
  const res = spawnSync(kubectl, ["version", "--client"], { encoding: "utf8" });
  return res.status === 0 ? kubectl : null;
}

// kustomize v5 warns about the fields we keep for kustomize v2.0.3 (Debian 12's kubectl).
const DEPRECATION = /^# Warning: '(bases|patchesStrategicMerge)' is deprecated/;

/** Parses a multi-document YAML stream into objects (empty documents dropped). */
export function parseYamlStream(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new SyntaxError(`Bad YAML: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) out.push(value);
  }
  return out;
}

/** `kubectl kustomize deployment/k8s/overlays/<overlay>`, parsed. */
export function renderOverlay(overlay: Overlay, kubectl = findKubectl()): K8sObject[] {
  if (!kubectl) throw new Error("kubectl not found (set KUBECTL or install it)");
  const dir = join(ROOT, "deployment", "k8s", "overlays", overlay);
  const res = spawnSync(kubectl, ["kustomize", dir], { encoding: "utf8" });
  if (res.status !== 0) {
    throw new Error(`kubectl kustomize ${overlay} failed: ${res.stderr || res.error}`);
  }
  const noise = res.stderr.split("\n").filter((l) => l.trim() && !DEPRECATION.test(l));
  if (noise.length) throw new Error(`kubectl kustomize ${overlay} warned: ${noise.join("\n")}`);
  return parseYamlStream(res.stdout);
}

/** Both Secrets as `deployment/k8s/secrets.sh render` makes them (fresh random values). */
export function renderSecrets(kubectl = findKubectl()): K8sObject[] {
  if (!kubectl) throw new Error("kubectl not found (set KUBECTL or install it)");
  const res = spawnSync("bash", [join(ROOT, "deployment", "k8s", "secrets.sh"), "render"], {
    encoding: "utf8",
    env: { ...process.env, KUBECTL: kubectl, KUBECONFIG: "/nonexistent" },
  });
  if (res.status !== 0) throw new Error(`secrets.sh render failed: ${res.stderr || res.error}`);
  return parseYamlStream(res.stdout);
}

type Validator = (data: unknown) => void;
const MODELS: Record<string, Validator> = {
  "v1/Namespace": (d) => new Namespace(d as INamespace).validate(),
  "v1/Service": (d) => new Service(d as IService).validate(),
  "v1/Secret": (d) => new Secret(d as ISecret).validate(),
  "apps/v1/StatefulSet": (d) => new StatefulSet(d as IStatefulSet).validate(),
  "policy/v1/PodDisruptionBudget": (d) =>
    new PodDisruptionBudget(d as IPodDisruptionBudget).validate(),
};

/**
 * Validates each object against its Kubernetes API schema with the `kubernetes-models` class
 * of its apiVersion and kind. Returns one message per invalid object (empty: all valid).
 */
export function validateObjects(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  for (const obj of objects) {
    const id = `${obj.kind}/${obj.metadata?.name}`;
    const validate = MODELS[`${obj.apiVersion}/${obj.kind}`];
    if (!validate) {
      problems.push(`${id}: no schema model for ${obj.apiVersion} ${obj.kind} in check.ts`);
      continue;
    }
    // `kubectl create --dry-run` writes creationTimestamp: null, which the API server accepts
    // and the schema (a date-time string) does not.
    const data = structuredClone(obj);
    if (data.metadata?.creationTimestamp === null) delete data.metadata.creationTimestamp;
    try {
      validate(data);
    } catch (err) {
      problems.push(`${id}: ${(err as Error).message}`);
    }
  }
  return problems;
}

function find<T>(objects: readonly K8sObject[], kind: string, name: string): T {
  const obj = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!obj) throw new Error(`no ${kind} named ${name} in the rendered objects`);
  return obj as unknown as T;
}

/** The pod-specific values Kubernetes fills in at run time. */
export interface PodContext {
  /** metadata.name, e.g. "gossip-kv-0" */
  name: string;
  /** status.podIP */
  ip: string;
  /** metadata.namespace; default: the StatefulSet's namespace */
  namespace?: string;
  /** spec.nodeName and status.hostIP */
  node?: string;
  /** Secret values by "secret/key"; missing ones become "<secret:name/key>" */
  secrets?: Record<string, string>;
}

/**
 * Kubernetes' `$(VAR)` expansion (container env, command and args): a defined variable is
 * replaced, `$$` is a literal `$`, and an undefined reference stays as written.
 */
export function expandK8s(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name?: string) => {
    if (match === "$$") return "$";
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name] as string : match;
  });
}

/** The member container of the rendered StatefulSet, as one pod would run it. */
export interface MemberInvocation {
  /** The container's working directory (the image's /app: the repository root). */
  workingDir: string;
  /** The container's command: `deno run <permissions> src/cli.ts`. */
  command: string[];
  /** The container's args after `$(VAR)` expansion: what the `node` command receives. */
  args: string[];
  /** The container's env after expansion, downward-API fields and Secrets resolved. */
  env: Record<string, string>;
  /** The container ports by name. */
  ports: Record<string, { containerPort: number; protocol: string }>;
  /** The HTTP probes, by kind. */
  probes: { kind: "startup" | "readiness" | "liveness"; path: string; port: number }[];
  /** Where the cluster-key Secret is mounted: directory, files (item paths) and their keys. */
  keyMount: { mountPath: string; secretName: string; files: Record<string, string> } | null;
  /** Env vars that come from Secrets: name → "secret/key". */
  secretEnv: Record<string, string>;
}

/**
 * Extracts what one pod of the rendered StatefulSet runs: command, expanded args and env,
 * ports, probe routes and the mounted key Secret. `pod` supplies the values Kubernetes fills in
 * (pod name, IP, namespace, Secret contents).
 */
export function memberInvocation(objects: readonly K8sObject[], pod: PodContext): MemberInvocation {
  const sts = find<IStatefulSet>(objects, "StatefulSet", NAMES.statefulSet);
  const podSpec = sts.spec?.template.spec;
  const container = podSpec?.containers.find((c: IContainer) => c.name === NAMES.container);
  if (!podSpec || !container) throw new Error(`no container ${NAMES.container} in the StatefulSet`);
  const fields: Record<string, string> = {
    "metadata.name": pod.name,
    "metadata.namespace": pod.namespace ?? sts.metadata?.namespace ?? "default",
    "status.podIP": pod.ip,
    "status.podIPs": pod.ip,
    "spec.nodeName": pod.node ?? "node-0",
    "status.hostIP": pod.node ?? "192.0.2.1",
    "spec.serviceAccountName": podSpec.serviceAccountName ?? "default",
  };
  const env: Record<string, string> = {};
  const secretEnv: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const from = e.valueFrom;
    if (from?.fieldRef) {
      const value = fields[from.fieldRef.fieldPath];
      if (value === undefined) {
        throw new Error(`env ${e.name}: unknown field ${from.fieldRef.fieldPath}`);
      }
      env[e.name] = value;
    } else if (from?.secretKeyRef) {
      const ref = `${from.secretKeyRef.name}/${from.secretKeyRef.key}`;
      secretEnv[e.name] = ref;
      env[e.name] = pod.secrets?.[ref] ?? `<secret:${ref}>`;
    } else if (from) {
      throw new Error(`env ${e.name}: only value, fieldRef and secretKeyRef are handled`);
    } else {
      // Only the variables defined above this one expand (Kubernetes' rule).
      env[e.name] = expandK8s(e.value ?? "", env);
    }
  }
  const ports: MemberInvocation["ports"] = {};
  for (const p of container.ports ?? []) {
    if (p.name) ports[p.name] = { containerPort: p.containerPort, protocol: p.protocol ?? "TCP" };
  }
  const portNumber = (port: number | string): number => {
    if (typeof port === "number") return port;
    const named = ports[port];
    if (!named) throw new Error(`probe port ${port} names no container port`);
    return named.containerPort;
  };
  const probes: MemberInvocation["probes"] = [];
  for (const kind of ["startup", "readiness", "liveness"] as const) {
    const probe = container[`${kind}Probe`];
    if (probe?.httpGet) {
      probes.push({ kind, path: probe.httpGet.path ?? "/", port: portNumber(probe.httpGet.port) });
    }
  }
  let keyMount: MemberInvocation["keyMount"] = null;
  for (const m of container.volumeMounts ?? []) {
    const secret = podSpec.volumes?.find((v) => v.name === m.name)?.secret;
    if (secret?.secretName !== NAMES.keySecret) continue;
    if (m.subPath) {
      throw new Error(`${NAMES.keySecret} is mounted with subPath: updates never reach it`);
    }
    const files: Record<string, string> = {};
    for (const item of secret.items ?? [{ key: NAMES.keySecretKey, path: NAMES.keySecretKey }]) {
      files[item.path] = item.key;
    }
    keyMount = { mountPath: m.mountPath, secretName: secret.secretName, files };
  }
  return {
    workingDir: container.workingDir ?? "/",
    command: container.command ?? [],
    args: (container.args ?? []).map((a) => expandK8s(a, env)),
    env,
    ports,
    probes,
    keyMount,
    secretEnv,
  };
}

/**
 * What the `node` command's flag parser receives, normalized: the args as the container passes
 * them and the container's env. (The process also gets HOSTNAME, KUBERNETES_SERVICE_* and the
 * image's ENV, none of them GOSSIP_KV_*; the pod sets enableServiceLinks: false, so no
 * per-Service variables.) Feed it to `parseFlags(args, env)` from src/cli.ts.
 */
export function nodeFlagInput(
  inv: MemberInvocation,
): { args: string[]; env: Record<string, string> } {
  return { args: [...inv.args], env: { ...inv.env } };
}

/** The settings the manifests rely on, as the `node` command should derive them. */
export interface NodeSettings {
  id?: string;
  bind: string;
  port: number;
  advertise?: string;
  seeds: string[];
  cluster?: string;
  keyFile?: string;
  httpPort: number;
  httpBind?: string;
  httpToken?: string;
}

/**
 * A stand-in for `parseFlags(args, env)` of src/cli.ts, written from the flags documented in
 * issue 5 (`--flag=value` or `--flag value`, env twins GOSSIP_KV_*, flags over env, defaults
 * port 7946, http-port 8080, bind 0.0.0.0). Throws a TypeError on an unknown flag or a bad
 * number, as the real one exits 2. Replace its use by the real parser once it exists.
 */
export function standInParseFlags(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): NodeSettings {
  const given = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new TypeError(`Unexpected argument ${JSON.stringify(arg)}`);
    const name = m[1] as string;
    if (!(NODE_FLAGS as readonly string[]).includes(name)) {
      throw new TypeError(`Unknown flag --${name}`);
    }
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new TypeError(`Flag --${name} needs a value`);
    given.set(name, value);
  }
  const get = (flag: string): string | undefined => given.get(flag) ?? env[envTwin(flag)];
  const num = (flag: string, fallback: number): number => {
    const raw = get(flag);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new TypeError(`Bad --${flag} ${raw}`);
    return n;
  };
  const settings: NodeSettings = {
    bind: get("bind") ?? "0.0.0.0",
    port: num("port", 7946),
    seeds: (get("seeds") ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    httpPort: num("http-port", 8080),
  };
  const optional = [
    ["id", "id"],
    ["advertise", "advertise"],
    ["cluster", "cluster"],
    ["keyFile", "key-file"],
    ["httpBind", "http-bind"],
    ["httpToken", "http-token"],
  ] as const;
  for (const [field, flag] of optional) {
    const value = get(flag);
    if (value !== undefined) settings[field] = value;
  }
  return settings;
}

/** Splits "host:port", "[v6]:port" or a bare host. */
export function splitHostPort(text: string): { host: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) return { host: text };
  return m[2] === undefined
    ? { host: m[1] as string }
    : { host: m[1] as string, port: Number(m[2]) };
}

/**
 * Checks that the settings the `node` command derives from the rendered args and env (by
 * `parse`: the stand-in now, `parseFlags` from src/cli.ts later) match the manifests: ports,
 * advertise address, seeds, key file, HTTP token. Returns the problems found.
 */
export function checkNodeAgreement(
  objects: readonly K8sObject[],
  parse: (args: string[], env: Record<string, string>) => NodeSettings = standInParseFlags,
): string[] {
  const problems: string[] = [];
  const pod: PodContext = {
    name: "gossip-kv-0",
    ip: "10.244.0.10",
    secrets: { [`${NAMES.tokenSecret}/${NAMES.tokenSecretKey}`]: "token-value" },
  };
  const inv = memberInvocation(objects, pod);
  const input = nodeFlagInput(inv);
  let s: NodeSettings;
  try {
    s = parse(input.args, input.env);
  } catch (err) {
    return [`the node command refuses the rendered flags: ${(err as Error).message}`];
  }
  const expect = (ok: boolean, message: string) => ok || problems.push(message);
  const gossip = inv.ports.gossip;
  const http = inv.ports.http;
  expect(gossip?.protocol === "UDP", `container port "gossip" must be UDP`);
  expect(http?.protocol === "TCP", `container port "http" must be TCP`);
  expect(
    s.port === gossip?.containerPort,
    `--port ${s.port} ≠ container port gossip ${gossip?.containerPort}`,
  );
  expect(
    s.httpPort === http?.containerPort,
    `--http-port ${s.httpPort} ≠ container port http ${http?.containerPort}`,
  );
  expect(s.bind === "0.0.0.0" || s.bind === "::", `--bind ${s.bind} does not listen on the pod IP`);
  expect(
    s.httpBind === undefined || s.httpBind === "0.0.0.0" || s.httpBind === "::",
    `--http-bind ${s.httpBind} would hide the API from the probes and the Service`,
  );
  expect(s.id === pod.name, `--id is ${s.id}, not the pod name (stable across restarts)`);
  const adv = splitHostPort(s.advertise ?? "");
  expect(adv.host === pod.ip, `--advertise host ${adv.host} is not the pod IP`);
  expect(adv.port === s.port, `--advertise port ${adv.port} ≠ --port ${s.port}`);
  const svc = find<IService>(objects, "Service", NAMES.gossipService);
  const ns = svc.metadata?.namespace ?? "default";
  const names = [
    NAMES.gossipService,
    `${NAMES.gossipService}.${ns}`,
    `${NAMES.gossipService}.${ns}.svc`,
    `${NAMES.gossipService}.${ns}.svc.cluster.local`,
  ];
  const svcPort = svc.spec?.ports?.find((p) => p.name === "gossip");
  expect(s.seeds.length > 0, `--seeds is empty`);
  for (const seed of s.seeds) {
    const { host, port } = splitHostPort(seed);
    expect(names.includes(host), `seed ${seed} is not the headless Service's DNS name`);
    expect(
      (port ?? s.port) === svcPort?.port,
      `seed ${seed}: port ≠ Service port ${svcPort?.port}`,
    );
  }
  const key = inv.keyMount;
  expect(key !== null, `the Secret ${NAMES.keySecret} is not mounted`);
  if (key && s.keyFile) {
    const file = s.keyFile.startsWith(`${key.mountPath}/`)
      ? s.keyFile.slice(key.mountPath.length + 1)
      : "";
    expect(
      key.files[file] === NAMES.keySecretKey,
      `--key-file ${s.keyFile} is not the key "${NAMES.keySecretKey}" of ${NAMES.keySecret} mounted at ${key.mountPath}`,
    );
  } else {
    expect(false, `--key-file is not set: gossip would travel unencrypted`);
  }
  expect(
    inv.secretEnv[NAMES.tokenEnv] === `${NAMES.tokenSecret}/${NAMES.tokenSecretKey}`,
    `${NAMES.tokenEnv} does not come from the Secret ${NAMES.tokenSecret}`,
  );
  expect(s.httpToken === "token-value", `the node command does not read the HTTP token`);
  for (const probe of inv.probes) {
    expect(PROBE_ROUTES.includes(probe.path), `${probe.kind} probe on ${probe.path}: not a route`);
    expect(probe.port === s.httpPort, `${probe.kind} probe on port ${probe.port} ≠ --http-port`);
  }
  return problems;
}

/** The `ENTRYPOINT [...]` exec form of a Dockerfile. */
export function dockerEntrypoint(dockerfile: string): string[] {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!m) throw new Error("no ENTRYPOINT [...] in the Dockerfile");
  return JSON.parse(m[1] as string) as string[];
}

function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> = {},
) {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/** Checks of one rendered overlay that need no `node` command. Returns the problems found. */
export function checkManifests(objects: readonly K8sObject[], overlay: Overlay): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, message: string) => ok || problems.push(message);
  const sts = find<IStatefulSet>(objects, "StatefulSet", NAMES.statefulSet);
  const spec = sts.spec;
  const pod = spec?.template.spec;
  const labels = spec?.template.metadata?.labels ?? {};
  const c = pod?.containers.find((x) => x.name === NAMES.container);
  if (!spec || !pod || !c) return [`the StatefulSet has no container ${NAMES.container}`];
  // 3 in the base; an overlay may run more, never fewer (one member down by the PDB leaves two).
  expect((spec.replicas ?? 1) >= 3, `replicas ${spec.replicas}, expected at least 3`);
  expect(spec.podManagementPolicy === "Parallel", `podManagementPolicy must be Parallel`);
  expect(selects(spec.selector.matchLabels, labels), `the StatefulSet selector misses its pods`);

  const dockerfile = readFileSync(join(ROOT, "deployment", "Dockerfile"), "utf8");
  expect(
    JSON.stringify(c.command) === JSON.stringify(dockerEntrypoint(dockerfile)),
    `container command ${JSON.stringify(c.command)} ≠ the Dockerfile's ENTRYPOINT`,
  );
  expect(c.command?.includes("--unstable-net") === true, `deno needs --unstable-net for UDP`);
  const exposed = /^EXPOSE\s+(.+)$/m.exec(dockerfile)?.[1]?.trim().split(/\s+/).sort();
  const declared = (c.ports ?? []).map((p) =>
    `${p.containerPort}/${(p.protocol ?? "TCP").toLowerCase()}`
  )
    .sort();
  expect(
    JSON.stringify(exposed) === JSON.stringify(declared),
    `the Dockerfile EXPOSEs ${exposed}, the container declares ${declared}`,
  );
  const health = /^HEALTHCHECK[^\n]*(?:\\\n[^\n]*)*?(\/[a-z]+)\b/m.exec(dockerfile)?.[1];
  expect(PROBE_ROUTES.includes(health ?? ""), `the Dockerfile HEALTHCHECK requests ${health}`);
  expect(c.workingDir === "/app", `workingDir must be the image's /app`);
  const script = c.command?.at(-1) ?? "";
  expect(existsSync(join(ROOT, script)) || script === "src/cli.ts", `command runs ${script}`);

  // Security: the "restricted" Pod Security Standard and then some.
  const psc = pod.securityContext;
  const csc = c.securityContext;
  expect(psc?.runAsNonRoot === true || csc?.runAsNonRoot === true, `runAsNonRoot not set`);
  expect((psc?.runAsUser ?? csc?.runAsUser ?? 0) !== 0, `runs as uid 0`);
  expect(
    (csc?.seccompProfile ?? psc?.seccompProfile)?.type === "RuntimeDefault",
    `seccompProfile must be RuntimeDefault`,
  );
  expect(csc?.allowPrivilegeEscalation === false, `allowPrivilegeEscalation must be false`);
  expect(csc?.readOnlyRootFilesystem === true, `readOnlyRootFilesystem must be true`);
  expect(JSON.stringify(csc?.capabilities?.drop) === '["ALL"]', `capabilities must drop ALL`);
  expect(csc?.capabilities?.add === undefined, `no capability may be added`);
  expect(pod.automountServiceAccountToken === false, `the pods need no API token`);
  for (const kind of ["requests", "limits"] as const) {
    const r = c.resources?.[kind];
    expect(
      r?.cpu !== undefined && r?.memory !== undefined,
      `resources.${kind} needs cpu and memory`,
    );
  }

  // Service links would set GOSSIP_KV_HTTP_PORT=tcp://... from the Service gossip-kv-http.
  if (pod.enableServiceLinks !== false) {
    for (const svc of objects.filter((o) => o.kind === "Service")) {
      const prefix = svc.metadata.name.toUpperCase().replaceAll("-", "_");
      const clash = NODE_FLAGS.map(envTwin).filter((e) => e.startsWith(`${prefix}_`));
      expect(clash.length === 0, `Service ${svc.metadata.name} injects ${clash.join(", ")}`);
    }
  }

  // Services: the headless one for gossip, the HTTP one, both selecting the pods.
  const gossipSvc = find<IService>(objects, "Service", NAMES.gossipService);
  const httpSvc = find<IService>(objects, "Service", NAMES.httpService);
  expect(spec.serviceName === NAMES.gossipService, `serviceName must be ${NAMES.gossipService}`);
  expect(gossipSvc.spec?.clusterIP === "None", `${NAMES.gossipService} must be headless`);
  expect(
    gossipSvc.spec?.publishNotReadyAddresses === true,
    `${NAMES.gossipService} must publish not-ready pods (members join before they are ready)`,
  );
  const portsByName = new Map((c.ports ?? []).map((p) => [p.name, p]));
  for (
    const [svc, name, protocol] of [[gossipSvc, "gossip", "UDP"], [httpSvc, "http", "TCP"]] as const
  ) {
    expect(
      selects(svc.spec?.selector, labels),
      `Service ${svc.metadata?.name} selects no member pod`,
    );
    const sp = svc.spec?.ports?.find((p) => p.name === name);
    const cp = portsByName.get(name);
    expect(
      sp !== undefined && cp !== undefined,
      `port ${name} missing on ${svc.metadata?.name} or the pod`,
    );
    if (!sp || !cp) continue;
    expect(
      (sp.protocol ?? "TCP") === protocol && cp.protocol === protocol,
      `port ${name} must be ${protocol}`,
    );
    const target = sp.targetPort ?? sp.port;
    expect(
      target === name || target === cp.containerPort,
      `Service port ${name} targets ${target}`,
    );
  }
  const pdb = find<IPodDisruptionBudget>(objects, "PodDisruptionBudget", NAMES.statefulSet);
  expect(
    selects(pdb.spec?.selector?.matchLabels, labels),
    `the PodDisruptionBudget selects no pod`,
  );
  expect(
    pdb.spec?.maxUnavailable !== undefined || pdb.spec?.minAvailable !== undefined,
    `the PodDisruptionBudget allows nothing`,
  );

  // Each overlay's promise, as its README uses it.
  if (overlay === "local") {
    expect(
      c.imagePullPolicy === "Never",
      `local: imagePullPolicy must be Never (minikube image build)`,
    );
    expect(c.image === "gossip-kv:local", `local: image must be gossip-kv:local, got ${c.image}`);
    expect(httpSvc.spec?.type === "NodePort", `local: ${NAMES.httpService} must be a NodePort`);
    const np = httpSvc.spec?.ports?.find((p) => p.name === "http")?.nodePort;
    expect(np === 30080, `local: nodePort ${np}, the README says 30080`);
  } else {
    expect(
      /\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/gossip-kv:/.test(c.image ?? ""),
      `aws: image ${c.image} is not in ECR`,
    );
    const a = httpSvc.metadata?.annotations ?? {};
    expect(
      httpSvc.spec?.type === "LoadBalancer",
      `aws: ${NAMES.httpService} must be a LoadBalancer`,
    );
    expect(
      a["service.beta.kubernetes.io/aws-load-balancer-internal"] === "true",
      `aws: the load balancer must be internal`,
    );
  }
  return problems;
}

/** Checks the Secrets secrets.sh makes: valid, and the names and keys the pods read. */
export function checkSecrets(secrets: readonly K8sObject[]): string[] {
  const problems = validateObjects(secrets);
  const key = find<ISecret>(secrets, "Secret", NAMES.keySecret);
  const token = find<ISecret>(secrets, "Secret", NAMES.tokenSecret);
  const keys = atob(key.data?.[NAMES.keySecretKey] ?? "").split("\n").filter(Boolean);
  if (keys.length !== 1 || atob(keys[0] as string).length !== 32) {
    problems.push(
      `${NAMES.keySecret}: expected one base64 key of 32 bytes, got ${keys.length} lines`,
    );
  }
  if (atob(token.data?.[NAMES.tokenSecretKey] ?? "").length < 32) {
    problems.push(`${NAMES.tokenSecret}: token missing or shorter than 32 characters`);
  }
  return problems;
}

/** A process to start: the container's command and args mapped onto this checkout. */
export interface MemberLaunch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/**
 * The pod's container as a local process, for the network-namespace run: the image's /app is
 * this checkout (`cwd` = ROOT), `deno` is the one from node_modules/.bin (the version the image
 * pins), args and env exactly as rendered, plus PATH. Run it with
 * `ip netns exec <netns> <file> <args...>` (see {@link runNetnsProbe}).
 */
export function memberLaunch(inv: MemberInvocation): MemberLaunch {
  const [program, ...rest] = inv.command;
  if (!program) throw new Error("the container has no command");
  if (inv.workingDir !== "/app") throw new Error(`workingDir ${inv.workingDir} is not /app`);
  const local = join(ROOT, "node_modules", ".bin", program);
  return {
    file: existsSync(local) ? local : program,
    args: [...rest, ...inv.args],
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...inv.env },
  };
}

/** The outcome of the UDP probe of one host in {@link runNetnsProbe}. */
export interface ProbeReport {
  id: string;
  resolved: string[];
  heard: string[];
  keyLines: number;
}

// Run by `node` in each namespace in place of the `node` command, with the rendered args and
// env: reads --id, --port, --bind, --seeds and --key-file (flag or env twin) the simple way.
const PROBE = String.raw`
const dgram = require("node:dgram"), dns = require("node:dns/promises"), fs = require("node:fs");
const flags = {};
for (const a of process.argv.slice(1)) { const m = /^--([a-z-]+)=(.*)$/s.exec(a); if (m) flags[m[1]] = m[2]; }
const get = (f) => flags[f] ?? process.env["GOSSIP_KV_" + f.toUpperCase().replaceAll("-", "_")];
const id = get("id"), port = Number(get("port") ?? 7946), seeds = (get("seeds") ?? "").split(",");
const keyLines = fs.readFileSync(get("key-file"), "utf8").split("\n").filter(Boolean).length;
const heard = new Set();
const sock = dgram.createSocket("udp4");
sock.on("message", (m) => heard.add(String(m)));
sock.bind(port, get("bind") ?? "0.0.0.0", async () => {
  const resolved = [];
  for (const s of seeds) {
    const [host, p] = s.split(":");
    for (const a of await dns.lookup(host, { all: true, family: 4 })) resolved.push([a.address, Number(p ?? port)]);
  }
  for (let i = 0; i < 10; i++) {
    for (const [addr, p] of resolved) sock.send(id, p, addr);
    await new Promise((r) => setTimeout(r, 150));
  }
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify({ id, resolved: resolved.map((r) => r[0]).sort(), heard: [...heard].sort(), keyLines }));
  sock.close();
});
`;

/**
 * Network-namespace rehearsal of the StatefulSet: `members` hosts made by
 * deployment/netns_e2e.sh, the rendered seed name resolving to all of them, the key Secret at
 * its mount path; in each host `node` runs {@link PROBE} with exactly the rendered args and
 * env of that pod. Needs root. Returns each host's report.
 *
 * Once src/cli.ts exists, the same launch runs the real command:
 * `ip netns exec <netns> <ROOT/node_modules/.bin/deno> <command[1..]> <args>` with cwd ROOT
 * (the image's /app) and the same env.
 */
export async function runNetnsProbe(
  objects: readonly K8sObject[],
  members = 3,
): Promise<ProbeReport[]> {
  const script = join(ROOT, "deployment", "netns_e2e.sh");
  const run = `p${randomBytes(2).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-netns-"));
  try {
    const first = memberInvocation(objects, { name: "gossip-kv-0", ip: "10.213.0.10" });
    const settings = standInParseFlags(first.args, first.env);
    const keyPath = settings.keyFile;
    if (!keyPath?.startsWith("/etc/")) throw new Error(`--key-file ${keyPath} is not under /etc/`);
    const keyFile = join(dir, "cluster.keys");
    writeFileSync(keyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    const hosts = [...new Set(settings.seeds.map((s) => splitHostPort(s).host))];
    const up = spawnSync("bash", [
      script,
      "up",
      run,
      String(members),
      ...hosts.flatMap((h) => ["--name", h]),
      "--file",
      `${keyPath}=${keyFile}`,
    ], { encoding: "utf8" });
    if (up.status !== 0) throw new Error(`netns_e2e.sh up failed: ${up.stderr}`);
    const lines = up.stdout.trim().split("\n").map((l) => l.split(" "));
    const token = randomBytes(24).toString("base64url");
    const reports = await Promise.all(lines.map(([i, netns, ip]) => {
      const inv = memberInvocation(objects, {
        name: `gossip-kv-${i}`,
        ip: ip as string,
        secrets: { [`${NAMES.tokenSecret}/${NAMES.tokenSecretKey}`]: token },
      });
      const launch = memberLaunch(inv);
      // TODO(src/cli.ts): run [launch.file, ...launch.args] (the real command) instead of the
      // probe, then poll each member's /state until all three are alive and a write replicates.
      const probe = ["node", "-e", PROBE, "--", ...inv.args];
      return new Promise<ProbeReport>((resolve, reject) => {
        const child = spawn("ip", ["netns", "exec", netns as string, ...probe], {
          cwd: launch.cwd,
          env: launch.env,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          if (code === 0) resolve(JSON.parse(out) as ProbeReport);
          else reject(new Error(`probe in ${netns} exited ${code}: ${err}`));
        });
      });
    }));
    return reports;
  } finally {
    spawnSync("bash", [script, "down", run]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether network namespaces can be made here (root and iproute2). */
export function netnsAvailable(): string | null {
  if (process.getuid?.() !== 0) return "needs root";
  const probe = `gkvchk${process.pid % 10000}`;
  const res = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (res.error) return "iproute2 (ip) is not installed";
  if (res.status !== 0) return `ip netns add fails: ${res.stderr.trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return null;
}

async function main(argv: string[]): Promise<number> {
  const kubectl = findKubectl();
  if (!kubectl) {
    console.error("kubectl not found: install it (Debian: kubernetes-client) or set KUBECTL");
    return 2;
  }
  const problems: string[] = [];
  const started = Date.now();
  for (const overlay of OVERLAYS) {
    const objects = renderOverlay(overlay, kubectl);
    const found = [
      ...validateObjects(objects),
      ...checkManifests(objects, overlay),
      ...checkNodeAgreement(objects),
    ];
    problems.push(...found.map((p) => `${overlay}: ${p}`));
    console.log(
      `${
        found.length ? "FAIL" : "ok  "
      } ${overlay}: ${objects.length} objects rendered and checked`,
    );
    if (argv.includes("--print")) {
      const inv = memberInvocation(objects, { name: "gossip-kv-0", ip: "10.244.0.10" });
      console.log(JSON.stringify({ ...inv, nodeFlagInput: nodeFlagInput(inv) }, null, 2));
    }
    if (argv.includes("--netns") && overlay === "local") {
      const why = netnsAvailable();
      if (why) {
        problems.push(`netns: ${why}`);
        continue;
      }
      for (const r of await runNetnsProbe(objects)) {
        const ok = r.resolved.length === 3 && r.heard.length === 3 && r.keyLines === 1;
        if (!ok) problems.push(`netns: ${JSON.stringify(r)}`);
        console.log(
          `${ok ? "ok  " : "FAIL"} netns ${r.id}: resolved ${r.resolved}, heard ${r.heard}`,
        );
      }
    }
  }
  const secretProblems = checkSecrets(renderSecrets(kubectl));
  problems.push(...secretProblems.map((p) => `secrets.sh: ${p}`));
  console.log(`${secretProblems.length ? "FAIL" : "ok  "} secrets.sh render: both Secrets valid`);
  for (const p of problems) console.error(`  ${p}`);
  console.log(`${problems.length ? "FAILED" : "passed"} in ${Date.now() - started} ms`);
  return problems.length ? 1 : 0;
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
