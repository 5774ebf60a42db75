"""The checkers `make validate` runs on every entry point, and what each one looks at.

A checker is a function of rendered documents that returns human-readable findings ([] = fine). The mesh
checkers (istio.py, linkerd.py) run on the entry points of their mesh only; the generic ones on all.
`python -m scripts.k8svalidate` prints every checker it ran and how many findings it had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from scripts.k8svalidate.render import REPO_ROOT, base_for_component, render
from scripts.k8svalidate.resources import Doc


@cache
def _render_cached(directory: str) -> tuple[Doc, ...]:
    return tuple(render(directory))


@dataclass
class Target:
    """One entry point of `make validate`: its name, kustomize directories and rendered documents."""

    name: str
    dirs: tuple[str, ...]
    docs: list[Doc] = field(repr=False)

    def _parts(self) -> tuple[str, ...]:
        first = Path(self.dirs[0])
        rel = first.resolve().relative_to(REPO_ROOT) if first.is_absolute() else first
        return rel.parts

    @property
    def mesh(self) -> str | None:
        """`istio` or `linkerd` for mesh/<mesh>/... entry points, None for k8s/..."""
        parts = self._parts()
        return parts[1] if len(parts) >= 2 and parts[0] == "mesh" else None

    @property
    def labs(self) -> list[str]:
        """The lab Components this entry point renders (mesh/<mesh>/labs/<lab>), in order."""
        out = []
        for d in self.dirs:
            parts = Path(d).parts
            if len(parts) >= 4 and parts[0] == "mesh" and parts[2] == "labs":
                out.append(parts[3])
        return out

    def base_docs(self) -> list[Doc]:
        """The documents of the Kustomization the Components render on (the mesh overlay)."""
        return list(_render_cached(str(base_for_component(self.dirs[0]))))


@dataclass(frozen=True)
class Checker:
    """A named check: how to run it, the mesh whose entry points it runs on (None: every entry point), and
    optionally which of those it is about (e.g. only entry points that contain Linkerd Servers)."""

    name: str
    run: Callable[[Target], list[str]]
    mesh: str | None = None
    when: Callable[[Target], bool] | None = None

    def applies(self, target: Target) -> bool:
        if self.mesh is not None and self.mesh != target.mesh:
            return False
        return self.when is None or self.when(target)


def on_docs(
    fn: Callable[[list[Doc]], list[str]],
    mesh: str | None = None,
    when: Callable[[list[Doc]], bool] | None = None,
) -> Checker:
    """A Checker for a function of the rendered documents; `when` limits it to documents it is about."""
    prefix = f"{mesh}." if mesh else ""
    return Checker(
        f"{prefix}{fn.__name__}",
        lambda target: fn(target.docs),
        mesh,
        None if when is None else (lambda target: when(target.docs)),
    )


def all_checkers() -> list[Checker]:
    """Every checker, generic first, then per mesh (the order `make validate` prints them in)."""
    from scripts.k8svalidate import crossref, istio, labs, linkerd, retries, schemas

    return [
        on_docs(schemas.validate_docs),
        on_docs(crossref.crossref_errors),
        *labs.CHECKERS,
        *istio.CHECKERS,
        *linkerd.CHECKERS,
        *retries.CHECKERS,
    ]
