// The Kubernetes objects the stack applies: the `aws` kustomize overlay
// (deployment/k8s/overlays/aws), rendered at synth time, with the member image pointed at the
// stack's ECR repository. Keeping the overlay the single source means the CDK app, plain
// `kubectl apply -k` and the offline checks (deployment/check.ts) all deploy the same objects.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

/** A Kubernetes object as rendered by kustomize. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [field: string]: unknown };
  [field: string]: unknown;
}

/** deployment/k8s/overlays/aws */
export const AWS_OVERLAY: string = fileURLToPath(
  new URL("../../k8s/overlays/aws", import.meta.url),
);

/** Parses a multi-document YAML stream (empty documents dropped). */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new SyntaxError(`Bad YAML: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) out.push(value);
  }
  return out;
}

/**
 * The objects to apply: from `file` (YAML rendered beforehand, e.g. `kubectl kustomize
 * deployment/k8s/overlays/aws > aws.yaml`) when given, else `kubectl kustomize` of the aws
 * overlay, run now ($KUBECTL or `kubectl` on PATH; it works offline).
 */
export function loadManifests(file?: string): K8sObject[] {
  if (file) return parseManifests(readFileSync(file, "utf8"));
  const kubectl = process.env.KUBECTL || "kubectl";
  let text: string;
  try {
    text = execFileSync(kubectl, ["kustomize", AWS_OVERLAY], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    throw new Error(
      `Cannot render ${AWS_OVERLAY} with ${kubectl} (${(err as Error).message.split("\n")[0]}); ` +
        "install kubectl or pass -c manifests=<rendered.yaml>",
    );
  }
  return parseManifests(text);
}

/**
 * A copy of `objects` where every container named `container` of every StatefulSet runs
 * `image`. Throws if there is none: an overlay that renamed the container would otherwise
 * deploy the placeholder image.
 */
export function withImage(
  objects: readonly K8sObject[],
  container: string,
  image: string,
): K8sObject[] {
  const copy = structuredClone(objects) as K8sObject[];
  let found = 0;
  for (const obj of copy) {
    if (obj.kind !== "StatefulSet") continue;
    const spec = obj.spec as {
      template?: { spec?: { containers?: { name: string; image?: string }[] } };
    };
    for (const c of spec.template?.spec?.containers ?? []) {
      if (c.name === container) {
        c.image = image;
        found++;
      }
    }
  }
  if (!found) throw new Error(`No StatefulSet container named ${container} in the manifests`);
  return copy;
}
