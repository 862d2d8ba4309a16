"""Compiled contracts as contracts-abi writes them: {"contractName", "abi", "bytecode", ...}."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: Sequence[Mapping[str, Any]]
    bytecode: str | None = None

    @classmethod
    def load(cls, source: Artifact | Mapping[str, Any] | str | Path) -> Artifact:
        """From an Artifact, an artifact dict, or the path of its JSON file."""
        if isinstance(source, Artifact):
            return source
        if isinstance(source, str | Path):
            path = Path(source)
            data = json.loads(path.read_text(encoding="utf-8"))
            data.setdefault("contractName", path.stem)
        else:
            data = source
        bytecode = data.get("bytecode")
        if isinstance(bytecode, Mapping):  # Hardhat/solc nest it as {"object": "..."}
            bytecode = bytecode.get("object")
        if bytecode and not str(bytecode).startswith("0x"):
            bytecode = "0x" + bytecode
        return cls(
            name=str(data.get("contractName", "")), abi=data["abi"], bytecode=bytecode or None
        )

    @property
    def constructor_inputs(self) -> list[str]:
        for item in self.abi:
            if item.get("type") == "constructor":
                return [abi_type(i) for i in item.get("inputs", [])]
        return []


def abi_type(item: Mapping[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in item.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind
