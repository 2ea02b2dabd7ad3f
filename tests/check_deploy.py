#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/ against the Dockerfile and the
daemon, without a cluster.

usage: check_deploy.py SEQMT_BINARY SOURCE_DIR

Every manifest must parse as YAML and be listed in kustomization.yaml. The
container port must equal the Dockerfile's EXPOSE, the --port of its
ENTRYPOINT and the default in `seqmt serve --help`. The probes must use
/health and /ready, which that help lists, on that port. The models volume
must be mounted at the Dockerfile's VOLUME, and SEQMT_MODEL must be the
Dockerfile's model or a file on that volume. The container's args must be
accepted by `seqmt serve`, the pod must run as the Dockerfile's USER, and
the Service and the HorizontalPodAutoscaler must point at the Deployment.
The memory request must cover the peak measured in deploy/README.md.

Prints one "ok:" or "FAIL:" line per check and "N passed, N failed" at the
end; the exit status is 1 when any check failed.
"""
import glob
import os
import re
import shlex
import subprocess
import sys

import yaml


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, message, detail=""):
        if condition:
            self.passed += 1
            print("ok: " + message)
        else:
            self.failed += 1
            print("FAIL: " + message + (" (" + str(detail) + ")" if detail else ""))
        return condition


def read_dockerfile(path):
    """Returns the runtime stage's EXPOSE, VOLUME, ENV SEQMT_MODEL, USER,
    ENTRYPOINT (as a list) and HEALTHCHECK command."""
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    runtime = text.split("\nFROM ")[-1]  # the last stage
    facts = {}
    for line in runtime.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "EXPOSE":
            facts["port"] = int(rest.split("/")[0])
        elif word == "VOLUME":
            facts["volume"] = rest.strip().strip('[]"')
        elif word == "ENV" and rest.startswith("SEQMT_MODEL="):
            facts["model"] = rest.split("=", 1)[1].strip()
        elif word == "USER":
            facts["user"] = int(rest.split(":")[0])
        elif word == "ENTRYPOINT":
            facts["entrypoint"] = yaml.safe_load(rest)
        elif word == "HEALTHCHECK":
            facts["healthcheck"] = rest
    return facts


def flag_value(args, flag):
    """Returns the value after flag in an argument list, or None."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def memory_mib(quantity):
    """Converts a Kubernetes memory quantity such as 256Mi or 1Gi to MiB."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20,
             "G": 1e9 / 2**20}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    if not match:
        raise ValueError("cannot read memory quantity %r" % quantity)
    number = float(match.group(1))
    return number * units[match.group(2)] if match.group(2) else number / 2**20


def resolve_port(port, container):
    """Returns the number of a probe or Service port given by name or number."""
    if isinstance(port, int):
        return port
    for entry in container.get("ports", []):
        if entry.get("name") == port:
            return entry["containerPort"]
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    binary, source = sys.argv[1], sys.argv[2]
    deploy = os.path.join(source, "deploy")
    results = Results()

    # Step 1: parse every manifest; kustomization.yaml lists them all.
    documents = []
    files = sorted(glob.glob(os.path.join(deploy, "*.yaml")))
    for path in files:
        try:
            with open(path) as f:
                documents += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
            results.check(True, os.path.basename(path) + " parses as YAML")
        except yaml.YAMLError as e:
            results.check(False, os.path.basename(path) + " parses as YAML", e)
    by_kind = {}
    for name, document in documents:
        by_kind.setdefault(document.get("kind"), []).append(document)
    kustomization = (by_kind.get("Kustomization") or [{}])[0]
    listed = set(kustomization.get("resources", []))
    manifests = {os.path.basename(p) for p in files} - {"kustomization.yaml"}
    results.check(listed == manifests, "kustomization.yaml lists every manifest",
                  "listed %s, present %s" % (sorted(listed), sorted(manifests)))
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler"):
        results.check(len(by_kind.get(kind, [])) == 1, "exactly one " + kind)
    if results.failed:
        print("%d passed, %d failed" % (results.passed, results.failed))
        return 1

    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == "seqmt"), None)
    if not results.check(container is not None, "the Deployment has a container named seqmt"):
        print("%d passed, %d failed" % (results.passed, results.failed))
        return 1
    docker = read_dockerfile(os.path.join(source, "Dockerfile"))
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout

    # Step 2: one port everywhere.
    ports = [p["containerPort"] for p in container.get("ports", [])]
    entry_port = flag_value(docker.get("entrypoint", []), "--port")
    match = re.search(r"--port N\s+TCP port \((\d+)\)", help_text)
    help_port = int(match.group(1)) if match else None
    results.check(ports == [docker.get("port")], "container port equals EXPOSE",
                  "%s vs %s" % (ports, docker.get("port")))
    results.check(entry_port is not None and int(entry_port) == docker.get("port"),
                  "ENTRYPOINT's --port equals EXPOSE", entry_port)
    results.check(help_port == docker.get("port"), "seqmt serve's default port equals EXPOSE",
                  help_port)
    results.check("127.0.0.1:%d/health" % docker.get("port") in docker.get("healthcheck", ""),
                  "the Dockerfile's HEALTHCHECK uses /health on that port")

    # Step 3: probes on the daemon's health routes.
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        get = container.get(probe, {}).get("httpGet", {})
        results.check(get.get("path") == path, probe + " uses " + path, get.get("path"))
        results.check(resolve_port(get.get("port"), container) == docker.get("port"),
                      probe + " uses the container port", get.get("port"))
        results.check("GET " + path in help_text, "seqmt serve --help lists GET " + path)

    # Step 4: the model path and its volume.
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volume = docker.get("volume")
    model = env.get("SEQMT_MODEL")
    results.check(volume in mounts.values(), "a volume is mounted at the Dockerfile's VOLUME",
                  "%s not in %s" % (volume, sorted(mounts.values())))
    mounted_names = {v["name"] for v in pod.get("volumes", [])}
    results.check(set(mounts) <= mounted_names, "every volumeMount names a pod volume",
                  sorted(set(mounts) - mounted_names))
    results.check(model == docker.get("model") or (model or "").startswith(volume + "/"),
                  "SEQMT_MODEL is the image's model or a file on " + str(volume), model)
    results.check("$SEQMT_MODEL" in help_text, "seqmt serve reads SEQMT_MODEL")
    results.check(flag_value(container.get("args", []), "--model") is None,
                  "the args leave the model to SEQMT_MODEL")

    # Step 5: the args are valid flags of seqmt serve. The daemon parses
    # flags in order, so a bad flag or value fails before --help.
    args = [str(a) for a in container.get("args", [])]
    check = subprocess.run([binary, "serve"] + args + ["--help"], capture_output=True,
                           text=True, timeout=30)
    results.check(check.returncode == 0, "seqmt serve accepts the args: " + shlex.join(args),
                  check.stderr.strip())
    grace = int(flag_value(args, "--grace-period") or 30)
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
    pre_stop_seconds = int(pre_stop.get("command", ["sleep", "0"])[-1])
    results.check(pod.get("terminationGracePeriodSeconds", 30) > grace + pre_stop_seconds,
                  "terminationGracePeriodSeconds exceeds preStop plus --grace-period",
                  "%s <= %d + %d" % (pod.get("terminationGracePeriodSeconds", 30),
                                     pre_stop_seconds, grace))

    # Step 6: user, Service and autoscaler.
    user = pod.get("securityContext", {}).get("runAsUser")
    results.check(user == docker.get("user"), "the pod runs as the Dockerfile's USER", user)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    results.check(selector.items() <= labels.items(), "the Deployment selects its pods")
    service = by_kind["Service"][0]
    results.check(service["spec"]["selector"].items() <= labels.items(),
                  "the Service selects the pods")
    for entry in service["spec"]["ports"]:
        results.check(resolve_port(entry.get("targetPort"), container) == docker.get("port"),
                      "the Service's targetPort is the container port", entry.get("targetPort"))
    hpa = by_kind["HorizontalPodAutoscaler"][0]
    target = hpa["spec"]["scaleTargetRef"]
    results.check(target.get("kind") == "Deployment" and
                  target.get("name") == deployment["metadata"]["name"],
                  "the autoscaler scales the Deployment", target)
    metrics = [m["resource"]["name"] for m in hpa["spec"].get("metrics", [])
               if m.get("type") == "Resource"]
    results.check(metrics == ["cpu"], "the autoscaler follows CPU", metrics)
    results.check(hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"],
                  "minReplicas <= maxReplicas")

    # Step 7: resources cover the measured memory.
    resources = container.get("resources", {})
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    results.check("cpu" in requests, "a CPU request is set, which the autoscaler needs")
    with open(os.path.join(deploy, "README.md")) as f:
        measured = re.search(r"peak resident memory[^0-9]*(\d+) MiB", f.read(), re.IGNORECASE)
    results.check(measured is not None, "deploy/README.md states the peak resident memory")
    if measured and "memory" in requests and "memory" in limits:
        peak = int(measured.group(1))
        results.check(memory_mib(requests["memory"]) >= peak,
                      "the memory request covers the measured peak of %d MiB" % peak,
                      requests["memory"])
        results.check(memory_mib(limits["memory"]) >= memory_mib(requests["memory"]),
                      "the memory limit is at least the request")
    else:
        results.check(False, "memory request and limit are set", resources)

    print("%d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
