"""Validates rendered Kubernetes objects against the vendored schemas in schemas/.

Kubernetes built-in kinds use kubeconform's standalone-strict JSON schemas; custom resources use
the CRDs' openAPIV3Schema made strict (unknown fields rejected, as the API server's structural
pruning would silently drop them). On top of the schemas it checks what they leave out but the
API server enforces: object names, label keys and values, container port names.
"""

import json
import os
import re

import jsonschema
import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(_HERE, "schemas")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load_yaml_documents(text):
    return [d for d in yaml.load_all(text, Loader=_LOADER) if d]


def _strict(node):
    """CRD structural schema -> JSON schema that rejects unknown fields."""
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _strict(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = _strict(value)
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue  # CEL rules and list/map hints: not JSON Schema
        else:
            out[key] = value
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


class SchemaSet:
    """All schemas under schemas/, keyed by (apiVersion, kind)."""

    def __init__(self, schema_dir=SCHEMA_DIR):
        self._validators = {}
        self._files = {}
        k8s_dir = os.path.join(schema_dir, "k8s")
        for name in sorted(os.listdir(k8s_dir)):
            path = os.path.join(k8s_dir, name)
            with open(path) as f:
                schema = json.load(f)
            gvk = schema.get("x-kubernetes-group-version-kind", [{}])[0]
            group, version, kind = gvk.get("group", ""), gvk.get("version"), gvk.get("kind")
            api_version = f"{group}/{version}" if group else version
            self._files[(api_version, kind)] = ("k8s", path, schema)
        crd_dir = os.path.join(schema_dir, "crds")
        for name in sorted(os.listdir(crd_dir)):
            path = os.path.join(crd_dir, name)
            with open(path) as f:
                crd = yaml.load(f, Loader=_LOADER)
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
                schema["properties"]["kind"] = {"const": kind}
                # metadata is checked by _check_metadata (the API server's ObjectMeta rules)
                schema["properties"]["metadata"] = {"type": "object"}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                self._files[(f"{group}/{version['name']}", kind)] = ("crd", path, schema)

    def kinds(self):
        return sorted(self._files)

    def source(self, api_version, kind):
        entry = self._files.get((api_version, kind))
        return entry[1] if entry else None

    def _validator(self, key):
        if key not in self._validators:
            _, _, schema = self._files[key]
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            if cls.__name__ in ("Draft3Validator",):
                cls = jsonschema.Draft7Validator
            self._validators[key] = cls(schema)
        return self._validators[key]

    def validate(self, obj):
        """Returns a list of error strings for one object (empty when valid)."""
        if not isinstance(obj, dict):
            return [f"not an object: {obj!r}"]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        name = (obj.get("metadata") or {}).get("name", "?")
        where = f"{kind} {name} ({api_version})"
        key = (api_version, kind)
        if key not in self._files:
            return [f"{where}: no vendored schema for this apiVersion/kind"]
        errors = []
        for error in sorted(self._validator(key).iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{where}: {path}: {error.message[:300]}")
        errors += [f"{where}: {e}" for e in _check_metadata(obj)]
        errors += [f"{where}: {e}" for e in _check_pods(obj)]
        return errors


def _check_metadata(obj):
    errors = []
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    kind = obj.get("kind")
    if kind == "Service":
        if not (_DNS_1035.match(name) and len(name) <= 63):
            errors.append(f"metadata.name {name!r} is not a DNS-1035 label (Service)")
    elif not (_DNS_SUBDOMAIN.match(name) and len(name) <= 253):
        errors.append(f"metadata.name {name!r} is not a DNS subdomain")
    if kind in ("Deployment", "InferenceService", "Job", "InferencePool") and len(name) > 63:
        errors.append(f"metadata.name {name!r} is longer than 63 characters")
    errors += _check_labels(meta.get("labels"), "metadata.labels")
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            errors.append(f"metadata.annotations[{key}] is not a string: {value!r}")
    return errors


def _check_labels(labels, where):
    errors = []
    for key, value in (labels or {}).items():
        prefix, _, label = key.rpartition("/")
        if prefix and not (_DNS_SUBDOMAIN.match(prefix) and len(prefix) <= 253):
            errors.append(f"{where}: bad label prefix in {key!r}")
        if not (_LABEL_NAME.match(label) and len(label) <= 63):
            errors.append(f"{where}: bad label name {key!r}")
        if not isinstance(value, str) or not (_LABEL_VALUE.match(value) and len(value) <= 63):
            errors.append(f"{where}: bad label value {key}={value!r}")
    return errors


def pod_specs(obj):
    """(path, PodSpec-like dict, template labels) of the pods an object creates."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "Job"):
        template = spec.get("template") or {}
        return [(f"{kind}.spec.template.spec", template.get("spec") or {},
                 (template.get("metadata") or {}).get("labels") or {})]
    if kind == "InferenceService":
        predictor = spec.get("predictor") or {}
        return [("InferenceService.spec.predictor", predictor, predictor.get("labels") or {})]
    return []


def _check_pods(obj):
    errors = []
    for where, pod, labels in pod_specs(obj):
        errors += _check_labels(labels, f"{where} labels")
        for container in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            cname = container.get("name", "?")
            if not (_DNS_LABEL.match(cname) and len(cname) <= 63):
                errors.append(f"{where}: container name {cname!r} is not a DNS label")
            for port in container.get("ports") or []:
                pname = port.get("name")
                if pname is not None and not (_PORT_NAME.match(pname) and len(pname) <= 15
                                              and re.search("[a-z]", pname)):
                    errors.append(f"{where}: container {cname} port name {pname!r} is not an IANA_SVC_NAME")
    return errors
