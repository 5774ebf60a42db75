"""Checks of the lab lifecycle both meshes share (`make lab`, `make lab-reset`)."""

from __future__ import annotations

from scripts.k8svalidate.checks import Checker, Target
from scripts.k8svalidate.resources import Doc, key, labels
from scripts.k8svalidate.schemas import describe


def lab_label_errors(lab: str, docs: list[Doc], base_docs: list[Doc]) -> list[str]:
    """Every resource a lab ADDS (not one it only patches) carries `lab: <lab>`.

    `make lab-reset` deletes lab resources by that label; an unlabelled one would outlive the reset.
    `docs` are the lab rendered on its mesh overlay, `base_docs` the overlay alone.
    """
    before = {key(d) for d in base_docs}
    return [
        f"{describe(d)}: added by lab {lab} but has no label lab: {lab}"
        for d in docs
        if key(d) not in before and labels(d).get("lab") != lab
    ]


def _one_lab(target: Target) -> bool:
    return len(target.labs) == 1 and len(target.dirs) == 1


CHECKERS = [
    Checker(
        "labs.lab_label_errors",
        lambda t: lab_label_errors(t.labs[0], t.docs, t.base_docs()),
        when=_one_lab,
    ),
]
