"""The documentation site: its generated references list what the code defines, the README stays
short and keeps CI's test command, and every tutorial's blocks marked `<!-- run -->` run as
written (`mkdocs build --strict` itself runs in .ci/run)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = ROOT / "docs"
RUN_MARK = "<!-- run -->"
FENCE = re.compile(r'^```(\w+)(?:\s+title="([^"]+)")?\s*$')


def gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schema_keys(schema: dict, defs: dict, prefix: str = "") -> set[str]:
    """Every dotted key pydantic's JSON schema accepts, read independently of the generator."""
    keys = set()
    for name, prop in schema.get("properties", {}).items():
        key = prefix + name
        keys.add(key)
        refs = [prop, *prop.get("anyOf", []), prop.get("items", {})]
        for ref in refs:
            target = ref.get("$ref") or ref.get("items", {}).get("$ref")
            if target:
                nested = "[]." if prop.get("type") == "array" or "items" in ref else "."
                sub = defs[target.rsplit("/", 1)[1]]
                keys |= schema_keys(sub, defs, key + nested)
    return keys


def test_the_config_reference_lists_every_field_of_the_schema():
    from orchestrator.config import ExperimentConfig

    schema = ExperimentConfig.model_json_schema()
    expected = schema_keys(schema, schema.get("$defs", {}))
    page = gen_reference().config_page()
    listed = set(re.findall(r"^\| `([^`]+)` \|", page, flags=re.M))
    assert expected == listed, (expected - listed, listed - expected)
    assert {"resources.gpu", "warm_start.top_k", "objectives[].mode"} <= listed


def test_every_config_field_has_a_meaning():
    fields = gen_reference().config_fields()
    undescribed = [key for key, field, _ in fields if not field.description]
    assert not undescribed, f"give these fields a Field(description=...): {undescribed}"


def test_the_other_references_list_what_the_code_defines():
    from orchestrator.core import tags
    from orchestrator.schedulers import SCHEDULERS
    from orchestrator.searchers import STRATEGIES
    from search_spaces import SEARCH_SPACES
    from trainables import TRAINABLES

    gen = gen_reference()
    registries = gen.registries_page()
    for name in [*STRATEGIES, *SCHEDULERS, *SEARCH_SPACES, *TRAINABLES]:
        assert f"### `{name}`" in registries, name
    assert "`population_size`" in registries and "`grace_period`" in registries
    tag_page = gen.tags_page()
    values = [v for v in vars(tags).values() if isinstance(v, str) and v.startswith("nasorch.")]
    assert values and all(f"`{v}`" in tag_page for v in values)
    cli = gen.cli_page()
    for command in ("run", "resume", "ui", "check", "search", "bench", "simulate", "compare"):
        assert f"## `nasorch {command}`" in cli, command
    assert "--warm-start" in cli and "--source" in cli  # arguments of both kinds of command


def test_version_comes_from_the_package(capsys):
    from importlib.metadata import version

    from orchestrator.commands.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"nasorch {version('nasorch')}"


def test_readme_is_short_and_keeps_ci_test_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[dev]" && pytest -q' in readme and "pytest -q\n" in ci
    assert 'pip install -e ".[docs]" && mkdocs serve' in readme
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_every_image_the_docs_show_exists():
    missing = []
    for page in DOCS.rglob("*.md"):
        for src in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            if not (page.parent / src).resolve().is_file():
                missing.append(f"{page.relative_to(ROOT)}: {src}")
    assert not missing


def runnable_blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """(language, file name or None, text) of each fenced block right after `<!-- run -->`."""
    lines, blocks = page.read_text().splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() != RUN_MARK:
            continue
        match = FENCE.match(lines[i + 1])
        assert match, f"{page.name}:{i + 2}: {RUN_MARK} must be followed by a fenced block"
        end = lines.index("```", i + 2)
        blocks.append((match[1], match[2], "\n".join(lines[i + 2 : end]) + "\n"))
    return blocks


TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))


def test_every_tutorial_runs_in_ci_or_names_the_test_that_runs_it():
    for page in TUTORIALS:
        text = page.read_text()
        assert runnable_blocks(page) or "tests/test_rehearsal.py" in text, page.name


@pytest.mark.integration
@pytest.mark.parametrize("page", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_blocks_run_as_written(page, tmp_path):
    """Each block in order, in an empty folder beside a copy of examples/: a block titled with
    a file name is written to it, bash and python blocks run and must succeed."""
    blocks = runnable_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name}: run by tests/test_rehearsal.py")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(ROOT))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `nasorch`
    for language, name, text in blocks:
        if name:
            (tmp_path / name).write_text(text)
            continue
        cmd = {"bash": ["bash", "-euo", "pipefail", "-c", text], "python": [sys.executable]}
        assert language in cmd, f"{page.name}: cannot run a {language} block"
        done = subprocess.run(
            cmd[language],
            input=text if language == "python" else None,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{page.name}:\n{text}\n{done.stdout}\n{done.stderr}"
