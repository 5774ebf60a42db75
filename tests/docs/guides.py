"""Read the repo's Markdown guides as tasks: their shell commands, paths, links, sections and samples.

Every function here returns findings (plain strings naming the file and line) instead of asserting, so the
tests can run them on the real guides (no finding) and on planted mistakes (the finding appears).

Parsing is done by real parsers, not regexes: Markdown by markdown-it-py (CommonMark + tables), each shell
block by bash itself (`bash -n`) and by bashlex (a port of bash's own grammar) to split it into simple
commands with their words, quotes removed and expansions marked.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bashlex
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[2]
SHELL_INFOS = {"bash", "sh", "shell"}
# Folders never searched for guides (generated or third-party).
SKIP_DIRS = {".git", ".venv", ".cache", "node_modules", "artifacts", "build", "bin", ".pytest_cache"}
# A repo path in a command or in inline code starts with one of these (files or folders of the repo).
REPO_TOP = (
    "mesh/",
    "k8s/",
    "docs/",
    "scripts/",
    "tests/",
    "services/",
    "kind/",
    "loadtest/",
    "requirements/",
    "mk/",
    "observability/",
)
REPO_FILES = {"Makefile", "Dockerfile", "README.md", "DEVELOPERS.md", "pyproject.toml", "LICENSE"}
LAB_SECTIONS = [
    "Before you begin",
    "What the lesson wrote",
    "What changed, and why",
    "What this repo applies",
    "Steps",
    "What you should see",
    "Verify",
    "Cleanup",
]
SAMPLE_LABELS = ("Captured", "Expected shape")

_md = MarkdownIt("commonmark").enable("table")


# --- Markdown ---------------------------------------------------------------------------------------


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown file of the repo a student may read (the README files and docs/**)."""
    found = []
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root)
        if not any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            found.append(path)
    return found


def lab_guides(root: Path = ROOT) -> list[Path]:
    """The lab guides: docs/<mesh>/<lab>.md (not the mesh README)."""
    return sorted(p for p in (root / "docs").glob("*/*.md") if p.name != "README.md")


@dataclass(frozen=True)
class Doc:
    """One Markdown file, parsed."""

    name: str  # path relative to the repo (for messages)
    text: str
    tokens: list[Token] = field(repr=False)

    @classmethod
    def read(cls, path: Path, root: Path = ROOT) -> Doc:
        return cls.parse(str(path.relative_to(root)), path.read_text())

    @classmethod
    def parse(cls, name: str, text: str) -> Doc:
        return cls(name, text, _md.parse(text))

    def where(self, token: Token) -> str:
        return f"{self.name}:{(token.map or [0])[0] + 1}"


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string (language), text and position."""

    doc: Doc
    line: int  # 1-based line of the opening fence
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.line}"


def blocks(doc: Doc) -> list[Block]:
    return [
        Block(doc, (t.map or [0])[0] + 1, t.info.strip().split(" ")[0], t.content)
        for t in doc.tokens
        if t.type == "fence"
    ]


def shell_blocks(doc: Doc) -> list[Block]:
    return [b for b in blocks(doc) if b.info in SHELL_INFOS]


def inline_text(token: Token) -> str:
    """The plain text of an inline token (code spans without backticks, links without targets)."""
    return "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(doc: Doc, level: int | None = None) -> list[tuple[int, str, Token]]:
    """(level, text, heading_open token) of every heading, in order."""
    out = []
    for i, t in enumerate(doc.tokens):
        if t.type == "heading_open" and (level is None or int(t.tag[1]) == level):
            out.append((int(t.tag[1]), inline_text(doc.tokens[i + 1]), t))
    return out


def sections(doc: Doc) -> dict[str, list[Token]]:
    """Level-2 heading text -> the tokens up to the next level-2 heading."""
    out: dict[str, list[Token]] = {}
    current: list[Token] | None = None
    for i, t in enumerate(doc.tokens):
        if t.type == "heading_open" and t.tag == "h2":
            current = out.setdefault(inline_text(doc.tokens[i + 1]), [])
            continue
        if current is not None:
            current.append(t)
    return out


def code_spans(doc: Doc) -> Iterator[tuple[str, Token]]:
    """(text, inline token) of every inline code span in prose, tables and lists."""
    for t in doc.tokens:
        if t.type == "inline":
            for c in t.children or []:
                if c.type == "code_inline":
                    yield c.content, t


def links(doc: Doc) -> Iterator[tuple[str, Token]]:
    for t in doc.tokens:
        if t.type == "inline":
            for c in t.children or []:
                if c.type == "link_open":
                    yield str(c.attrs.get("href", "")), t


# --- shell commands -------------------------------------------------------------------------------

PLACEHOLDER = "x"  # what an expansion ($VAR, $(...)) stands for when a command is checked


@dataclass(frozen=True)
class Command:
    """A simple command of a shell block: its words after quote removal, expansions replaced."""

    block: Block
    argv: tuple[str, ...]
    expanded: tuple[bool, ...]  # per word: did it contain an expansion (so its value is not known)?
    source: str

    @property
    def name(self) -> str:
        return self.argv[0] if self.argv else ""


def _children(node: Any) -> Iterator[Any]:
    for attr in ("parts", "list"):
        yield from getattr(node, attr, None) or []
    for attr in ("command", "output"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int):
            yield child


def _word_value(node: Any, source: str) -> tuple[str, bool]:
    value, expanded = node.word, False
    for part in node.parts or []:
        if part.kind in ("parameter", "commandsubstitution", "processsubstitution", "tilde"):
            value = value.replace(source[part.pos[0] : part.pos[1]], PLACEHOLDER)
            expanded = True
    return value, expanded


def parse_commands(block: Block) -> tuple[list[Command], list[str]]:
    """The simple commands of a shell block (also those inside $(...)), and findings: a block bashlex
    cannot read, and `<placeholder>` words the shell would take as a redirection."""
    findings: list[str] = []
    try:
        trees = bashlex.parse(block.text)
    except Exception as exc:  # bashlex raises its own ParsingError and others
        return [], [f"{block.where}: the shell block does not parse ({exc})"]
    found: list[Command] = []

    def walk(node: Any) -> None:
        if node.kind == "command":
            words = [p for p in node.parts or [] if p.kind == "word"]
            values = [_word_value(w, block.text) for w in words]
            if values:
                found.append(
                    Command(
                        block,
                        tuple(v for v, _ in values),
                        tuple(e for _, e in values),
                        block.text[node.pos[0] : node.pos[1]],
                    )
                )
        if node.kind == "redirect" and node.type == "<" and block.text[node.pos[1] : node.pos[1] + 1] == ">":
            findings.append(
                f"{block.where}: `{block.text[node.pos[0] : node.pos[1] + 1]}` is a redirection to the shell;"
                " write the placeholder as a variable ($POD) or a real value"
            )
        for child in _children(node):
            walk(child)

    for tree in trees:
        walk(tree)
    return found, findings


def bash_syntax_errors(block: Block) -> list[str]:
    """`bash -n`: bash's own parser reads the block without running it."""
    proc = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True, timeout=30)
    return [] if proc.returncode == 0 else [f"{block.where}: bash -n: {proc.stderr.strip()}"]


# --- make -----------------------------------------------------------------------------------------


@functools.cache
def make_targets(root: Path = ROOT) -> frozenset[str]:
    """The targets make knows (its database, so included mk/*.mk files count)."""
    proc = subprocess.run(
        ["make", "-pRrq", "-f", "Makefile", ":"], cwd=root, capture_output=True, text=True, timeout=60
    )
    names = set()
    in_files = False
    for line in proc.stdout.splitlines():
        if line.startswith("# Files"):
            in_files = True
        elif line.startswith("# Finished Make data base"):
            in_files = False
        elif in_files and (m := re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):", line)):
            names.add(m.group(1))
    return frozenset(names)


@functools.cache
def make_variables(root: Path = ROOT) -> frozenset[str]:
    """Variables a make command line may set: those the Makefiles or the scripts they run read."""
    text = "\n".join(p.read_text() for p in [root / "Makefile", *sorted((root / "mk").glob("*.mk"))])
    text += "\n".join(p.read_text() for p in sorted((root / "scripts").glob("*.sh")))
    return frozenset(re.findall(r"\$[({]([A-Z_][A-Z0-9_]*)", text)) | frozenset(
        re.findall(r"^([A-Z_][A-Z0-9_]*) *[?:]?=", text, re.M)
    )


def meshes(root: Path = ROOT) -> list[str]:
    return sorted(p.name for p in (root / "mesh").iterdir() if (p / "labs").is_dir())


def labs(mesh: str, root: Path = ROOT) -> set[str]:
    return {p.parent.name for p in (root / "mesh" / mesh / "labs").glob("*/kustomization.yaml")}


def services(root: Path = ROOT) -> list[str]:
    env = dict(
        line.split("=", 1)
        for line in (root / "services" / "topology.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return env["SERVICES"].split()


def make_findings(cmd: Command, root: Path = ROOT) -> list[str]:
    """A `make` command of a guide: known targets, known variables, values that exist (MESH, LAB, S)."""
    where = cmd.block.where
    args = [a for a, e in zip(cmd.argv[1:], cmd.expanded[1:], strict=True) if not e]
    settings = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    targets = [a for a in args if "=" not in a and not a.startswith("-")]
    out = [f"{where}: `{cmd.source}`: no make target {t!r}" for t in targets if t not in make_targets(root)]
    out += [
        f"{where}: `{cmd.source}`: no make variable {name} (nothing reads it)"
        for name in settings
        if name not in make_variables(root)
    ]
    mesh = settings.get("MESH")
    if mesh is not None and mesh not in ["none", *meshes(root)]:
        out.append(f"{where}: `{cmd.source}`: MESH={mesh} is not a mesh (none, {', '.join(meshes(root))})")
    lab = settings.get("LAB")
    if lab is not None:
        candidates = [mesh] if mesh in meshes(root) else meshes(root)
        if not any(lab in labs(m, root) for m in candidates):
            out.append(f"{where}: `{cmd.source}`: no lab {lab!r} in mesh/{'|'.join(candidates)}/labs")
            lab = None
    if "verify" in targets and lab is not None and mesh in meshes(root):
        checks = f"tests/cluster/{mesh}/test_{lab.replace('-', '_')}.py"
        if not (root / checks).exists():
            out.append(f"{where}: `{cmd.source}`: lab {lab} has no live checks ({checks})")
    if (svc := settings.get("S")) is not None and svc not in [*services(root), "mongodb"]:
        out.append(f"{where}: `{cmd.source}`: S={svc} is not a service")
    return out


# --- repo paths -----------------------------------------------------------------------------------


def repo_path_candidate(token: str) -> str | None:
    """The repo path a word or code span names, or None (placeholders, globs, URLs, generated folders)."""
    token = token.split("=")[-1].rstrip(".,;:)").removeprefix("./")
    if any(ch in token for ch in "<>*{}$|[] ") or "://" in token:
        return None
    if token in REPO_FILES or token.startswith(REPO_TOP):
        return token.split("#")[0]
    return None


# Paths a guide tells you to create: the example service of docs/architecture.md's "How to add a service".
TO_CREATE = re.compile(r"(^|/)(test_)?review(/|\.yaml$|\.py$|$)")


def missing_paths(tokens: list[tuple[str, str]], root: Path = ROOT) -> list[str]:
    """(token, where) pairs whose repo path does not exist (and is not one a guide says to create)."""
    out = []
    for token, where in tokens:
        path = repo_path_candidate(token)
        if path and not TO_CREATE.search(path) and not (root / path).exists():
            out.append(f"{where}: `{token}` names {path}, which does not exist")
    return out


# --- links ----------------------------------------------------------------------------------------


def anchors(doc: Doc) -> set[str]:
    return {slug(text) for _, text, _ in headings(doc)}


def broken_links(doc: Doc, path: Path, root: Path = ROOT) -> list[str]:
    """Relative links that point to no file, or to an anchor no heading of that file has."""
    out = []
    for href, token in links(doc):
        if re.match(r"^[a-z]+:", href) or not href:
            continue
        target, _, anchor = href.partition("#")
        target_path = (path.parent / target).resolve() if target else path
        if target and not target_path.exists():
            out.append(f"{doc.where(token)}: link {href} points to no file")
            continue
        if anchor and target_path.suffix == ".md":
            target_doc = doc if not target else Doc.read(target_path, root)
            if anchor not in anchors(target_doc):
                out.append(f"{doc.where(token)}: link {href}: {target_path.name} has no heading #{anchor}")
    return out


# --- the real CLIs ----------------------------------------------------------------------------------

CLUSTER_CLIS = ("kubectl", "istioctl", "linkerd")


def find_cli(name: str, root: Path = ROOT) -> str | None:
    """The pinned CLI `make tools` put in ./bin, else one on PATH."""
    pinned = root / "bin" / name
    return str(pinned) if os.access(pinned, os.X_OK) else shutil.which(name)


@dataclass
class UnreachableCluster:
    """A kubeconfig whose only context `kind-shop` points at a closed port on 127.0.0.1, and a HOME with
    nothing else: a CLI that parsed its arguments goes on to connect there and fails with that address."""

    dir: Path
    address: str

    @classmethod
    def create(cls, dir_: Path) -> UnreachableCluster:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again at once: connections are refused
        address = f"127.0.0.1:{port}"
        cluster = {"server": f"https://{address}", "insecure-skip-tls-verify": True}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kind-shop", "cluster": cluster}],
            "users": [{"name": "kind-shop", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "kind-shop", "context": {"cluster": "kind-shop", "user": "kind-shop"}}],
            "current-context": "kind-shop",
        }
        (dir_ / ".kube").mkdir(parents=True, exist_ok=True)
        (dir_ / ".kube" / "config").write_text(yaml.safe_dump(config))
        return cls(dir_, address)

    def env(self, path_dirs: list[str]) -> dict[str, str]:
        return {
            "HOME": str(self.dir),
            "KUBECONFIG": str(self.dir / ".kube" / "config"),
            "PATH": os.pathsep.join([*path_dirs, "/usr/bin", "/bin"]),
            "NO_PROXY": "*",
        }


# A CLI still running after this long got past its argument parsing (parse errors are immediate).
PARSE_SECONDS = 5.0


def cli_parse_finding(
    cmd: Command, binary: str, cluster: UnreachableCluster, root: Path = ROOT, seconds: float = PARSE_SECONDS
) -> str | None:
    """Run a kubectl/istioctl/linkerd command of a guide with the real CLI against a cluster that cannot
    answer. It parsed if it exits 0 (offline commands such as kubectl kustomize), tries to reach the
    cluster (its error names the address or a refused connection), or is still busy after `seconds`."""
    path_dirs = [str(Path(binary).parent)]
    argv = [binary, *cmd.argv[1:]]
    try:
        proc = subprocess.run(
            argv,
            cwd=root,
            env=cluster.env(path_dirs),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        return None
    output = proc.stdout + proc.stderr
    if proc.returncode == 0 or cluster.address in output or "connection refused" in output.lower():
        return None
    lines = "\n    ".join(output.strip().splitlines()[:6])
    return f"{cmd.block.where}: `{cmd.source.strip()}` does not parse with {binary}:\n    {lines}"


# --- samples --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A fenced block in "What you should see", with the paragraph that introduces it."""

    block: Block
    label: str  # the paragraph just before the block ("" when there is none)


def samples(doc: Doc) -> list[Sample]:
    out = []
    section = sections(doc).get("What you should see", [])
    label = ""
    for i, t in enumerate(section):
        if t.type == "inline" and section[i - 1].type == "paragraph_open":
            label = t.content
        elif t.type == "fence":
            out.append(Sample(Block(doc, (t.map or [0])[0] + 1, t.info.strip(), t.content), label))
            label = ""
    return out


def unlabelled_samples(doc: Doc) -> list[str]:
    return [
        f"{s.block.where}: a sample output must say whether it is {' or '.join(SAMPLE_LABELS)}"
        for s in samples(doc)
        if not s.label.startswith(SAMPLE_LABELS)
    ]


CAPTURED = re.compile(r"^Captured with `([^`]+)`")


def normalize_capture(output: str, root: Path = ROOT) -> str:
    """Real output as the guides print it: the clone's folder as `.`, temporary folders as XXXXXXXXXX."""
    output = output.replace(str(root), ".")
    output = re.sub(r"/tmp/tmp\.[A-Za-z0-9]+", "/tmp/tmp.XXXXXXXXXX", output)
    return output.rstrip("\n") + "\n"


def tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="guides-"))
