#!/usr/bin/env python3
"""Extract CloudNativePG CRD schemas into strict JSON Schemas for offline validation.

    python3 k8s/schemas/extract.py --ref v1.30.0 --commit <sha> CRD.yaml [CRD.yaml ...]

For each CustomResourceDefinition given, takes the openAPIV3Schema of its storage version and
writes k8s/schemas/<kind>-<group's first label>-<version>.json (cluster-postgresql-v1.json), the
names kubernetes-validate uses for built-in kinds.

One change is made to the upstream schema: every object schema that lists `properties` and says
nothing about `additionalProperties` gets `additionalProperties: false`. Kubernetes prunes
unknown fields of a structural schema silently, so a misspelt field would be dropped at apply
time without an error; here it fails validation instead. Objects marked
`x-kubernetes-preserve-unknown-fields: true` stay open (Kubernetes keeps their unknown fields),
and so do objects without `properties` (the root `metadata`, an embedded ObjectMeta), which the
API server validates itself. What cannot be checked offline: the CEL rules
(`x-kubernetes-validations`) and the operator's admission webhook.

Needs PyYAML (in the validation venv).
"""

import argparse
import json
import pathlib
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent


def strict(node):
    """Returns `node` with additionalProperties: false on every closed object schema."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields", False)
    ):
        out["additionalProperties"] = False
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="the upstream tag the CRDs come from")
    parser.add_argument("--commit", required=True, help="the upstream commit of that tag")
    parser.add_argument("crds", nargs="+", type=pathlib.Path)
    args = parser.parse_args()

    for path in args.crds:
        crd = yaml.safe_load(path.read_text())
        if crd.get("kind") != "CustomResourceDefinition":
            sys.exit(f"{path}: not a CustomResourceDefinition")
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$comment": (
                f"{kind} ({group}/{version['name']}) from CloudNativePG {args.ref} "
                f"(commit {args.commit}), config/crd/bases/{path.name}, Apache-2.0. "
                "Made strict by k8s/schemas/extract.py: additionalProperties false on every "
                "object with properties, except x-kubernetes-preserve-unknown-fields ones."
            ),
            **schema,
        }
        out = HERE / f"{kind.lower()}-{group.split('.')[0]}-{version['name']}.json"
        out.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n")
        print(f"wrote {out.relative_to(HERE.parent.parent)} ({kind} {group}/{version['name']})")


if __name__ == "__main__":
    main()
