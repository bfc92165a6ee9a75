#!/usr/bin/env python3
"""Regenerate README.md's command output from real runs (`make readme-tour`).

Every README block whose output is generated sits between two markers:

    <!-- tour:NAME -->
    ```console
    $ llmcc validate
    llmcc: validate ok: ...
    ```
    <!-- /tour -->

The `$ ` lines are the commands, run as written; everything else is output and is
rewritten. A command whose shown output ends in a `...` line keeps that many lines
and the `...`. What a block needs beforehand that the README only describes in
prose (an edited file, a commit, the servers of tools/local-stores.py) is its hidden
`setup` below; a `teardown` is only what the prose tells the reader to run after the
block (`git checkout -- environments`), and what the next blocks need undone is a
`$ ` line of the block itself, so the tour followed literally prints what is shown.
`BEFORE`/`AFTER` steps surround one command (one that runs in the background, or
streams until stopped). A block without
`$ ` lines shows what the ```python block above it prints.

All blocks run in README order in ONE bash session (exports and functions carry
over, as in a reader's terminal) on a `git clone` of this repository's HEAD in a
temp directory, with this tree's `.venv` (its `llmcc`), after `make demo`, the
first thing a new user runs. Output is stdout and stderr together. What differs
between two runs is replaced by a placeholder: commits made by the tour and the
clone's HEAD (`<commit>`, their dates `<date>`), digests (`sha256:<digest>`),
durations, timestamps, temp paths, generated keys, ports (servers listen on free
ports; commands and output show the README's).

    tools/readme-tour.py            rewrite README.md
    tools/readme-tour.py --check    exit 1 with a unified diff when README.md differs

Exit 2 when the session itself cannot run (a hidden step failed, no registry).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


class TourError(Exception):
    """The session could not run as the README describes (exit 2)."""


BLOCK = re.compile(r"^<!-- tour:(?P<name>[\w-]+) -->\n```console\n(?P<body>.*?)^```\n<!-- /tour -->$", re.M | re.S)
CUT = "..."
# the last ```python block before a position (a block without `$ ` lines shows what it prints)
PYTHON_ABOVE = re.compile(r"^```python\n(.*?)^```\n(?![\s\S]*^```python\n)", re.M | re.S)

# Hidden steps per block: shell run before (setup) and after (teardown) its commands, in
# the same session. `tour_subst REAL SHOWN` makes the output show REAL (a generated key) as
# SHOWN; commits made here are found by `tour_commits` after each step and shown as <commit>.
SETUP: dict[str, str] = {
    "no-cli": """
        PATH="$TOUR_TMP/base-install/bin:$PATH"
    """,
    "schema-error": """
        sed -i 's/^  temperature: .*/  temperature: 2.5/' environments/prod.yaml
    """,
    "policy-error": """
        sed -i 's/^  temperature: .*/  temperature: 1.4/' environments/prod.yaml
    """,
    "yaml-error": """
        sed -i 's/^  default_rate_limit_rpm: 300$/  default_rate_limit_rpm: [300/' environments/dev.yaml
    """,
    "explain": """
        sed -i 's/^  temperature: .*/  temperature: 0.25/' environments/prod.yaml
        GIT_AUTHOR_NAME='Bob Builder' GIT_AUTHOR_EMAIL=bob@example.com git commit -qam 'Cooler prod models'
        printf 'tour-rotated-db-password' |
            llmcc secrets rotate data-pipeline.db.password --target prod --value-from-stdin
        git add -A environments && git commit -qm 'Rotate the prod database password'
    """,
    "diff-readers": """
        llmcc keys generate --age "$TOUR_TMP/acme-2.agekey"
        tour_subst "$(cat "$TOUR_TMP/acme-2.agekey.pub")" 'age1<acme'"'"'s new key>'
        tour_new_readers
        git add -A && git commit -qm 'Acme rotates its reader key; onboard initech'
    """,
    # what the README has the reader run in another terminal: `.venv/bin/python tools/local-stores.py`
    "stores": """
        .venv/bin/python tools/local-stores.py --s3-port "$TOUR_PORT_5055" --oci-port "$TOUR_PORT_5056" \
            --oci-auth-port "$TOUR_PORT_5443" >"$TOUR_TMP/local-stores.log" 2>&1 &
        echo $! >> "$TOUR_OUT/pids"
        for _ in $(seq 600); do grep -q '^local-stores: ready' "$TOUR_TMP/local-stores.log" && break; sleep 0.1; done
        grep -q '^local-stores: ready' "$TOUR_TMP/local-stores.log" || { cat "$TOUR_TMP/local-stores.log"; false; }
    """,
    "new-commit": """
        sed -i 's/^  replicas: 1$/  replicas: 2/' environments/dev.yaml
        git commit -qam 'dev: two replicas'
    """,
}

# Every teardown that changes the clone is a command the README's prose tells the reader to run
# (quoted there in backticks; tests/test_readme_tour.py checks); what puts the repository back
# for the next step is a `$ ` line of the block itself (`git reset -q --hard HEAD~1`).
TEARDOWN: dict[str, str] = {
    "no-cli": 'PATH="${PATH#"$TOUR_TMP/base-install/bin:"}"',
    "schema-error": "git checkout -- environments",
    "policy-error": "git checkout -- environments",
    "yaml-error": "git checkout -- environments",
    "oci-auth": "tour_stop_services",  # the reader: Ctrl-C in the terminal of tools/local-stores.py
    "agent": "tour_stop_services; git checkout -- environments",  # the reader: kill %1; git checkout ...
}

# Hidden steps around one command (block name, index of its `$ ` line), e.g. for a command
# that runs in the background or does not end by itself. $TOUR_CMD_OUT is its output file;
# a snapshot in $TOUR_CMD_OUT.shown is what the README shows of it.
BEFORE: dict[tuple[str, int], str] = {
    # `curl -sN .../events` streams until stopped: once connected, prod changes and is published;
    # curl (a child of this session) is stopped once the new version's event is in.
    ("agent", 8): """
        (for _ in $(seq 600); do grep -q '^event: current' "$TOUR_CMD_OUT" 2>/dev/null && break; sleep 0.1; done
         sed -i 's/^  temperature: .*/  temperature: 0.25/' environments/prod.yaml
         llmcc publish --allow-dirty -t prod >"$TOUR_TMP/agent-publish.log" 2>&1) &
        (for _ in $(seq 600); do grep -q '^event: version' "$TOUR_CMD_OUT" 2>/dev/null && break; sleep 0.1; done
         kill -INT $(pgrep -P $$ -x curl)) &
    """,
}
AFTER: dict[tuple[str, int], str] = {
    ("agent", 2): """
        echo $! >> "$TOUR_OUT/pids"
        for _ in $(seq 600); do grep -q 'listening on' "$TOUR_CMD_OUT" && break; sleep 0.05; done
        grep -q 'listening on' "$TOUR_CMD_OUT" && cp "$TOUR_CMD_OUT" "$TOUR_CMD_OUT.shown"
    """,
}

# Shell functions the hidden steps use (the session is bash).
PRELUDE = r"""
tour_new_readers() {  # acme's reader key replaced by $TOUR_TMP/acme-2.agekey, tenant initech onboarded
    python - "$TOUR_TMP/acme-2.agekey.pub" <<'EOF'
import re, sys
new = open(sys.argv[1]).read().strip()
text = open("llmcc.yaml").read()
text = re.sub(r'("prod@acme": \{provider: age, recipients: \[)age1\w+', r"\g<1>" + new, text)
old = "  globex: {environments: [prod]}\n"
text = text.replace(old, old + "  initech: {environments: [prod]}\n")
open("llmcc.yaml", "w").write(text)
EOF
    mkdir -p environments/prod/tenants
    printf 'vars:\n  replicas: 2\n' > environments/prod/tenants/initech.yaml
}
tour_subst() { printf '%s\t%s\n' "$1" "$2" >> "$TOUR_OUT/subst"; }
tour_commits() { { git rev-parse HEAD; git rev-list "$TOUR_BASE..HEAD"; } >> "$TOUR_OUT/commits"; }
tour_stop_services() {
    [ -f "$TOUR_OUT/pids" ] && kill $(cat "$TOUR_OUT/pids") 2>/dev/null; rm -f "$TOUR_OUT/pids"; wait 2>/dev/null; true
}
trap tour_stop_services EXIT  # a failed step leaves no server running
"""


@dataclass
class Command:
    """One `$ ` line of a block and the output under it."""

    text: str
    shown: list[str] = field(default_factory=list)
    hidden: bool = False  # the output of the ```python block above, which the README shows as code

    @property
    def cut(self) -> int | None:
        """How many output lines the README keeps, when its output ends in `...`."""
        if self.shown and self.shown[-1] == CUT:
            return len(self.shown) - 1
        return None


@dataclass
class Block:
    name: str
    start: int  # offsets of the body in the README
    end: int
    commands: list[Command]


def parse_blocks(readme: str) -> list[Block]:
    """The marked blocks in README order. Raises TourError on a block with output before any `$ ` line."""
    blocks = []
    for m in BLOCK.finditer(readme):
        commands: list[Command] = []
        body = m.group("body").splitlines()
        if not any(line.startswith("$ ") for line in body):
            code = PYTHON_ABOVE.search(readme, 0, m.start())
            if code is None:
                raise TourError(
                    f"README.md: block tour:{m.group('name')} has no '$ ' line and no ```python block above"
                )
            commands.append(Command(f"python - <<'TOUR_PYTHON'\n{code.group(1)}TOUR_PYTHON", body, hidden=True))
        for line in [] if commands else body:
            if line.startswith("$ "):
                commands.append(Command(line[2:]))
            elif not commands:
                raise TourError(f"README.md: block tour:{m.group('name')} has output before its first '$ ' line")
            else:
                commands[-1].shown.append(line)
        blocks.append(Block(m.group("name"), m.start("body"), m.end("body"), commands))
    names = [b.name for b in blocks]
    if len(set(names)) != len(names):
        raise TourError(f"README.md: a tour block name is used twice: {names}")
    return blocks


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _hidden(label: str, code: str, log: str) -> str:
    """A hidden step: its output goes to LOG; its failure stops the session (exit 99) showing LOG."""
    return (
        f'{{\n{_dedent(code)}\n}} >"$TOUR_OUT/{log}" 2>&1 || '
        f"{{ echo '{label} failed:'; cat \"$TOUR_OUT/{log}\"; exit 99; }} >&2"
    )


def session_script(blocks: list[Block], subst: list[tuple[str, str]]) -> str:
    """The bash script that runs every block: output of command J of block I in $TOUR_OUT/I.J."""
    # a new user's first command (the README's first block); `-o`: the venv is this tree's
    parts = [PRELUDE, _hidden("make demo", "make -s -o .venv/.installed-stamp demo", "demo"), "__rc=0"]
    for i, block in enumerate(blocks):
        if block.name in SETUP:
            parts += [_hidden(f"setup of tour:{block.name}", SETUP[block.name], f"setup.{i}"), "tour_commits"]
        for j, command in enumerate(block.commands):
            text = command.text
            for real, shown in subst:
                text = text.replace(shown, real)
            parts.append(f'TOUR_CMD_OUT="$TOUR_OUT/{i}.{j}"')
            if (block.name, j) in BEFORE:
                parts.append(_hidden(f"before tour:{block.name} #{j}", BEFORE[block.name, j], f"before.{i}.{j}"))
            parts.append(f'(exit $__rc); {{\n{text}\n}} >"$TOUR_CMD_OUT" 2>&1 </dev/null; __rc=$?')
            if (block.name, j) in AFTER:
                parts.append(_hidden(f"after tour:{block.name} #{j}", AFTER[block.name, j], f"after.{i}.{j}"))
        if block.name in TEARDOWN:
            parts.append(_hidden(f"teardown of tour:{block.name}", TEARDOWN[block.name], f"teardown.{i}"))
        parts.append("tour_commits")
    parts.append("tour_stop_services")
    return "\n".join(parts) + "\n"


# The README's fixed ports; the tour listens on free ones and shows these.
SHOWN_PORTS = (5055, 5056, 5443, 2772)
SESSION_TIMEOUT = 600


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    """What one session produced: per block, per command, its raw output."""

    outputs: list[list[str]]
    subst: list[tuple[str, str]]  # (real, shown), longest first
    commits: set[str]
    started: datetime


def registry_binary() -> str:
    for path in (shutil.which("docker-registry"), str(ROOT / ".cache/services/usr/bin/docker-registry")):
        if path and os.access(path, os.X_OK):
            return path
    raise TourError("docker-registry is not installed (make services)")


def base_install(venv: Path) -> None:
    """VENV: the package installed without extras (as `pip install .`), from this tree's .venv.

    A venv whose site-packages links only the base distributions (the requirement
    closure of llm-config-compiler without extras) and this tree's `compiler`.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    closure = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-c", _CLOSURE, str(site)], capture_output=True, text=True, check=False
    )
    if closure.returncode != 0:
        raise TourError(f"the base install failed: {closure.stderr}")
    (site / "llmcc-tree.pth").write_text(f"{ROOT}\n")
    (venv / "bin" / "llmcc").write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom compiler.cli import main\nsys.exit(main())\n"
    )
    (venv / "bin" / "llmcc").chmod(0o755)


# Run by the tree's python: link every file of the base distributions into SITE.
_CLOSURE = """
import importlib.metadata as md, sys
from pathlib import Path
from packaging.requirements import Requirement
site, seen, todo = Path(sys.argv[1]), set(), ["llm-config-compiler"]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    dist = md.distribution(name)
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
    if name == "llm-config-compiler":
        continue
    for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
        link, target = site / top, Path(dist.locate_file(top))
        if target.exists() and not link.exists():
            link.symlink_to(target)
"""


def _output(path: Path) -> str:
    shown = path.with_name(path.name + ".shown")
    return (shown if shown.exists() else path).read_text(errors="replace")


def run_session(blocks: list[Block], tmp: Path) -> Run:
    """Clone HEAD into TMP, run every block there, and collect the outputs. Raises TourError on a failed step."""
    clone, out, home = tmp / "llmcc", tmp / "out", tmp / "home"
    for d in (out, home):
        d.mkdir()
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    base = head.stdout.strip()
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", "-B", "main", base], check=True)
    # the tree's installed llmcc, in an ignored .venv/ as `make demo` leaves it (a symlinked .venv is no
    # directory to .gitignore's `.venv/`, and the secrets guard would report it)
    (clone / ".venv").mkdir()
    for part in ("bin", "lib", "pyvenv.cfg"):  # a venv its own `.venv/bin/python` finds (tools/local-stores.py)
        (clone / ".venv" / part).symlink_to(ROOT / ".venv" / part)
    (clone / ".venv" / ".installed-stamp").touch()
    base_install(tmp / "base-install")
    ports = {shown: _free_port() for shown in SHOWN_PORTS}
    static = [
        (f"{host}:{real}", f"{host}:{shown}") for shown, real in ports.items() for host in ("127.0.0.1", "localhost")
    ]
    # the agent's default address is the README's port; the tour's agent listens on a free one
    static.append((f"llmcc agent --listen 127.0.0.1:{ports[2772]} ", "llmcc agent "))
    static.append((str(tmp / "ociauth-demo"), "/tmp/ociauth-demo"))  # noqa: S108 - the path the README shows
    static.append((str(tmp / "llmcc-stores"), "/tmp/llmcc-stores"))  # noqa: S108 - tools/local-stores.py's default
    registry_binary()  # tools/local-stores.py starts it: no registry is exit 2 before the session
    venv_bin = ROOT / ".venv" / "bin"
    env = {
        "PATH": f"{venv_bin}:{ROOT / '.cache/services/usr/bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave as on a terminal
        "PYTHONWARNINGS": "ignore",
        "TMPDIR": str(tmp),
        "TOUR_TMP": str(tmp),
        "TOUR_OUT": str(out),
        "TOUR_CLONE": str(clone),
        "TOUR_BASE": base,
        "GIT_AUTHOR_NAME": "Alice Author",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Alice Author",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
        **{f"TOUR_PORT_{shown}": str(real) for shown, real in ports.items()},
    }
    script = tmp / "session.sh"
    script.write_text(session_script(blocks, static))
    started = datetime.now(UTC)
    # its own process group: a session that hangs is stopped with every server it started
    with subprocess.Popen(
        ["bash", str(script)],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            log, _ = proc.communicate(timeout=SESSION_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TourError(f"the session did not end within {SESSION_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise TourError(f"the session failed (exit {proc.returncode}):\n{log}")
    outputs = [[_output(out / f"{i}.{j}") for j in range(len(block.commands))] for i, block in enumerate(blocks)]
    dynamic: list[tuple[str, str]] = []
    if (out / "subst").exists():
        for line in (out / "subst").read_text().splitlines():
            real, shown = line.split("\t", 1)
            dynamic.append((real, shown))
    shown_paths = [(str(clone), "$PWD"), (str(home), "~"), (str(tmp), "/tmp")]  # noqa: S108 - shown, never opened
    subst = sorted([*static, *dynamic, *shown_paths], key=lambda p: -len(p[0]))
    commits = set((out / "commits").read_text().split()) if (out / "commits").exists() else set()
    return Run(outputs, subst, commits, started)


_TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.M)
_DURATION = re.compile(r"\bin \d+(?:\.\d+)?m?s\b")
_DIGEST = re.compile(r"\bsha256:[0-9a-f]{64}\b")


def normalise(text: str, run: Run) -> str:
    """Replace what differs between two runs by a stable placeholder."""
    for real, shown in run.subst:
        text = text.replace(real, shown)
    for sha in sorted(run.commits):
        text = re.sub(rf"\b{sha[:7]}[0-9a-f]{{0,33}}\b", "<commit>", text)
    text = re.sub(r"<commit>(\s+)\d{4}-\d\d-\d\d\b", r"<commit>\1<date>", text)
    text = _DIGEST.sub("sha256:<digest>", text)
    text = _DURATION.sub("in <duration>", text)
    text = _LOG_TIME.sub("<time> ", text)

    def timestamp(m: re.Match[str]) -> str:
        when = datetime.fromisoformat(m.group(0).replace("Z", "+00:00"))
        for label, delta in (("<now>", timedelta(0)), ("<now + 7 days>", timedelta(days=7))):
            if abs(when - run.started - delta) < timedelta(hours=1):
                return label
        return m.group(0)

    text = _TIMESTAMP.sub(timestamp, text)
    text = re.sub(r"/tmp/tmp\.\w+", "/tmp/tmp.<random>", text)  # noqa: S108 - mktemp's names, shown
    return re.sub(r"llmcc-exec-\w+", "llmcc-exec-<random>", text)


def render(readme: str, blocks: list[Block], run: Run) -> str:
    """README.md with every block's output replaced by the run's."""
    pieces, pos = [], 0
    for block, outputs in zip(blocks, run.outputs, strict=True):
        body = []
        for command, raw in zip(block.commands, outputs, strict=True):
            lines = normalise(raw, run).rstrip("\n").splitlines() if raw.strip() else []
            if command.cut is not None and len(lines) > command.cut:
                lines = [*lines[: command.cut], CUT]
            body += [*([] if command.hidden else [f"$ {command.text}"]), *lines]
        pieces += [readme[pos : block.start], "\n".join(body) + "\n"]
        pos = block.end
    return "".join([*pieces, readme[pos:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 with a unified diff when README.md differs")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (for debugging)")
    parser.add_argument("--readme", type=Path, default=README, help="the file to check or rewrite (default README.md)")
    args = parser.parse_args(argv)
    readme = args.readme.read_text()
    tmp = Path(tempfile.mkdtemp(prefix="readme-tour-"))
    try:
        blocks = parse_blocks(readme)
        if not blocks:
            raise TourError(f"{args.readme.name} has no <!-- tour:NAME --> blocks")
        new = render(readme, blocks, run_session(blocks, tmp))
    except TourError as e:
        print(f"readme-tour: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"readme-tour: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.check:
        if new != readme:
            diff = difflib.unified_diff(
                readme.splitlines(True), new.splitlines(True), args.readme.name, f"{args.readme.name} (regenerated)"
            )
            sys.stdout.writelines(diff)
            return 1
        return 0
    if new != readme:
        args.readme.write_text(new)
        print(f"readme-tour: {args.readme} regenerated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
