"""The committed build is exactly what the sources compile to (what `make abi` writes)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT_KEYS = ["contractName", "abi", "bytecode", "deployedBytecode", "compiler"]


def test_every_artifact_has_the_agreed_shape():
    names = sorted(p.stem for p in (ROOT / "build").glob("*.json"))
    assert names == [
        "ArtistCoin",
        "ArtistCoinFactory",
        "DevUSD",
        "Lottery",
        "MasterShares",
        "MilestoneEscrow",
        "Pool",
        "RevenueDistributor",
        "Staking",
    ]
    for name in names:
        text = (ROOT / "build" / f"{name}.json").read_text()
        assert text.endswith("}\n")
        artifact = json.loads(text)
        assert list(artifact) == ARTIFACT_KEYS
        assert artifact["contractName"] == name
        assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 2
        assert artifact["compiler"]["settings"]["evmVersion"] == "cancun"
        assert artifact["compiler"]["settings"]["metadata"]["bytecodeHash"] == "none"


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs node and npm"
)
def test_committed_build_is_what_the_sources_compile_to(tmp_path):
    work = tmp_path / "contracts-abi"
    work.mkdir()
    for item in ("package.json", "package-lock.json"):
        shutil.copy2(ROOT / item, work / item)
    for folder in ("src", "scripts"):
        shutil.copytree(ROOT / folder, work / folder)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=240,
    )
    out = tmp_path / "build"
    subprocess.run(
        ["node", "scripts/build.mjs", str(out)],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=240,
    )
    committed = {p.name: p.read_bytes() for p in (ROOT / "build").glob("*.json")}
    rebuilt = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert sorted(rebuilt) == sorted(committed)
    for name, content in committed.items():
        assert rebuilt[name] == content, f"{name} differs from what src/ compiles to: run make abi"
