"""Rules of the house that a reader checks with grep (docs/design.md): they hold for every file, so a change
that breaks one fails here instead of waiting for the next review."""

import re

import pytest

from conftest import REPO

# What changes the process as a whole: the environment, file descriptors, hooks, signal handlers, Paddle's
# operator table, the import system. Only paddlevideo/runtime.py (named functions) and paddlevideo/compat/
# (version workarounds) may do it.
PROCESS_CHANGES = {
    "an environment variable set": r"os\.environ\[[^\]]*\]\s*=(?!=)|os\.environ\.(update|setdefault|pop)\(|os\.putenv\(",
    "a file descriptor redirected": r"\bdup2\(",
    "an exception hook installed": r"(threading|sys)\.excepthook\s*=(?!=)|sys\.unraisablehook\s*=(?!=)",
    "the import system changed": r"\bmeta_path\b",
    "Paddle's operator table used": r"\b_C_ops\b",
    "a signal handler installed": r"\bsignal\.signal\(",
}
ALLOWED = ("paddlevideo/runtime.py", "paddlevideo/compat/")


def _sources():
    files = sorted((REPO / "paddlevideo").rglob("*.py")) + sorted((REPO / "tools").rglob("*.py")) + [REPO / "main.py"]
    return [(path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8")) for path in files]


def _code_lines(text):
    """``(number, line)`` of the lines that are code: comments dropped, docstrings and other strings blanked."""
    text = re.sub(r'("""|\'\'\')(.*?)\1', lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"#.*", "", re.sub(r"(\"[^\"]*\"|'[^']*')", "''", line))
        if line.strip():
            yield number, line


@pytest.mark.parametrize("what", sorted(PROCESS_CHANGES))
def test_process_wide_changes_happen_only_in_runtime_and_compat(what):
    pattern = re.compile(PROCESS_CHANGES[what])
    found = [f"{name}:{number}" for name, text in _sources() if not name.startswith(ALLOWED)
             for number, line in _code_lines(text) if pattern.search(line)]
    assert not found, f"{what} outside runtime.py / compat/: {found}"


# One line each pattern must find (the test above would otherwise pass by looking for nothing).
EXAMPLES = {
    "an environment variable set": 'os.environ["OMP_NUM_THREADS"] = "1"',
    "a file descriptor redirected": "os.dup2(2, 1)",
    "an exception hook installed": "threading.excepthook = handler",
    "the import system changed": "sys.meta_path.insert(0, finder)",
    "Paddle's operator table used": "paddle._C_ops.matmul = patched",
    "a signal handler installed": "signal.signal(signal.SIGINT, signal.SIG_IGN)",
}


def test_the_rules_see_what_they_look_for_and_not_in_strings_or_comments():
    for what, pattern in PROCESS_CHANGES.items():
        sample = f'x = 1  # {EXAMPLES[what]}\nprint("{EXAMPLES[what]}")\n"""\n{EXAMPLES[what]}\n"""\n{EXAMPLES[what]}\n'
        assert [number for number, line in _code_lines(sample) if re.search(pattern, line)] == [6], what
    assert not re.search(PROCESS_CHANGES["an environment variable set"], 'ok = os.environ["A"] == "1"')


def test_only_the_shared_bootstrap_puts_the_clone_on_sys_path():
    """Tools start through tools/_bootstrap.py (one place that puts a clone that was not installed on
    ``sys.path``); the library never edits ``sys.path``."""
    pattern = re.compile(r"sys\.path\.(insert|append)\(|sys\.path\s*=(?!=)")
    found = [f"{name}:{number}" for name, text in _sources() if name != "tools/_bootstrap.py"
             for number, line in _code_lines(text) if pattern.search(line)]
    assert not found, found
