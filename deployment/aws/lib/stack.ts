// Gossip KV on EKS: a VPC, an EKS cluster with one managed node group, the ECR repository of
// the member image, and the `aws` kustomize overlay applied to the cluster.
import { CfnOutput, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecr from "aws-cdk-lib/aws-ecr";
import * as eks from "aws-cdk-lib/aws-eks";
import * as iam from "aws-cdk-lib/aws-iam";
import { KubectlV35Layer } from "@aws-cdk/lambda-layer-kubectl-v35";
import type { Construct } from "constructs";
import { type K8sObject, loadManifests, withImage } from "./manifests.ts";

/** Parameters of {@link GossipKvStack}; the app reads them from CDK context (bin/app.ts). */
export interface GossipKvStackProps extends StackProps {
  /** Worker nodes of the managed node group. @default 3 */
  readonly nodeCount?: number;
  /** EC2 instance type of the nodes; arm64 types (t4g, m7g...) get the arm64 AMI. @default "t3.medium" */
  readonly instanceType?: string;
  /** Tag of the member image in the ECR repository. @default "0.1.0" */
  readonly imageTag?: string;
  /**
   * CIDR blocks allowed to reach the cluster's public API endpoint (kubectl from a laptop).
   * @default anywhere (0.0.0.0/0); the nodes always use the private endpoint
   */
  readonly apiAllowedCidrs?: readonly string[];
  /** The Kubernetes objects to apply. @default the aws overlay, rendered by kubectl kustomize */
  readonly manifests?: readonly K8sObject[];
}

/** The defaults of {@link GossipKvStackProps}. */
export const DEFAULTS = { nodeCount: 3, instanceType: "t3.medium", imageTag: "0.1.0" } as const;
/** Kubernetes version of the cluster; the kubectl layer above must match it. */
export const KUBERNETES_VERSION: eks.KubernetesVersion = eks.KubernetesVersion.V1_35;

/** VPC + EKS + managed node group + ECR + the Gossip KV StatefulSet and Services. */
export class GossipKvStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly cluster: eks.Cluster;
  readonly nodegroup: eks.Nodegroup;
  readonly repository: ecr.Repository;

  constructor(scope: Construct, id: string, props: GossipKvStackProps = {}) {
    super(scope, id, props);
    const nodeCount = props.nodeCount ?? DEFAULTS.nodeCount;
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 50) {
      throw new RangeError(`nodeCount must be an integer from 1 to 50, got ${nodeCount}`);
    }
    const instanceType = new ec2.InstanceType(props.instanceType ?? DEFAULTS.instanceType);
    const imageTag = props.imageTag ?? DEFAULTS.imageTag;
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(imageTag)) {
      throw new TypeError(`imageTag ${JSON.stringify(imageTag)} is not a valid image tag`);
    }

    // Two AZs, private subnets for the nodes, one NAT gateway (the nodes pull from ECR and
    // reach the EKS API through it): the cheapest layout EKS accepts.
    this.vpc = new ec2.Vpc(this, "Vpc", {
      maxAzs: 2,
      natGateways: 1,
      subnetConfiguration: [
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "nodes", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
    });

    this.repository = new ecr.Repository(this, "Images", {
      repositoryName: "gossip-kv",
      imageScanOnPush: true,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      lifecycleRules: [{ description: "keep the last 10 images", maxImageCount: 10 }],
      // `cdk destroy` removes the repository with its images: nothing is left to pay for.
      removalPolicy: RemovalPolicy.DESTROY,
      emptyOnDelete: true,
    });

    // The role `aws eks update-kubeconfig --role-arn` assumes for kubectl (the stack outputs the
    // whole command). Any principal of this account allowed to assume it is cluster admin.
    const adminRole = new iam.Role(this, "ClusterAdmin", {
      assumedBy: new iam.AccountRootPrincipal(),
      description: "kubectl access (system:masters) to the Gossip KV EKS cluster",
    });

    this.cluster = new eks.Cluster(this, "Cluster", {
      version: KUBERNETES_VERSION,
      kubectlLayer: new KubectlV35Layer(this, "KubectlLayer"),
      vpc: this.vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      defaultCapacity: 0, // the managed node group below instead
      mastersRole: adminRole,
      endpointAccess: props.apiAllowedCidrs?.length
        ? eks.EndpointAccess.PUBLIC_AND_PRIVATE.onlyFrom(...props.apiAllowedCidrs)
        : eks.EndpointAccess.PUBLIC_AND_PRIVATE,
      outputClusterName: true,
    });

    const arm = instanceType.architecture === ec2.InstanceArchitecture.ARM_64;
    this.nodegroup = this.cluster.addNodegroupCapacity("Members", {
      instanceTypes: [instanceType],
      amiType: arm
        ? eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
        : eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
      minSize: nodeCount,
      desiredSize: nodeCount,
      maxSize: nodeCount * 2,
      diskSize: 20,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });
    this.repository.grantPull(this.nodegroup.role);

    // The aws overlay, image pointed at this repository. The two Secrets are not here on
    // purpose: their values would land in the CloudFormation template. secrets.sh makes them.
    const image = `${this.repository.repositoryUri}:${imageTag}`;
    const objects = withImage(props.manifests ?? loadManifests(), "gossip-kv", image);
    const manifest = this.cluster.addManifest("GossipKv", ...objects);
    manifest.node.addDependency(this.nodegroup);

    new CfnOutput(this, "RepositoryUri", { value: this.repository.repositoryUri });
    new CfnOutput(this, "Image", { value: image });
    new CfnOutput(this, "Region", { value: this.region });
  }
}
