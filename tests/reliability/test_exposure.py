"""Network exposure and unsafe deserialisation."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path


import memhw
from memhw.cli import main

PACKAGE = Path(memhw.__file__).resolve().parent
ROOTS = [PACKAGE, PACKAGE.parent / "firmware_protocol"]
UNSAFE = re.compile(
    r"\bimport\s+(pickle|cPickle|dill|marshal|shelve)\b|\bfrom\s+(pickle|dill|marshal|shelve)\s+import\b"
    r"|\b(pickle|dill|marshal)\.loads?\(|(?<![.\w])eval\(|(?<![.\w])exec\(|allow_pickle\s*=\s*True"
    r"|yaml\.load\((?![^)]*SafeLoader)|\bpd\.read_pickle\("
    r"|torch\.load\(|\bcompile\([^)]*['\"]exec['\"]")


def test_nothing_unpickles_or_evals_data() -> None:
    hits = []
    for root in ROOTS:
        for path in sorted(root.rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if UNSAFE.search(code):
                    hits.append(f"{path.relative_to(root.parent)}:{n}: {line.strip()}")
    assert not hits, "unsafe deserialisation / evaluation:\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should() -> None:
    for bad in ("import pickle", "x = pickle.loads(b)", "eval(text)", "np.load(f, allow_pickle=True)",
                "exec(code)", "from dill import loads", "yaml.load(f)"):
        assert UNSAFE.search(bad), bad
    # np.load refuses pickles by default (allow_pickle=False since numpy 1.16.3)
    for ok in ("np.load(path)", "self.evaluate(x)", "model.eval()", "ast.literal_eval(s)"):
        assert not UNSAFE.search(ok), ok


def test_serve_refuses_a_non_loopback_address_without_allow_remote(capsys) -> None:
    assert main(["mock", "serve", "--tcp", "0.0.0.0:0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_serve_defaults_to_loopback_and_warns_when_told_otherwise() -> None:
    for extra, host, warns in (([], "127.0.0.1", False), (["--tcp", "0.0.0.0:0", "--allow-remote"], "0.0.0.0", True)):
        proc = subprocess.Popen([sys.executable, "-m", "memhw.cli", "mock", "serve", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert f"socket://{host}:" in line, line
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        assert ("anyone who can reach this address" in err) is warns, err


def test_emulator_server_binds_loopback_by_default() -> None:
    from memhw.mock.emulator import BoardEmulator
    from memhw.mock.params import make_params
    from memhw.peer import PeerServer

    with PeerServer.tcp(BoardEmulator(make_params("ideal", rows=4))) as server:
        assert server.host == "127.0.0.1"
