"""The console entry point: usage errors are one stderr line and exit 2, like every bad input."""

from __future__ import annotations

import pytest

from planner.cli import main


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["planner", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--bogus",), "No such option: --bogus"),
        (("perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "1"), "Missing option '--context'"),
        (("size", "--model", "llama-3.1-8b", "--context", "abc"), "'--context'"),
        (("simulate", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--replicas", "0"), "'--replicas'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(monkeypatch, capsys, args, fragment) -> None:
    code, out, err = _run(monkeypatch, capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err


def test_bad_input_from_core_code_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    code, out, err = _run(monkeypatch, capsys, "size", "--model", "no-such-model")
    assert code == 2 and out == "" and err.count("\n") == 1 and "unknown model" in err


def test_success_exits_0_and_help_without_args(monkeypatch, capsys) -> None:
    code, out, _ = _run(monkeypatch, capsys, "catalog", "--json")
    assert code == 0 and out.lstrip().startswith("{")
    code, out, _ = _run(monkeypatch, capsys)
    assert code == 0 and "Usage" in out
