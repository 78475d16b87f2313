// The offline checks of deployment/ (deployment/check.ts): the kustomize overlays render, every
// object validates against the Kubernetes API schemas, the manifests agree with the image, the
// Secrets and the `node` command's flags (parsed by the command's own parser), and the
// network-namespace rehearsal of the StatefulSet runs the real command. Skipped, with the
// reason, where kubectl or root is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import {
  checkManifests,
  checkNodeAgreement,
  checkSecrets,
  dockerEntrypoint,
  expandK8s,
  findKubectl,
  type K8sObject,
  memberInvocation,
  memberLaunch,
  netnsAvailable,
  netnsProblems,
  nodeFlagInput,
  nodeSettings,
  type Overlay,
  OVERLAYS,
  renderOverlay,
  renderSecrets,
  ROOT,
  runNetnsCluster,
  toSettings,
  validateObjects,
} from "../deployment/check.ts";
import { parseFlags, UsageError } from "../src/cli.ts";
import { recordSkip } from "./_skip.ts";

const kubectl = findKubectl();
const noKubectl = kubectl ? false : recordSkip(
  "the deployment's kubectl tests",
  "kubectl is not installed (Debian: apt-get install kubernetes-client)",
);
const netnsProblem = noKubectl ? null : netnsAvailable();
const netnsSkip = noKubectl ||
  (netnsProblem !== null && recordSkip("the deployment's network-namespace cluster", netnsProblem));

const rendered = new Map<Overlay, K8sObject[]>();
function render(overlay: Overlay): K8sObject[] {
  let objects = rendered.get(overlay);
  if (!objects) rendered.set(overlay, objects = renderOverlay(overlay, kubectl));
  return structuredClone(objects);
}

test("expandK8s() follows Kubernetes' $(VAR) rules", () => {
  const vars = { POD_IP: "10.0.0.7", NS: "prod" };
  assert.equal(expandK8s("$(POD_IP):7946", vars), "10.0.0.7:7946");
  assert.equal(expandK8s("svc.$(NS).svc.$(NS)", vars), "svc.prod.svc.prod");
  assert.equal(expandK8s("$(MISSING)/$$(POD_IP)/$$", vars), "$(MISSING)/$(POD_IP)/$");
});

test("the checks read flags with the node command's own parser: flags over env twins", () => {
  const s = nodeSettings(["--port=7000", "--seeds", "a:1, b", "--key-file=/k", "--id=m"], {
    GOSSIP_KV_PORT: "9",
    GOSSIP_KV_HTTP_PORT: "0",
    GOSSIP_KV_HTTP_TOKEN: "t",
  });
  assert.deepEqual(s, {
    id: "m",
    bind: "0.0.0.0",
    port: 7000,
    seeds: ["a:1", "b"],
    cluster: "default",
    httpPort: 0,
    httpBind: "127.0.0.1",
    keyFile: "/k",
    httpToken: "t",
  });
  assert.throws(() => nodeSettings(["--prot=1"], {}), UsageError);
  assert.throws(() => nodeSettings([], { GOSSIP_KV_PORT: "tcp://10.0.0.1:80" }), /GOSSIP_KV_PORT/);
});

test("the Dockerfile's ENTRYPOINT runs src/cli.ts with Deno and --unstable-net", async () => {
  const { readFileSync } = await import("node:fs");
  const entry = dockerEntrypoint(readFileSync(join(ROOT, "deployment", "Dockerfile"), "utf8"));
  assert.equal(entry[0], "deno");
  assert.equal(entry.at(-1), "src/cli.ts");
  assert.ok(entry.includes("--unstable-net"));
});

for (const overlay of OVERLAYS) {
  test(`kubectl kustomize renders the ${overlay} overlay`, { skip: noKubectl }, () => {
    const kinds = render(overlay).map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      "Namespace/gossip-kv",
      "PodDisruptionBudget/gossip-kv",
      "Service/gossip-kv-gossip",
      "Service/gossip-kv-http",
      "StatefulSet/gossip-kv",
    ]);
  });

  test(`every object of the ${overlay} overlay validates against the Kubernetes API schemas`, {
    skip: noKubectl,
  }, () => {
    assert.deepEqual(validateObjects(render(overlay)), []);
  });

  test(`the ${overlay} manifests agree with the image, each other and the overlay's README`, {
    skip: noKubectl,
  }, () => {
    assert.deepEqual(checkManifests(render(overlay), overlay), []);
  });

  test(`the ${overlay} args, env, ports, probes and key path agree with the node command's flags`, {
    skip: noKubectl,
  }, () => {
    const parse = (args: string[], env: Record<string, string>) =>
      toSettings(parseFlags(args, env));
    assert.deepEqual(checkNodeAgreement(render(overlay), parse), []);
  });
}

test("schema validation catches a mistyped field", { skip: noKubectl }, () => {
  const objects = render("local");
  const sts = objects.find((o) => o.kind === "StatefulSet") as unknown as {
    spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } };
  };
  const port = sts.spec.template.spec.containers[0]!.ports[0]!;
  port.containerPort = "7946";
  const problems = validateObjects(objects);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /StatefulSet\/gossip-kv: .*containerPort must be integer/);
});

test("the consistency checks catch a probe on a wrong route and a port mismatch", {
  skip: noKubectl,
}, () => {
  const objects = render("local");
  const sts = objects.find((o) => o.kind === "StatefulSet") as unknown as {
    spec: {
      template: {
        spec: { containers: { args: string[]; readinessProbe: { httpGet: { path: string } } }[] };
      };
    };
  };
  const c = sts.spec.template.spec.containers[0]!;
  c.readinessProbe.httpGet.path = "/ready";
  c.args = c.args.map((a) => (a === "--port=7946" ? "--port=7947" : a));
  const problems = checkNodeAgreement(objects).join("\n");
  assert.match(problems, /readiness probe on \/ready: not a route/);
  assert.match(problems, /--port 7947 ≠ container port gossip 7946/);
});

test("the Secrets that secrets.sh makes are valid and are what the pods mount", {
  skip: noKubectl,
}, () => {
  assert.deepEqual(checkSecrets(renderSecrets(kubectl)), []);
});

test("a pod's normalized args and env are what the node command will parse", {
  skip: noKubectl,
}, () => {
  const inv = memberInvocation(render("aws"), {
    name: "gossip-kv-2",
    ip: "10.0.3.4",
    secrets: { "gossip-kv-http-token/token": "s3cret" },
  });
  const { args, env } = nodeFlagInput(inv);
  assert.ok(args.includes("--id=gossip-kv-2"));
  assert.ok(args.includes("--advertise=10.0.3.4:7946"));
  assert.ok(args.includes("--seeds=gossip-kv-gossip.gossip-kv.svc.cluster.local"));
  assert.ok(args.includes("--key-file=/etc/gossip-kv/keys/cluster.keys"));
  assert.equal(env.GOSSIP_KV_HTTP_TOKEN, "s3cret");
  assert.deepEqual(inv.ports, {
    gossip: { containerPort: 7946, protocol: "UDP" },
    http: { containerPort: 8080, protocol: "TCP" },
  });
  assert.deepEqual(inv.probes.map((p) => `${p.kind} ${p.path}:${p.port}`), [
    "startup /healthz:8080",
    "readiness /healthz:8080",
    "liveness /healthz:8080",
  ]);
  assert.deepEqual(inv.keyMount, {
    mountPath: "/etc/gossip-kv/keys",
    secretName: "gossip-kv-cluster-key",
    files: { "cluster.keys": "cluster.keys" },
  });
});

test("a pod's container maps onto this checkout as a local process", { skip: noKubectl }, () => {
  const inv = memberInvocation(render("local"), { name: "gossip-kv-1", ip: "10.213.0.11" });
  const launch = memberLaunch(inv);
  assert.equal(launch.cwd, ROOT);
  assert.match(launch.file, /deno$/);
  assert.deepEqual(launch.args.slice(0, 2), ["run", "--cached-only"]);
  assert.deepEqual(launch.args.slice(launch.args.indexOf("src/cli.ts") + 1), inv.args);
  assert.equal(launch.env.POD_NAME, "gossip-kv-1");
  assert.ok(launch.env.PATH);
});

test(
  "netns_e2e.sh makes hosts on a bridge that resolve the service name",
  { skip: netnsSkip },
  () => {
    const res = spawnSync("bash", [join(ROOT, "deployment", "netns_e2e.sh"), "selftest"], {
      encoding: "utf8",
    });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /netns selftest: 3 hosts/);
  },
);

test(
  "three netns hosts run the rendered pods' node command: one cluster, a write read on every member, exit 0 on SIGTERM",
  {
    skip: netnsSkip,
    timeout: 180_000,
  },
  async () => {
    const run = await runNetnsCluster(render("local"), 3);
    const ids = ["gossip-kv-0", "gossip-kv-1", "gossip-kv-2"];
    assert.deepEqual(run.members.map((m) => m.id), ids);
    assert.deepEqual(run.members.map((m) => m.ip), ["10.213.0.10", "10.213.0.11", "10.213.0.12"]);
    assert.deepEqual(netnsProblems(run), []);
    for (const m of run.members) {
      // The seed name resolved to the three hosts, and the key file at the mount path was read.
      assert.match(m.log, /seeds 10\.213\.0\.10:7946,10\.213\.0\.11:7946,10\.213\.0\.12:7946/);
      assert.match(m.log, /encrypted \(1 key, primary [0-9a-f]{12}\)/);
      assert.match(m.log, /Member gossip-kv-\d left; bye/);
    }
  },
);
