"""user HTTP API: the caller's profile and addresses, and the admin user listing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.contracts import SavedAddress
from services.kit import ApiError
from services.kit.db import Database
from services.kit.deps import AdminUser, AppSettings, CurrentUser, Db
from services.kit.jwt import Principal
from services.user import store
from services.user.settings import Settings

router = APIRouter(tags=["users"])

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()\-]{4,24}$")]
AddressId = Annotated[str, Path(min_length=1, max_length=64)]


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Text100 = Field(examples=["Ada Lovelace"])
    phone: Phone | None = Field(None, examples=["+31 20 123 4567"], description="omit or null to clear")


class AddressOut(BaseModel):
    id: str = Field(examples=["0b8f3c2a9d4e4f6a8b1c2d3e4f5a6b7c"])
    label: str
    name: str
    street: str
    city: str
    postal_code: str
    country: str
    created_at: str = Field(examples=["2026-01-31T12:00:00.000Z"])
    updated_at: str


class ProfileOut(BaseModel):
    id: str = Field(examples=["6f1c0c1e4b7a4d3e9a0f2b8c7d6e5f40"], description="the token's `sub`")
    email: str = Field(examples=["ada@example.com"])
    name: str = Field(examples=["Ada Lovelace"])
    phone: str | None = Field(examples=["+31 20 123 4567"])
    created_at: str = Field(examples=["2026-01-31T12:00:00.000Z"])
    updated_at: str


class MeOut(ProfileOut):
    groups: list[str] = Field(examples=[["customer"]], description="from the access token")


class ProfilePage(BaseModel):
    items: list[ProfileOut]
    page: int
    page_size: int
    total: int


def _token_name(caller: Principal) -> str:
    """The `name` claim of the token, else the email's local part."""
    name = caller.name.strip()
    return name[:100] if name else caller.email.split("@")[0]


def _profile(doc: dict[str, Any]) -> ProfileOut:
    # `phone` may be absent: FerretDB 1.x drops null fields of an upsert's $setOnInsert (docs/ferretdb.md).
    fields = {k: doc[k] for k in ("email", "name", "created_at", "updated_at")}
    return ProfileOut(id=doc["_id"], phone=doc.get("phone"), **fields)


def _me(doc: dict[str, Any], caller: Principal) -> MeOut:
    return MeOut(**_profile(doc).model_dump(), groups=list(caller.groups))


async def _ensure_profile(db: Database, caller: Principal) -> dict[str, Any]:
    return await store.get_or_create(db, caller.sub, caller.email, _token_name(caller))


def _address_not_found() -> ApiError:
    # Same answer whether the id is unknown or belongs to someone else: other users' data stays invisible.
    return ApiError(404, "address_not_found", "no such address")


@router.get("/users/me", response_model=MeOut, summary="My profile (created from the token on first call)")
async def get_me(db: Db, caller: CurrentUser) -> MeOut:
    return _me(await _ensure_profile(db, caller), caller)


@router.put("/users/me", response_model=MeOut, summary="Update my name and phone")
async def put_me(body: ProfileUpdate, db: Db, caller: CurrentUser) -> MeOut:
    doc = await store.update_profile(db, caller.sub, caller.email, body.name, body.phone)
    return _me(doc, caller)


@router.get("/users/me/addresses", response_model=list[AddressOut], summary="My addresses, oldest first")
async def list_addresses(db: Db, caller: CurrentUser) -> list[AddressOut]:
    doc = await _ensure_profile(db, caller)
    return [AddressOut(**a) for a in doc.get("addresses", [])]


@router.post(
    "/users/me/addresses",
    status_code=201,
    response_model=AddressOut,
    summary="Add an address",
    responses={409: {"description": "address limit reached"}},
)
async def add_address(
    body: SavedAddress, db: Db, caller: CurrentUser, settings: AppSettings[Settings]
) -> AddressOut:
    await _ensure_profile(db, caller)
    address = await store.add_address(db, caller.sub, body.model_dump(), settings.max_addresses)
    if address is None:
        raise ApiError(
            409,
            "address_limit",
            f"at most {settings.max_addresses} addresses per user; delete one first",
            details={"max_addresses": settings.max_addresses},
        )
    return AddressOut(**address)


@router.put(
    "/users/me/addresses/{address_id}",
    response_model=AddressOut,
    summary="Replace an address",
    responses={404: {"description": "address_not_found"}},
)
async def put_address(address_id: AddressId, body: SavedAddress, db: Db, caller: CurrentUser) -> AddressOut:
    address = await store.replace_address(db, caller.sub, address_id, body.model_dump())
    if address is None:
        raise _address_not_found()
    return AddressOut(**address)


@router.delete(
    "/users/me/addresses/{address_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an address",
    responses={404: {"description": "address_not_found"}},
)
async def delete_address(address_id: AddressId, db: Db, caller: CurrentUser) -> Response:
    if not await store.delete_address(db, caller.sub, address_id):
        raise _address_not_found()
    return Response(status_code=204)


@router.get("/users", response_model=ProfilePage, summary="All users, oldest first (group `admin` only)")
async def list_users(
    db: Db,
    _: AdminUser,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProfilePage:
    docs, total = await store.list_profiles(db, page, page_size)
    return ProfilePage(items=[_profile(d) for d in docs], page=page, page_size=page_size, total=total)
