"""Catalog REST API: products (paged, filtered, searched), one product, categories. No token needed."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from services.kit import ApiError
from services.kit.deps import AppSettings, Db
from services.product import store
from services.product.catalog import CATEGORIES, CATEGORY_IDS
from services.product.settings import Settings

router = APIRouter(tags=["catalog"])

# v2 (the canary build) shows badges; v1 leaves the field out entirely.
BADGE_VERSION = "v2"


class Product(BaseModel):
    id: str = Field(examples=["cast-iron-skillet"])
    name: str = Field(examples=["Cast-Iron Skillet 26 cm"])
    description: str
    category: str = Field(examples=["kitchen"])
    price_cents: int = Field(examples=[3995])
    currency: str = Field(examples=["EUR"])
    stock: int = Field(examples=[35], description="units available now")
    image: str = Field(examples=["/products/images/kitchen.svg"], description="path on this service")
    icon: str = Field(examples=["🍳"])
    weight_grams: int | None = Field(
        default=None,
        examples=[2600],
        description="one unit as shipped, grams (order's shipping quote); null only for a product stored "
        "before weights existed, until this version has seeded the catalog",
    )
    badge: str | None = Field(
        default=None, examples=["bestseller"], description="only with VERSION=v2: new, staff pick, ..."
    )


class ProductPage(BaseModel):
    items: list[Product]
    page: int = Field(examples=[1])
    page_size: int = Field(examples=[20])
    total: int = Field(examples=[26])


class Category(BaseModel):
    id: str = Field(examples=["kitchen"])
    name: str = Field(examples=["Kitchen"])
    icon: str = Field(examples=["🍳"])
    image: str = Field(examples=["/products/images/kitchen.svg"])
    product_count: int = Field(examples=[5])


class CategoryList(BaseModel):
    items: list[Category]


def _product(doc: dict[str, Any], version: str) -> Product:
    fields = {
        "id": doc["_id"],
        "name": doc["name"],
        "description": doc["description"],
        "category": doc["category"],
        "price_cents": doc["price_cents"],
        "currency": doc["currency"],
        "stock": doc["stock"],
        "image": doc["image"],
        "icon": doc["icon"],
        "weight_grams": doc.get("weight_grams"),
    }
    if version == BADGE_VERSION:
        fields["badge"] = doc.get("badge")  # set (even when null), so v2 always shows the field
    return Product(**fields)


@router.get(
    "/products",
    response_model=ProductPage,
    response_model_exclude_unset=True,
    summary="List products, paged, optionally by category and name",
)
async def list_products(
    db: Db,
    settings: AppSettings[Settings],
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    category: Annotated[str | None, Query(max_length=64, examples=["kitchen"])] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="case-insensitive part of the name", examples=["tea"])
    ] = None,
) -> ProductPage:
    docs, total = await store.list_products(db, page=page, page_size=page_size, category=category, q=q)
    version = settings.version
    return ProductPage(
        items=[_product(doc, version) for doc in docs], page=page, page_size=page_size, total=total
    )


@router.get(
    "/products/{product_id}",
    response_model=Product,
    response_model_exclude_unset=True,
    summary="One product",
    responses={404: {"description": "unknown product"}},
)
async def get_product(
    db: Db,
    settings: AppSettings[Settings],
    product_id: Annotated[str, Path(max_length=128, examples=["cast-iron-skillet"])],
) -> Product:
    doc = await store.get_product(db, product_id)
    if doc is None:
        raise ApiError(404, "product_not_found", f"no product with id {product_id!r}", {"id": product_id})
    return _product(doc, settings.version)


@router.get("/categories", response_model=CategoryList, summary="Categories with their product counts")
async def list_categories(db: Db) -> CategoryList:
    counts = await store.category_counts(db)
    return CategoryList(
        items=[
            Category(id=c.id, name=c.name, icon=c.icon, image=c.image, product_count=counts.get(c.id, 0))
            for c in CATEGORIES
        ]
    )


@cache
def _image(category: str) -> bytes:
    return resources.files("services.product.static").joinpath(f"{category}.svg").read_bytes()


# Under /products so the mesh rule "frontend may GET /products*" covers the images too.
@router.get(
    "/products/images/{category}.svg",
    response_class=Response,
    summary="A category's image (SVG)",
    responses={200: {"content": {"image/svg+xml": {}}}, 404: {"description": "unknown image"}},
)
async def category_image(category: Annotated[str, Path(max_length=64, examples=["kitchen"])]) -> Response:
    if category not in CATEGORY_IDS:
        raise ApiError(404, "image_not_found", f"no image for {category!r}")
    return Response(
        _image(category), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )
