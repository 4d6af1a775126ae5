"""The flows this deployment runs: the definitions shipped in `flows/definitions`, then the operator's own
from `FLOWS_DIR` (one of which may replace a shipped flow of the same name)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from flows.definition import DefinitionError, FlowDefinition, parse_definition

PACKAGED = "flows"


@dataclass(frozen=True)
class FlowCatalog:
    flows: Mapping[str, FlowDefinition]

    def __iter__(self) -> Iterator[FlowDefinition]:
        return iter(self.flows.values())

    def __contains__(self, name: object) -> bool:
        return name in self.flows

    def get(self, name: str) -> FlowDefinition | None:
        return self.flows.get(name)

    def __getitem__(self, name: str) -> FlowDefinition:
        return self.flows[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.flows)

    def triggered_by(self, event: str) -> tuple[FlowDefinition, ...]:
        return tuple(d for d in self if d.trigger.event == event)

    @classmethod
    def load(cls, flows_dir: str | None = None) -> FlowCatalog:
        """Every definition, validated; a DefinitionError lists the problems of every bad file."""
        found: dict[str, FlowDefinition] = {}
        problems: list[DefinitionError] = []
        folder = resources.files(PACKAGED) / "definitions"
        sources = [(f"flows/definitions/{f.name}", f.name, f.read_text(encoding="utf-8")) for f in _tomls(folder)]
        if flows_dir:
            for path in sorted(Path(flows_dir).glob("*.toml")):
                sources.append((str(path), path.name, path.read_text(encoding="utf-8")))
        for source, name, text in sources:
            try:
                definition = parse_definition(text, source, expected_name=name.removesuffix(".toml"))
            except DefinitionError as exc:
                problems.append(exc)
                continue
            found[definition.name] = definition  # FLOWS_DIR comes last: its flow replaces a shipped one
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise DefinitionError("flow definitions", [str(p) for p in problems])
        return cls(dict(sorted(found.items())))


def _tomls(folder: Traversable) -> list[Traversable]:
    return sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
