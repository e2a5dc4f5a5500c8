"""One CLI: the same option names and aliases in every command, plain help, --version, completion,
every profile error at once (one line each, with its YAML line), `planner init` and `planner schema`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.profile import load_profile

runner = CliRunner()
COMMAND = typer.main.get_command(app)
ALIASES = {"--gpu": {"-g"}, "--tensor-parallel-size": {"--tp", "-tp"}, "--profile": {"-p"}, "--model": {"-m"}}


def _commands() -> dict[str, object]:
    return dict(COMMAND.commands)  # type: ignore[attr-defined]


def test_shared_options_have_the_same_aliases_in_every_command() -> None:
    seen: dict[str, set[str]] = {}
    for name, cmd in _commands().items():
        for param in cmd.params:  # type: ignore[attr-defined]
            opts = set(param.opts) | set(param.secondary_opts)
            for long, aliases in ALIASES.items():
                if long in opts:
                    assert aliases <= opts, f"planner {name} {long} lacks {aliases - opts}"
                    seen.setdefault(long, set()).add(name)
    assert {"simulate", "compare", "perf", "size"} <= seen["--tensor-parallel-size"]
    assert {"simulate", "compare", "perf", "size"} <= seen["--gpu"]


@pytest.mark.parametrize("name", ["catalog", "size", "perf", "traffic", "simulate", "compare", "optimize", "init", "schema"])
def test_help_has_no_bool_metavars(name: str) -> None:
    res = runner.invoke(app, [name, "--help"])
    assert res.exit_code == 0 and "<bool>" not in res.output and "Usage: " in res.output


def test_planner_alone_prints_help_once_and_version_and_completion() -> None:
    res = runner.invoke(app, [])
    assert res.exit_code == 0 and res.output.count("Usage: ") == 1
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("planner ")
    assert "--show-completion" in runner.invoke(app, ["--help"]).output


def test_simulate_takes_tp_like_every_command(tmp_path: Path) -> None:
    for flag in ("--tp", "-tp", "--tensor-parallel-size"):
        res = runner.invoke(app, ["simulate", "-p", "steady.yaml", "-g", "h100-sxm", flag, "0"])
        assert res.exit_code == 2 and "No such option" not in res.output


def test_choices_are_validated_in_one_line() -> None:
    res = runner.invoke(app, ["simulate", "-p", "steady.yaml", "-g", "h100-sxm", "--router", "random"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "least_outstanding" in lines[0] and "Value error" not in lines[0]


def _bad_profile(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "model: llama-3.1-8b\n"                      # line 1: not a section
        "traffic:\n"
        "  arrivals:\n"
        "    process: poisson\n"
        "    rate_per_s: -1\n"                        # line 5
        "  sizes: {distribution: fixed, prompt_tokens: 100, output_tokens: 10}\n"
        "slo:\n"
        "  ttft_second: 2\n"                          # line 8: a typo (ttft_seconds then looks missing)
        "  tpot_seconds: 0.1\n"
        "candidates:\n"
        "  gpus: [h100-sxm]\n"
    )
    return path


def test_every_profile_error_at_once_with_its_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["traffic", "-p", str(_bad_profile(tmp_path))])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == ["line 1", "line 5", "line 8"]
    assert all(line.startswith("error: bad.yaml: line ") for line in lines)
    assert "model: must be a section" in lines[0] and "instance of" not in res.stderr
    assert "traffic.arrivals.rate_per_s: must be > 0" in lines[1]
    assert "slo.ttft_second: unknown key (did you mean 'ttft_seconds'?" in lines[2]


def test_a_single_error_stays_one_line(tmp_path: Path) -> None:
    path = _bad_profile(tmp_path)
    text = path.read_text().replace("model: llama-3.1-8b", "model: {name: llama-3.1-8b}")
    path.write_text(text.replace("rate_per_s: -1", "rate_per_s: 1").replace("ttft_second", "ttft_seconds"))
    load_profile(path)  # valid now
    path.write_text(text.replace("ttft_second", "ttft_seconds"))
    res = runner.invoke(app, ["traffic", "-p", str(path)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1


@pytest.mark.parametrize("traffic", ["steady", "bursty", "diurnal", "closed"])
def test_init_writes_a_profile_that_loads(tmp_path: Path, traffic: str) -> None:
    out = tmp_path / "p.yaml"
    res = runner.invoke(app, ["init", "--traffic", traffic, "--out", str(out)])
    assert res.exit_code == 0, res.output
    profile = load_profile(out)
    assert profile.model.name == "llama-3.1-8b" and profile.candidates.gpus
    assert out.read_text().startswith("# ")  # commented
    assert runner.invoke(app, ["init", "--traffic", traffic]).output == out.read_text()  # stdout by default


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    out.write_text("mine\n")
    res = runner.invoke(app, ["init", "--out", str(out)])
    assert res.exit_code == 2 and "--force" in res.stderr and out.read_text() == "mine\n"
    assert runner.invoke(app, ["init", "--out", str(out), "--force", "-m", "qwen3-8b"]).exit_code == 0
    assert yaml.safe_load(out.read_text())["model"]["name"] == "qwen3-8b"


def test_schema_is_the_profiles_json_schema() -> None:
    res = runner.invoke(app, ["schema"])
    schema = json.loads(res.output)
    assert {"model", "traffic", "slo", "candidates"} <= set(schema["required"])
    assert "repo" in schema["$defs"]["ModelSection"]["properties"]


def test_size_says_whether_the_concurrency_fits_and_whether_vllm_would_start() -> None:
    res = runner.invoke(app, ["size", "-m", "llama-3.1-8b", "--concurrency", "50", "-g", "h100-sxm,l4", "--json"])
    gpus = {g["gpu"]: g for g in json.loads(res.stdout)["gpus"]}
    assert gpus["h100-sxm"]["fits"] and gpus["h100-sxm"]["concurrency_fits"]
    assert gpus["l4"]["fits"] and not gpus["l4"]["concurrency_fits"]  # 30,880 KV tokens < 50 x 4,096
    assert gpus["l4"]["starts_at_default_max_model_len"] is False  # 131,072-token default > the KV cache
    assert gpus["h100-sxm"]["starts_at_default_max_model_len"] is True
    text = runner.invoke(app, ["size", "-m", "llama-3.1-8b", "--concurrency", "50", "-g", "h100-sxm,l4"]).stdout
    assert "l4: `vllm serve` without --max-model-len would refuse to start" in text
    assert "fit at once on h100-sxm; not on l4" in text
