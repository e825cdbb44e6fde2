import subprocess
import sys

from qtn.cli import main


def _run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "qtn", *args], capture_output=True, text=True, env=env, check=False
    )


def test_help_exits_zero():
    res = _run("--help")
    assert res.returncode == 0
    assert "datasets" in res.stdout and "demo" in res.stdout


def test_version(capsys):
    import qtn

    res = _run("--version")
    assert res.returncode == 0 and qtn.__version__ in res.stdout


def test_datasets_lists_sources(mnist_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("QTN_DATA_DIR", raising=False)
    assert main(["datasets", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and f"found in {mnist_dir}" in out
    assert main(["datasets", "--data-dir", str(tmp_path / "none")]) == 0
    assert "mnist           not found" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: qtn" in capsys.readouterr().out


def test_demo_quick(capsys):
    assert main(["demo", "--quick", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "parameters" in out
    acc = float(out.split("test accuracy ")[1].split("%")[0])
    assert acc > 90.0
