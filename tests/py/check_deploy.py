"""Checks the Kubernetes manifests under deploy/k8s hang together (PyYAML, from moto's extras).

Usage:
  check_deploy.py DEPLOY_DIR

Fails (exit 1, the reason on stderr) when a manifest does not parse or a reference inside it
dangles; otherwise prints {"hubcap_env": [...], "args": {"CronJob": [...], "Deployment": [...]}}:
every HUBCAP_* variable the manifests and the Secret set, and each workload's container args,
for the Rust test to check against `hubcap run --help`.
"""
import glob
import json
import os
import sys

import yaml


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def main(root):
    docs = []
    for path in sorted(glob.glob(os.path.join(root, "k8s", "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if not (d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name")):
                    fail(f"{path}: a document without apiVersion, kind or metadata.name")
                docs.append((path, d))
    secrets = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Secret"}
    env, args = set(), {}
    for path, d in docs:
        if d["kind"] == "Secret":
            env.update(k for k in d.get("stringData", {}) if k.startswith("HUBCAP_"))
            continue
        if d["kind"] == "CronJob":
            pod = d["spec"]["jobTemplate"]["spec"]["template"]
        elif d["kind"] == "Deployment":
            pod = d["spec"]["template"]
            labels = pod["metadata"]["labels"]
            for k, v in d["spec"]["selector"]["matchLabels"].items():
                if labels.get(k) != v:
                    fail(f"{path}: selector {k}={v} does not match the pod labels")
        else:
            fail(f"{path}: unexpected kind {d['kind']}")
        spec = pod["spec"]
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            fail(f"{path}: the pod may run as root")
        for c in spec["containers"]:
            args[d["kind"]] = c.get("args", [])
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in ports:
                    fail(f"{path}: {probe} uses port {port!r}, not a named container port")
            for ref in c.get("envFrom", []):
                name = ref.get("secretRef", {}).get("name")
                if name is not None and name not in secrets:
                    fail(f"{path}: envFrom names Secret {name!r}, which no manifest defines")
            env.update(e["name"] for e in c.get("env", []) if e["name"].startswith("HUBCAP_"))
    json.dump({"hubcap_env": sorted(env), "args": args}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
