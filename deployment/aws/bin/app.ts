// The CDK app: one GossipKvStack, its parameters from CDK context (-c key=value or cdk.json):
//   region           AWS region                          default: $CDK_DEFAULT_REGION, us-east-1
//   nodeCount        worker nodes                        default: 3
//   instanceType     EC2 instance type of the nodes      default: t3.medium
//   imageTag         member image tag in ECR             default: 0.1.0
//   apiAllowedCidrs  CIDRs for the public API endpoint   default: anywhere (comma-separated)
//   manifests        pre-rendered aws overlay YAML       default: kubectl kustomize, run now
//   stackName        CloudFormation stack name           default: GossipKv
// e.g. npx cdk deploy -c region=eu-west-1 -c nodeCount=3 -c instanceType=t3.medium
import { App } from "aws-cdk-lib";
import { loadManifests } from "../lib/manifests.ts";
import { DEFAULTS, GossipKvStack } from "../lib/stack.ts";

const app = new App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return value === undefined || value === null || value === "" ? undefined : String(value);
};
const region = context("region") ?? process.env.CDK_DEFAULT_REGION ?? "us-east-1";
new GossipKvStack(app, context("stackName") ?? "GossipKv", {
  // The account comes from the CLI's credentials (cdk deploy); synth works without any.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region },
  description: "Gossip KV on EKS: VPC, EKS cluster, managed node group, ECR repository, members",
  nodeCount: Number(context("nodeCount") ?? DEFAULTS.nodeCount),
  instanceType: context("instanceType") ?? DEFAULTS.instanceType,
  imageTag: context("imageTag") ?? DEFAULTS.imageTag,
  apiAllowedCidrs: (context("apiAllowedCidrs") ?? "").split(",").map((c) => c.trim()).filter(
    Boolean,
  ),
  manifests: loadManifests(context("manifests")),
});
app.synth();
