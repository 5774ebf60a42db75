"""The frontend's Jinja2 attribute lookup (services/frontend/rendering.py `_getattr`): dict fields first,
as fast as a subscript, with Jinja2's own results everywhere else."""

from __future__ import annotations

from types import SimpleNamespace

from services.frontend.rendering import templates


def render(source: str, **context: object) -> str:
    return templates.env.from_string(source).render(**context)


def test_a_dicts_fields_render_as_before() -> None:
    product = {"name": "Mug", "price_cents": 1001, "badge": None}
    assert render("{{ p.name }} {{ p.price_cents|money }} {{ p.badge or '' }}", p=product) == "Mug €10.01 "


def test_a_missing_field_is_undefined_as_before() -> None:
    assert render("[{{ p.stock }}]{% if p.stock is defined %}defined{% endif %}", p={"name": "Mug"}) == "[]"


def test_a_dicts_own_methods_win_over_its_keys_as_in_jinja2() -> None:
    data = {"items": [1, 2], "get": "a key"}
    assert render("{{ d.items() | list | length }} {{ d.get('get') }}", d=data) == "2 a key"


def test_objects_and_dict_subclasses_keep_jinja2s_lookup() -> None:
    class Record(dict[str, str]):
        name = "attribute"

    assert render("{{ o.name }} {{ r.name }}", o=SimpleNamespace(name="object"), r=Record(name="key")) == (
        "object attribute"
    )
