/**
 * Offline checks of the Kubernetes deployment, runnable on Node (tsx), Deno and Bun,
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
 *    (`memberInvocation()` → `nodeFlagInput()`), parse with the command's own parser
 *    (`parseFlags` of src/cli.ts, through `nodeSettings()`) into the settings the manifests
 *    assume;
 * 5. with `--netns` (root): three hosts in network namespaces (deployment/netns_e2e.sh) run the
 *    `node` command with exactly the rendered command, args and env: the seed name resolves to
 *    the three hosts, the key file is mounted, the members form one cluster, a write on one is
 *    read on the other two, and SIGTERM makes each leave and exit 0.
 *
 *   npx tsx deployment/check.ts [--print] [--netns]      (or deno run -A / bun)
 *
 * KUBECTL names the kubectl binary (default: `kubectl` on PATH).
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
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
import { parseHostPort } from "../src/core/address.ts";
import { envTwin, FLAGS, type NodeConfig, parseFlags } from "../src/cli.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
/** The kustomize overlays, each a directory under deployment/k8s/overlays. */
export const OVERLAYS = ["local", "aws"] as const;
/** One of {@link OVERLAYS}. */
export type Overlay = typeof OVERLAYS[number];

/** The flags of the `node` command, each with its env twin GOSSIP_KV_<UPPER_SNAKE>. */
export const NODE_FLAGS: readonly string[] = FLAGS.map((f) => f.name);
/** The HTTP routes a probe may use. */
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

/** The settings the manifests rely on, from the `node` command's configuration. */
export function toSettings(config: NodeConfig): NodeSettings {
  const settings: NodeSettings = {
    id: config.id,
    bind: config.bind,
    port: config.port,
    seeds: [...config.seeds],
    cluster: config.cluster,
    httpPort: config.httpPort,
    httpBind: config.httpBind,
  };
  if (config.advertise !== undefined) settings.advertise = config.advertise;
  if (config.keyFile !== undefined) settings.keyFile = config.keyFile;
  if (config.httpToken !== undefined) settings.httpToken = config.httpToken;
  return settings;
}

/**
 * What the `node` command makes of `args` and `env`: `parseFlags` of src/cli.ts, as
 * {@link NodeSettings}. Throws its `UsageError` where the command would exit with code 2.
 */
export function nodeSettings(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): NodeSettings {
  return toSettings(parseFlags(args, env));
}

/** Splits "host:port", "[v6]:port" or a bare host. */
export function splitHostPort(text: string): { host: string; port?: number } {
  const parsed = parseHostPort(text);
  if (!parsed) return { host: text };
  return parsed.port === undefined
    ? { host: parsed.host }
    : { host: parsed.host, port: parsed.port };
}

/**
 * Checks that the settings the `node` command derives from the rendered args and env (by
 * `parse`: by default {@link nodeSettings}, the command's own parser) match the manifests:
 * ports, advertise address, seeds, key file, HTTP token. Returns the problems found.
 */
export function checkNodeAgreement(
  objects: readonly K8sObject[],
  parse: (args: string[], env: Record<string, string>) => NodeSettings = nodeSettings,
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
 * `ip netns exec <netns> <file> <args...>` (see {@link runNetnsCluster}).
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

/** One member of {@link runNetnsCluster}: what it saw, and how it ended. */
export interface NetnsMember {
  /** Its member id (the pod name). */
  id: string;
  /** Its host's address. */
  ip: string;
  /** The members its `/state` showed alive, sorted. */
  alive: string[];
  /** The written key as `GET /usr/:key` on this member answered it (null: never). */
  read: unknown;
  /** How the process ended after SIGTERM. */
  exit: { code: number | null; signal: string | null };
  /** Its output. */
  log: string;
}

/** The outcome of {@link runNetnsCluster}. */
export interface NetnsRun {
  /** Each member, in pod order. */
  members: NetnsMember[];
  /** The HTTP status of the write on the first member. */
  put: number;
  /** The value written. */
  value: unknown;
}

// Run by `node` in the first host's namespace, where every member's HTTP port is reachable
// over the bridge: polls each /state until every member sees the others alive, writes a key
// on the first member with the token, reads it on every member, and prints what it saw.
const DRIVER = String.raw`
const { urls, ids, token, key, value, timeoutMs } = JSON.parse(process.env.GOSSIP_KV_E2E);
const deadline = Date.now() + timeoutMs;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const get = async (url) => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return res.ok ? await res.json() : null;
  } catch { return null; }
};
const aliveIn = (state) => state?.sys ? Object.entries(state.sys.members)
  .filter(([, m]) => m.status === "alive").map(([id]) => id).sort() : [];
const report = { alive: urls.map(() => []), put: 0, read: urls.map(() => null) };
const done = () => { console.log(JSON.stringify(report)); process.exit(0); };
for (;;) {
  report.alive = (await Promise.all(urls.map((u) => get(u + "/state")))).map(aliveIn);
  if (report.alive.every((a) => ids.every((id) => a.includes(id)))) break;
  if (Date.now() > deadline) done();
  await sleep(250);
}
const path = "/usr/" + encodeURIComponent(key);
try {
  const res = await fetch(urls[0] + path, {
    method: "PUT",
    headers: { authorization: "Bearer " + token, "content-type": "application/json" },
    body: JSON.stringify(value),
    signal: AbortSignal.timeout(3000),
  });
  report.put = res.status;
} catch {}
for (;;) {
  report.read = await Promise.all(urls.map((u) => get(u + path)));
  if (report.read.every((v) => JSON.stringify(v) === JSON.stringify(value))) break;
  if (Date.now() > deadline) break;
  await sleep(100);
}
done();
`;

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null }>;
  done: boolean;
  log: string;
}

function start(argv: string[], options: { cwd: string; env: Record<string, string> }): Running {
  const child = spawn(argv[0] as string, argv.slice(1), {
    ...options,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const running: Running = {
    child,
    done: false,
    log: "",
    exited: new Promise((resolve) => {
      child.once("close", (code, signal) => resolve({ code, signal }));
      child.once("error", (error) => {
        running.log += `${error.message}\n`;
        resolve({ code: null, signal: null });
      });
    }),
  };
  child.once("exit", () => (running.done = true));
  child.stdout?.on("data", (d) => (running.log += d));
  child.stderr?.on("data", (d) => (running.log += d));
  return running;
}

/** Sends `signal` (with process.kill: see the note below) unless the process has exited. */
function signal(running: Running, name: NodeJS.Signals): void {
  // Not child.kill(): Deno's node:child_process (2.9) then reports the child as killed by
  // the signal even when it handled it and exited 0.
  if (running.done || running.child.pid === undefined) return;
  try {
    process.kill(running.child.pid, name);
  } catch {
    // It exited in the meantime.
  }
}

async function within<T>(promise: Promise<T>, ms: number, onLate: () => void): Promise<T> {
  const timer = setTimeout(onLate, ms);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Network-namespace rehearsal of the StatefulSet: `members` hosts made by
 * deployment/netns_e2e.sh, the rendered seed name resolving to all of them, a fresh key file
 * at the path the Secret is mounted at; in each host runs the `node` command exactly as the
 * rendered pod runs it ({@link memberLaunch}: `ip netns exec <netns> deno run ... src/cli.ts
 * <args>`, cwd this checkout, the pod's env with a generated HTTP token). Then, from the first
 * host, polls every member's `/state` until all see each other alive, writes a key on the
 * first with the token, reads it on every member; finally sends SIGTERM to every member and
 * waits for it to exit. Needs root. Everything is removed afterwards, whatever happens.
 */
export async function runNetnsCluster(
  objects: readonly K8sObject[],
  members = 3,
): Promise<NetnsRun> {
  const script = join(ROOT, "deployment", "netns_e2e.sh");
  const run = `p${randomBytes(2).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-netns-"));
  const running: Running[] = [];
  try {
    const first = memberInvocation(objects, { name: "gossip-kv-0", ip: "10.213.0.10" });
    const settings = nodeSettings(first.args, first.env);
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
    const lines = up.stdout.trim().split("\n").map((l) => l.split(" ") as [string, string, string]);
    const token = randomBytes(24).toString("base64url");
    const pods = lines.map(([i, netns, ip]) => {
      const inv = memberInvocation(objects, {
        name: `gossip-kv-${i}`,
        ip,
        secrets: { [`${NAMES.tokenSecret}/${NAMES.tokenSecretKey}`]: token },
      });
      const launch = memberLaunch(inv);
      const { id, httpPort } = nodeSettings(inv.args, inv.env);
      running.push(
        start(["ip", "netns", "exec", netns, launch.file, ...launch.args], {
          cwd: launch.cwd,
          env: launch.env,
        }),
      );
      return { id: id ?? `gossip-kv-${i}`, ip, url: `http://${ip}:${httpPort}` };
    });
    const value = { run, at: Date.now() };
    const driver = start(
      ["ip", "netns", "exec", lines[0]![1], "node", "--input-type=module", "-e", DRIVER],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          GOSSIP_KV_E2E: JSON.stringify({
            urls: pods.map((p) => p.url),
            ids: pods.map((p) => p.id).sort(),
            token,
            key: "netns-e2e",
            value,
            timeoutMs: 60_000,
          }),
        },
      },
    );
    running.push(driver);
    const ended = await within(driver.exited, 90_000, () => signal(driver, "SIGKILL"));
    let report: { alive: string[][]; put: number; read: unknown[] };
    try {
      report = JSON.parse(driver.log.trim().split("\n").at(-1) ?? "");
    } catch {
      throw new Error(`the netns driver failed (${ended.code ?? ended.signal}): ${driver.log}`);
    }
    const exits = await Promise.all(
      running.slice(0, pods.length).map((r) => {
        signal(r, "SIGTERM");
        return within(r.exited, 20_000, () => signal(r, "SIGKILL"));
      }),
    );
    return {
      members: pods.map((p, i) => ({
        id: p.id,
        ip: p.ip,
        alive: report.alive[i] ?? [],
        read: report.read[i] ?? null,
        exit: exits[i]!,
        log: running[i]!.log,
      })),
      put: report.put,
      value,
    };
  } finally {
    for (const r of running) signal(r, "SIGKILL");
    await Promise.all(running.map((r) => r.exited));
    spawnSync("bash", [script, "down", run]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What is wrong with a {@link runNetnsCluster} outcome (empty: one cluster, as expected). */
export function netnsProblems(run: NetnsRun): string[] {
  const problems: string[] = [];
  const ids = run.members.map((m) => m.id).sort();
  if (run.put !== 204) problems.push(`PUT on ${run.members[0]?.id} answered ${run.put}`);
  for (const m of run.members) {
    const tail = `\n${m.log}`;
    if (JSON.stringify(m.alive) !== JSON.stringify(ids)) {
      problems.push(`${m.id} saw ${m.alive.join(",") || "nobody"} alive, not ${ids}${tail}`);
    }
    if (JSON.stringify(m.read) !== JSON.stringify(run.value)) {
      problems.push(`${m.id} read ${JSON.stringify(m.read)}, not the value written${tail}`);
    }
    if (m.exit.code !== 0) {
      problems.push(`${m.id} exited with ${m.exit.code ?? m.exit.signal} on SIGTERM${tail}`);
    }
  }
  return problems;
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
      const run = await runNetnsCluster(objects);
      problems.push(...netnsProblems(run).map((p) => `netns: ${p}`));
      for (const m of run.members) {
        console.log(
          `${m.exit.code === 0 ? "ok  " : "FAIL"} netns ${m.id} at ${m.ip}: saw ${
            m.alive.join(",")
          } alive, read ${JSON.stringify(m.read)}, exit ${m.exit.code ?? m.exit.signal}`,
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
