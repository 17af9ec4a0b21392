"""Validate docker-compose.yml against the vendored compose-spec JSON schema.

Usage: python .ci/check_compose.py [COMPOSE_FILE ...]   (default: docker-compose.yml)

Besides the schema (.ci/compose-spec.json, see .ci/README.md), a few cross-references that the
schema cannot express and that ``docker compose config`` would reject are checked: duplicate
YAML keys, ``depends_on`` targets, ``service_healthy`` targets without a healthcheck, and
secrets, configs, named volumes and networks used by a service but not declared at the top
level. Exit status 0 when every file is valid, 1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / ".ci" / "compose-spec.json"
# Where .ci/compose-spec.json was copied from (keep in step with .ci/README.md).
SCHEMA_SOURCE = "npm dclint 3.1.0"


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys, as the Compose loader does."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_schema() -> tuple[dict[str, Any], str]:
    raw = SCHEMA_PATH.read_bytes()
    schema: dict[str, Any] = json.loads(raw)
    return schema, hashlib.sha256(raw).hexdigest()[:12]


def json_path(parts: Iterator[Any] | Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return path.lstrip(".") or "<root>"


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for sub in error.context or []:
        yield from _leaves(sub)


def describe(error: ValidationError) -> str:
    """One line per error; for oneOf/anyOf, the complaint that reaches deepest into the file."""
    closest = max(_leaves(error), key=lambda e: len(e.absolute_path))
    return f"{json_path(closest.absolute_path)}: {closest.message}"


def _names(value: Any) -> list[str]:
    """Keys of a mapping, or the items of a list (the two forms Compose accepts)."""
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str)]
    return []


def _uses(value: Any, key: str = "source") -> list[str]:
    """Names used by a service's secrets/configs list (short strings or long mappings)."""
    names: list[str] = []
    for item in value or []:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get(key), str):
            names.append(item[key])
    return names


def _named_volumes(value: Any) -> list[str]:
    names: list[str] = []
    for item in value or []:
        if isinstance(item, str):
            source = item.split(":", 1)[0] if ":" in item else ""
            if source and not source.startswith(("/", ".", "~", "$")):
                names.append(source)
        elif isinstance(item, dict) and item.get("type", "volume") == "volume":
            long_source = item.get("source")
            if isinstance(long_source, str) and long_source:
                names.append(long_source)
    return names


def cross_reference_errors(doc: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    services: dict[str, Any] = doc.get("services") or {}
    declared = {
        kind: set(_names(doc.get(kind))) for kind in ("secrets", "configs", "volumes", "networks")
    }
    declared["networks"].add("default")
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        depends_on = service.get("depends_on") or {}
        for target in _names(depends_on):
            if target not in services:
                errors.append(f"services.{name}.depends_on: unknown service {target!r}")
                continue
            condition = (
                depends_on[target].get("condition") if isinstance(depends_on, dict) else None
            )
            healthcheck = services[target].get("healthcheck") or {}
            if condition == "service_healthy" and (
                not healthcheck or healthcheck.get("disable") is True
            ):
                errors.append(
                    f"services.{name}.depends_on.{target}: condition service_healthy but "
                    f"service {target!r} has no healthcheck"
                )
        for kind in ("secrets", "configs"):
            for used in _uses(service.get(kind)):
                if used not in declared[kind]:
                    errors.append(f"services.{name}.{kind}: {used!r} is not declared in {kind}")
        for used in _named_volumes(service.get("volumes")):
            if used not in declared["volumes"]:
                errors.append(f"services.{name}.volumes: named volume {used!r} is not declared")
        for used in _names(service.get("networks")):
            if used not in declared["networks"]:
                errors.append(f"services.{name}.networks: network {used!r} is not declared")
    return errors


def check(path: Path, schema: dict[str, Any]) -> list[str]:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        return [f"cannot load: {exc}"]
    if not isinstance(doc, dict):
        return ["the top level must be a mapping"]
    validator = Draft7Validator(schema)
    errors = [
        describe(error)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]
    return errors + cross_reference_errors(doc)


def main(argv: list[str]) -> int:
    schema, digest = load_schema()
    # The compose-spec schema is draft-07; its "$schema" URI is not one jsonschema recognises.
    Draft7Validator.check_schema(schema)
    files = [Path(arg) for arg in argv] or [ROOT / "docker-compose.yml"]
    failed = False
    for path in files:
        shown = path.name if path.parent == ROOT else str(path)
        errors = check(path, schema)
        if errors:
            failed = True
            print(f"{shown}: INVALID against compose-spec ({SCHEMA_SOURCE}, sha256 {digest})")
            for error in errors:
                print(f"  - {error}")
        else:
            print(f"{shown}: valid against compose-spec ({SCHEMA_SOURCE}, sha256 {digest})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
