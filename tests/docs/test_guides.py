"""The guides are tasks a student runs: every shell block and every reference of every guide, checked offline.

For each Markdown file a student reads (README.md, docs/**, the other READMEs): bash parses every shell block;
every `make` command names a real target, real variables and values that exist (MESH, LAB, S), and the cluster
ones run as a dry run; every kubectl/istioctl/linkerd command parses with the real CLI (the pinned one `make
tools` puts in ./bin, else one on PATH; skipped with the reason when neither is there); every repo path and
every relative link (with its anchor) exists. The lab guides share one set of sections, each mesh README has a
"Start here" sequence, sample output says whether it was captured (and captured output is re-run and compared)
or is an expected shape, no guide sends a student outside the repo (`../shared`), and no guide claims tracing
works while no manifest sets it up. Each check also runs on a planted mistake, to show it can fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs import guides
from tests.docs.guides import Block, Command, Doc
from tests.k8s.stubs import DRY_RUN_NOTICE, REAL_KUBECTL, make, write_stubs

ROOT = guides.ROOT
DOCS = [(path, Doc.read(path)) for path in guides.markdown_files()]
BLOCKS = [b for _, doc in DOCS for b in guides.shell_blocks(doc)]


def all_commands() -> Iterator[Command]:
    for block in BLOCKS:
        yield from guides.parse_commands(block)[0]


def guide(text: str, name: str = "docs/planted.md") -> Doc:
    return Doc.parse(name, text)


def planted_block(text: str) -> Block:
    return guides.shell_blocks(guide(f"```bash\n{text}\n```\n"))[0]


def test_the_guides_are_found() -> None:
    names = {doc.name for _, doc in DOCS}
    assert {
        "README.md",
        "docs/istio/README.md",
        "docs/linkerd/README.md",
        "docs/lesson-corrections.md",
    } <= names
    assert len(guides.lab_guides()) >= 11
    assert len(BLOCKS) >= 40


# --- shell syntax -------------------------------------------------------------------------------------


def test_every_shell_block_parses_with_bash() -> None:
    assert [f for b in BLOCKS for f in guides.bash_syntax_errors(b)] == []


def test_every_shell_block_splits_into_commands_without_placeholder_redirections() -> None:
    findings = [f for b in BLOCKS for f in guides.parse_commands(b)[1]]
    assert findings == []


def test_planted_syntax_error_and_placeholder_are_found() -> None:
    assert guides.bash_syntax_errors(planted_block("for i in 1 2; do echo $i"))
    _, findings = guides.parse_commands(
        planted_block("kubectl -n ecommerce debug -it <pod> --image=busybox -- sh")
    )
    assert findings and "`<pod>` is a redirection" in findings[0]
    commands, findings = guides.parse_commands(planted_block("cat </dev/null; P=$(kubectl get pod -o name)"))
    assert findings == []
    assert [c.argv for c in commands] == [("cat",), ("kubectl", "get", "pod", "-o", "name")]


def test_expansions_are_marked_and_replaced() -> None:
    (cmd,) = guides.parse_commands(
        planted_block('kubectl -n ecommerce exec $P -c order -- python3 -c "print(1)"')
    )[0]
    assert cmd.argv == (
        "kubectl",
        "-n",
        "ecommerce",
        "exec",
        "x",
        "-c",
        "order",
        "--",
        "python3",
        "-c",
        "print(1)",
    )
    assert cmd.expanded[4] and not any(cmd.expanded[:4])


# --- make -----------------------------------------------------------------------------------------------


def make_commands() -> list[Command]:
    return [c for c in all_commands() if c.name == "make"]


def test_make_commands_name_real_targets_variables_and_values() -> None:
    assert len(make_commands()) >= 40
    assert [f for c in make_commands() for f in guides.make_findings(c)] == []


@pytest.mark.parametrize(
    ("line", "finding"),
    [
        ("make deploy", "no make target 'deploy'"),
        ("make lab MESH=istio LAB=legacy", "no lab 'legacy' in mesh/istio/labs"),
        ("make up MESH=consul", "MESH=consul is not a mesh"),
        ("make logs S=basket", "S=basket is not a service"),
        ("make load USER=5", "no make variable USER"),
        ("make verify MESH=linkerd LAB=egress", "no lab 'egress' in mesh/linkerd/labs"),
    ],
)
def test_planted_make_mistakes_are_found(line: str, finding: str) -> None:
    (cmd,) = guides.parse_commands(planted_block(line))[0]
    findings = guides.make_findings(cmd)
    assert len(findings) == 1 and finding in findings[0], findings


# Targets whose scripts honour DRY_RUN=1 and act on a cluster: a guide's command of these runs as a dry run.
DRY_RUN_TARGETS = {
    "up",
    "down",
    "mesh",
    "lab",
    "lab-reset",
    "status",
    "logs",
    "secrets",
    "dashboards",
    "verify",
}


def dry_run_cases() -> list[tuple[str, tuple[str, ...]]]:
    """(mesh of the guide's cluster, make arguments) of every documented cluster command, once each; `make
    verify` once per mesh (its dry run collects the live checks, which takes seconds; make_findings checks
    that every LAB it names has its test file)."""
    cases = {}
    verified = set()
    for cmd in make_commands():
        args = tuple(a for a in cmd.argv[1:] if not a.startswith("DRY_RUN="))
        if any(cmd.expanded) or not set(args) & DRY_RUN_TARGETS:
            continue
        settings = dict(a.split("=", 1) for a in args if "=" in a)
        mesh = settings.get("MESH") or next(
            (m for m in guides.meshes() if f"docs/{m}/" in cmd.block.doc.name), "none"
        )
        mesh = mesh if mesh in guides.meshes() else "none"
        if "verify" in args:
            if mesh in verified:
                continue
            verified.add(mesh)
        cases[(mesh, args)] = None
    return sorted(cases)


@pytest.mark.timeout(900)  # about 25 make dry runs: seconds each, minutes on a loaded 2-core machine
@pytest.mark.skipif(REAL_KUBECTL is None, reason="needs kubectl for `kubectl kustomize`")
def test_documented_cluster_commands_run_as_dry_runs(tmp_path: Path) -> None:
    """Each `make` command a guide gives for the cluster, run with DRY_RUN=1 against a (stub) cluster that
    runs the guide's mesh: it must work as written and end saying it changed nothing."""
    stubs = write_stubs(tmp_path / "stubs")
    cases = dry_run_cases()
    assert len(cases) >= 15
    failures = []
    for mesh, args in cases:
        proc = make(stubs, *args, STUB_CLUSTERS="shop", STUB_MESH=mesh)
        last = proc.stdout.splitlines()[-1:] if proc.stdout else []
        if proc.returncode != 0 or last != [DRY_RUN_NOTICE]:
            failures.append(f"make {' '.join(args)} (cluster with mesh {mesh}): {proc.stderr.strip()[-300:]}")
    assert failures == []


# --- kubectl, istioctl, linkerd: parsed by the real CLIs ------------------------------------------------


@pytest.fixture(scope="module")
def unreachable_cluster(tmp_path_factory: pytest.TempPathFactory) -> guides.UnreachableCluster:
    return guides.UnreachableCluster.create(tmp_path_factory.mktemp("cli-home"))


def cli_commands(cli: str) -> list[Command]:
    return [c for c in all_commands() if c.name == cli]


def needs_missing_extension(cmd: Command) -> str | None:
    """`linkerd viz ...` needs the viz extension CLI (linkerd-viz) next to linkerd."""
    if (
        cmd.name == "linkerd"
        and len(cmd.argv) > 1
        and cmd.argv[1] == "viz"
        and not guides.find_cli("linkerd-viz")
    ):
        return "linkerd-viz"
    return None


@pytest.mark.timeout(600)  # up to PARSE_SECONDS per command
@pytest.mark.parametrize("cli", guides.CLUSTER_CLIS)
def test_cluster_commands_parse_with_the_real_cli(
    cli: str, unreachable_cluster: guides.UnreachableCluster
) -> None:
    commands = cli_commands(cli)
    assert commands, f"the guides have no {cli} command"
    binary = guides.find_cli(cli)
    if binary is None:
        pytest.skip(
            f"{cli} is not installed (make tools provides the pinned one in ./bin): {len(commands)} unchecked"
        )
    checkable = [c for c in commands if not needs_missing_extension(c)]
    findings = [f for c in checkable if (f := guides.cli_parse_finding(c, binary, unreachable_cluster))]
    assert findings == []
    if len(checkable) < len(commands):
        pytest.skip(
            f"{len(commands) - len(checkable)} `linkerd viz` commands unchecked: linkerd-viz not installed"
        )


@pytest.mark.parametrize(
    ("line", "parses"),
    [
        ("kubectl -n ecommerce get pods -o wide", True),
        ("kubectl kustomize mesh/istio/overlay", True),
        ("kubectl apply -f mesh/istio/labs/canary/steps/virtual-service-product-95-5.yaml", True),
        ("kubectl -n ecommerce get pods --no-such-flag", False),
        ("kubectl -n ecommerce rolout restart deployment", False),
        ("kubectl apply -f mesh/istio/labs/canary/no-such-file.yaml", False),
    ],
)
def test_kubectl_parsing_tells_a_real_command_from_a_broken_one(
    line: str, parses: bool, unreachable_cluster: guides.UnreachableCluster
) -> None:
    binary = guides.find_cli("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed (make tools provides the pinned one in ./bin)")
    (cmd,) = guides.parse_commands(planted_block(line))[0]
    assert (guides.cli_parse_finding(cmd, binary, unreachable_cluster, seconds=60) is None) is parses


@pytest.mark.parametrize(
    ("cli", "good", "bad"),
    [
        ("istioctl", "istioctl x describe pod x -n ecommerce", "istioctl x describe pod x --no-such-flag"),
        ("linkerd", "linkerd check --proxy -n ecommerce", "linkerd check --no-such-flag"),
    ],
)
def test_mesh_cli_parsing_tells_a_real_command_from_a_broken_one(
    cli: str, good: str, bad: str, unreachable_cluster: guides.UnreachableCluster
) -> None:
    binary = guides.find_cli(cli)
    if binary is None:
        pytest.skip(f"{cli} is not installed (make tools provides the pinned one in ./bin)")
    for line, parses in ((good, True), (bad, False)):
        (cmd,) = guides.parse_commands(planted_block(line))[0]
        assert (guides.cli_parse_finding(cmd, binary, unreachable_cluster, seconds=60) is None) is parses, (
            line
        )


# --- paths, files and links -----------------------------------------------------------------------------


def test_repo_paths_in_commands_and_code_spans_exist() -> None:
    tokens = [
        (word, c.block.where)
        for c in all_commands()
        for word, expanded in zip(c.argv, c.expanded, strict=True)
        if not expanded
    ]
    tokens += [(text, doc.where(token)) for _, doc in DOCS for text, token in guides.code_spans(doc)]
    assert len(tokens) > 500
    assert guides.missing_paths(tokens) == []


def test_planted_missing_paths_are_found() -> None:
    tokens = [
        ("mesh/istio/labs/canary/virtual-service-product-90-10.yaml", "a"),
        ("mesh/istio/labs/canary/virtual-service-product-50-50.yaml", "b"),
        ("--config=kind/cluster.yaml", "c"),
        ("--config=kind/no-cluster.yaml", "d"),
        ("mesh/<mesh>/labs/<lab>", "e"),
        ("https://github.com/linkerd/linkerd-smi", "f"),
    ]
    assert [f.split(":")[0] for f in guides.missing_paths(tokens)] == ["b", "d"]


def applied_files(doc: Doc) -> list[tuple[str, str]]:
    """Bare file names (no folder) in a lab guide's "What this repo applies"."""
    out = []
    for t in guides.sections(doc).get("What this repo applies", []):
        if t.type == "inline":
            for c in t.children or []:
                if c.type == "code_inline" and re.fullmatch(r"[\w.-]+\.(yaml|sh|py|txt)", c.content):
                    out.append((c.content, doc.where(t)))
    return out


def missing_lab_files(doc: Doc) -> list[str]:
    mesh = doc.name.split("/")[1]
    present = {p.name for p in (ROOT / "mesh" / mesh).rglob("*")}
    return [
        f"{where}: `{name}` is no file under mesh/{mesh}/"
        for name, where in applied_files(doc)
        if name not in present
    ]


def test_files_a_lab_guide_says_it_applies_exist() -> None:
    docs = [Doc.read(p) for p in guides.lab_guides()]
    assert sum(len(applied_files(d)) for d in docs) >= 30
    assert [f for d in docs for f in missing_lab_files(d)] == []


def test_planted_renamed_lab_file_is_found() -> None:
    doc = guide(
        "## What this repo applies\n\n- `api-servers-old.yaml`: Servers.\n", "docs/linkerd/security.md"
    )
    assert missing_lab_files(doc) == [
        "docs/linkerd/security.md:3: `api-servers-old.yaml` is no file under mesh/linkerd/"
    ]


def test_relative_links_and_anchors_resolve() -> None:
    assert [f for path, doc in DOCS for f in guides.broken_links(doc, path)] == []


def test_planted_broken_links_are_found() -> None:
    path = ROOT / "docs" / "istio" / "planted.md"
    doc = guide(
        "# T\n\n## Steps\n\n[ok](../lesson-corrections.md#tracing) [self](#steps) [gone](no-such.md)"
        " [anchor](../lesson-corrections.md#no-such-heading)\n",
        "docs/istio/planted.md",
    )
    findings = guides.broken_links(doc, path)
    assert len(findings) == 2
    assert "no-such.md points to no file" in findings[0] and "no heading #no-such-heading" in findings[1]


# --- structure --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", guides.lab_guides(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_lab_guide_has_the_same_sections(path: Path) -> None:
    assert [text for _, text, _ in guides.headings(Doc.read(path), level=2)] == guides.LAB_SECTIONS


@pytest.mark.parametrize("mesh", guides.meshes())
def test_each_mesh_readme_starts_with_a_start_here_sequence(mesh: str) -> None:
    doc = Doc.read(ROOT / "docs" / mesh / "README.md")
    h2 = [text for _, text, _ in guides.headings(doc, level=2)]
    assert h2[0] == "Start here"
    section = guides.sections(doc)["Start here"]
    assert any(t.type == "ordered_list_open" for t in section)
    linked = {
        href.split("#")[0]
        for t in section
        if t.type == "inline"
        for c in t.children or []
        if c.type == "link_open"
        for href in [str(c.attrs["href"])]
    }
    assert {p.name for p in guides.lab_guides() if p.parent.name == mesh} <= linked
    commands = " ".join(t.content for t in section if t.type == "fence")
    for step in (f"make up MESH={mesh}", f"make verify MESH={mesh}", f"make lab-reset MESH={mesh}"):
        assert step in commands, step


# --- sample output --------------------------------------------------------------------------------------


def test_sample_outputs_say_whether_they_are_captured_or_an_expected_shape() -> None:
    docs = [Doc.read(p) for p in guides.lab_guides()]
    assert sum(len(guides.samples(d)) for d in docs) >= 15
    assert [f for d in docs for f in guides.unlabelled_samples(d)] == []
    for d in docs:  # every guide says something about what you should see, and how honest it is
        section = guides.sections(d)["What you should see"]
        text = " ".join(t.content for t in section if t.type == "inline")
        assert any(label in text for label in guides.SAMPLE_LABELS), d.name


def test_planted_unlabelled_sample_is_found() -> None:
    doc = guide("## What you should see\n\nThe canary answers:\n\n```text\nproduct/v2\n```\n")
    assert guides.unlabelled_samples(doc) == [
        "docs/planted.md:5: a sample output must say whether it is Captured or Expected shape"
    ]


def captured_samples() -> list[tuple[guides.Sample, str]]:
    out = []
    for path in guides.lab_guides():
        for sample in guides.samples(Doc.read(path)):
            if m := guides.CAPTURED.match(sample.label):
                out.append((sample, m.group(1)))
    return out


def make_argv(command: str) -> list[str]:
    """The arguments of a documented capture command; only make dry runs are re-run here."""
    argv = command.split()
    assert argv[0] == "make" and "DRY_RUN=1" in argv, f"only make dry runs are re-run here: {command}"
    return argv[1:]


def capture(stubs: Path, args: list[str]) -> str:
    """What the command prints on a machine without a cluster, as a terminal shows it, normalized."""
    proc = make(stubs, *args, STUB_CLUSTERS="", merge_stderr=True)
    return guides.normalize_capture(proc.stdout)


@pytest.mark.timeout(600)  # one make dry run per captured sample
@pytest.mark.skipif(REAL_KUBECTL is None, reason="needs kubectl for `kubectl kustomize`")
def test_captured_samples_are_what_the_command_prints_today(tmp_path: Path) -> None:
    stubs = write_stubs(tmp_path / "stubs")
    captures = captured_samples()
    assert len(captures) >= 10
    stale = []
    for sample, command in captures:
        actual = capture(stubs, make_argv(command))
        if actual != sample.block.text:
            stale.append(f"{sample.block.where}: `{command}` now prints:\n{actual}")
    assert stale == [], "\n".join(stale)


def test_planted_stale_capture_is_found(tmp_path: Path) -> None:
    stubs = write_stubs(tmp_path / "stubs")
    output = capture(stubs, ["lab", "LAB=canary", "MESH=istio", "DRY_RUN=1"])
    assert output.endswith(DRY_RUN_NOTICE + "\n")
    assert "apply --openapi-patch=false -k ./.cache/lab/istio-canary" in output
    assert output != output.replace("istio-canary", "istio-canary-old")  # a renamed lab would not match


# --- the repo stands alone, and claims nothing it does not do ----------------------------------------------

OUTSIDE = ("../shared", "mesh-facts", "/work/")


def outside_references(doc: Doc) -> list[str]:
    return [
        f"{doc.name}:{n}: `{word}` points outside the repo (a student's clone has no such file)"
        for n, line in enumerate(doc.text.splitlines(), start=1)
        for word in OUTSIDE
        if word in line
    ]


def test_guides_point_to_nothing_outside_the_repo() -> None:
    assert [f for _, doc in DOCS for f in outside_references(doc)] == []


def test_planted_outside_reference_is_found() -> None:
    assert outside_references(guide("Facts: `../shared/notes/mesh-facts.md`.\n"))


TRACING_WORDS = re.compile(r"\b(traces?|tracing|traced|spans?)\b", re.I)
NOT_TRACING = re.compile(r"\btrace (context|id)s?\b|\btracing headers\b", re.I)
NEGATIONS = re.compile(r"\b(not|no|none|empty|nothing|never|off|yet|until|without|disabled|once)\b", re.I)


def tracing_set_up(root: Path = ROOT) -> bool:
    """Does any manifest enable tracing: an Istio Telemetry resource, or an OTLP export address?"""
    for path in [*root.glob("k8s/**/*.yaml"), *root.glob("mesh/**/*.yaml")]:
        text = path.read_text()
        if re.search(r"^kind: Telemetry$", text, re.M) or "OTEL_EXPORTER_OTLP" in text:
            return True
    return False


def tracing_claims(doc: Doc) -> list[str]:
    """Paragraphs, list items, table rows and shell comments that talk about traces without saying they
    are not there yet: claims the manifests would have to make true."""
    units = []
    for i, t in enumerate(doc.tokens):
        if t.type == "inline" and doc.tokens[i - 1].type != "heading_open":
            units += [(line, doc.where(t)) for line in t.content.split("\n") if "|" in line] or [
                (t.content, doc.where(t))
            ]
        elif t.type == "fence" and t.info.strip() in guides.SHELL_INFOS:
            units += [(line, doc.where(t)) for line in t.content.splitlines() if "#" in line]
    return [
        f"{where}: claims tracing: {text.strip()[:120]}"
        for text, where in units
        if TRACING_WORDS.search(NOT_TRACING.sub("", text)) and not NEGATIONS.search(text)
    ]


def test_no_guide_claims_tracing_the_manifests_do_not_set_up() -> None:
    if tracing_set_up():
        pytest.skip("a manifest sets up tracing: tracing claims are the tracing lab's to check")
    assert [f for _, doc in DOCS for f in tracing_claims(doc)] == []


# What a guide said while nothing traced; wrong (and sends students away from Jaeger) once tracing is set up.
TRACING_OFF = re.compile(
    r"(tracing|jaeger)[^.|]*\b(is not enabled|not enabled yet|stays empty|is empty)|no tracing yet", re.I
)


def tracing_off_claims(doc: Doc) -> list[str]:
    return [
        f"{doc.name}:{number}: says tracing is off: {line.strip()[:120]}"
        for number, line in enumerate(doc.text.splitlines(), 1)
        if TRACING_OFF.search(line)
    ]


def test_no_guide_says_tracing_is_off_while_the_manifests_set_it_up() -> None:
    if not tracing_set_up():
        pytest.skip("no manifest sets up tracing: saying so is right")
    assert [f for _, doc in DOCS for f in tracing_off_claims(doc)] == []


def test_planted_tracing_off_claims_are_found() -> None:
    doc = guide(
        "Kiali, Grafana; Jaeger stays empty: tracing is not enabled yet.\n\n"
        "| observe | Jaeger (no tracing yet) |\n|---|---|\n\n"
        "Tracing: a Telemetry resource selects the jaeger provider.\n"
    )
    assert len(tracing_off_claims(doc)) == 2


def test_planted_tracing_claims_are_found() -> None:
    doc = guide(
        "The demo profile traces 100 % of requests.\n\n"
        "| observe | Jaeger shows one trace per checkout |\n|---|---|\n\n"
        "Services forward the W3C trace context.\n\n"
        "Jaeger stays empty: tracing is not enabled yet.\n\n"
        "```bash\nmake dashboards MESH=istio   # traces in Jaeger\n```\n"
    )
    assert len(tracing_claims(doc)) == 3
    assert not tracing_set_up(ROOT / "docs")  # no manifests there
