// Synthesizes the stack offline (no AWS account, no credentials, no network) and asserts its
// resources with aws-cdk-lib/assertions. Run: npm test (in deployment/aws).
import { test } from "node:test";
import assert from "node:assert/strict";
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { loadManifests, withImage } from "../lib/manifests.ts";
import { GossipKvStack, type GossipKvStackProps } from "../lib/stack.ts";

// Rendered once (kubectl kustomize of the aws overlay), shared by every synth.
const manifests = loadManifests();

function synth(props: GossipKvStackProps = {}): { stack: GossipKvStack; template: Template } {
  // No asset staging: the kubectl layer alone is a 30 MB zip, copied at every synth otherwise.
  const app = new App({ context: { "aws:cdk:disable-asset-staging": true } });
  const stack = new GossipKvStack(app, "GossipKv", { manifests, ...props });
  return { stack, template: Template.fromStack(stack) };
}

const defaults = synth({ env: { region: "eu-west-1" } });

/**
 * The Kubernetes objects of the stack's Gossip KV manifest resource. The manifest is a
 * CloudFormation Fn::Join of JSON text and intrinsics (the ECR repository URI); each intrinsic
 * becomes "{{<its JSON>}}" inside the strings.
 */
function gossipObjects(template: Template): Array<Record<string, unknown>> {
  const resources = template.findResources("Custom::AWSCDK-EKS-KubernetesResource");
  const found = Object.entries(resources).filter(([id]) => id.includes("GossipKv"));
  assert.equal(found.length, 1, "one Gossip KV manifest resource");
  const manifest = (found[0]![1] as { Properties: { Manifest: unknown } }).Properties.Manifest;
  const parts = typeof manifest === "string"
    ? [manifest]
    : (manifest as { "Fn::Join": [string, unknown[]] })["Fn::Join"][1];
  const text = parts
    .map((p) => (typeof p === "string" ? p : `{{${JSON.stringify(p).replaceAll('"', "'")}}}`))
    .join("");
  return JSON.parse(text) as Array<Record<string, unknown>>;
}

function memberImage(objects: Array<Record<string, unknown>>): string {
  const sts = objects.find((o) => o.kind === "StatefulSet") as {
    spec: { template: { spec: { containers: { name: string; image: string }[] } } };
  };
  return sts.spec.template.spec.containers.find((c) => c.name === "gossip-kv")!.image;
}

test("a VPC over two AZs with one NAT gateway and subnets tagged for internal load balancers", () => {
  const t = defaults.template;
  t.resourceCountIs("AWS::EC2::VPC", 1);
  t.resourceCountIs("AWS::EC2::NatGateway", 1);
  t.resourceCountIs("AWS::EC2::Subnet", 4);
  t.hasResourceProperties("AWS::EC2::Subnet", {
    Tags: Match.arrayWith([{ Key: "kubernetes.io/role/internal-elb", Value: "1" }]),
  });
});

test("an ECR repository for the member image, scanned, immutable tags, removed with the stack", () => {
  const t = defaults.template;
  t.resourceCountIs("AWS::ECR::Repository", 1);
  t.hasResource("AWS::ECR::Repository", {
    Properties: {
      RepositoryName: "gossip-kv",
      ImageScanningConfiguration: { ScanOnPush: true },
      ImageTagMutability: "IMMUTABLE",
    },
    DeletionPolicy: "Delete",
  });
});

test("an EKS cluster of Kubernetes 1.35 in the private subnets, with a kubectl admin role", () => {
  const t = defaults.template;
  t.resourceCountIs("Custom::AWSCDK-EKS-Cluster", 1);
  t.hasResourceProperties("Custom::AWSCDK-EKS-Cluster", {
    Config: Match.objectLike({
      version: "1.35",
      resourcesVpcConfig: Match.objectLike({
        endpointPublicAccess: true,
        endpointPrivateAccess: true,
      }),
    }),
  });
  t.resourceCountIs("AWS::Lambda::LayerVersion", 1); // kubectl for the manifest handler
  const outputs = Object.keys(t.findOutputs("*"));
  assert.ok(outputs.some((o) => o.startsWith("ClusterConfigCommand")), "update-kubeconfig output");
  for (const o of ["RepositoryUri", "Image", "Region"]) assert.ok(outputs.includes(o), o);
});

test("a managed node group of 3 t3.medium nodes on the x86_64 AL2023 AMI by default", () => {
  defaults.template.resourceCountIs("AWS::EKS::Nodegroup", 1);
  defaults.template.hasResourceProperties("AWS::EKS::Nodegroup", {
    InstanceTypes: ["t3.medium"],
    AmiType: "AL2023_x86_64_STANDARD",
    ScalingConfig: { MinSize: 3, DesiredSize: 3, MaxSize: 6 },
  });
  assert.equal(defaults.stack.region, "eu-west-1");
});

test("node count, instance type and region are parameters; arm64 types get the arm64 AMI", () => {
  const { stack, template } = synth({
    env: { region: "ap-southeast-2" },
    nodeCount: 5,
    instanceType: "t4g.large",
    imageTag: "abc123",
    apiAllowedCidrs: ["203.0.113.0/24"],
  });
  assert.equal(stack.region, "ap-southeast-2");
  template.hasResourceProperties("AWS::EKS::Nodegroup", {
    InstanceTypes: ["t4g.large"],
    AmiType: "AL2023_ARM_64_STANDARD",
    ScalingConfig: { MinSize: 5, DesiredSize: 5, MaxSize: 10 },
  });
  assert.match(memberImage(gossipObjects(template)), /:abc123$/);
  template.hasResourceProperties("Custom::AWSCDK-EKS-Cluster", {
    Config: Match.objectLike({
      resourcesVpcConfig: Match.objectLike({ publicAccessCidrs: ["203.0.113.0/24"] }),
    }),
  });
  assert.throws(() => synth({ nodeCount: 0 }), RangeError);
  assert.throws(() => synth({ imageTag: "no spaces" }), TypeError);
});

test("the aws overlay is applied, its image pointed at the stack's ECR repository", () => {
  const objects = gossipObjects(defaults.template);
  assert.deepEqual(objects.map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`), [
    "Namespace/gossip-kv",
    "Service/gossip-kv-gossip",
    "Service/gossip-kv-http",
    "StatefulSet/gossip-kv",
    "PodDisruptionBudget/gossip-kv",
  ]);
  const http = objects[2] as {
    metadata: { annotations: Record<string, string> };
    spec: { type: string };
  };
  assert.equal(http.spec.type, "LoadBalancer");
  assert.equal(
    http.metadata.annotations["service.beta.kubernetes.io/aws-load-balancer-internal"],
    "true",
  );
  const repo = Object.keys(defaults.template.findResources("AWS::ECR::Repository"))[0]!;
  const image = memberImage(objects);
  assert.ok(image.includes(`{'Ref':'${repo}'}`), `image ${image} is in the stack's repository`);
  assert.match(image, /\.dkr\.ecr\..*:0\.1\.0$/);
  assert.ok(!JSON.stringify(objects).includes("000000000000"), "the placeholder image is gone");
  assert.ok(!objects.some((o) => o.kind === "Secret"), "no Secret in the template");
});

test("withImage() refuses manifests without the member container", () => {
  const noMember = manifests.filter((o) => o.kind !== "StatefulSet");
  assert.throws(() => withImage(noMember, "gossip-kv", "x"), /No StatefulSet container/);
});
