"""Routes of the state operators manage and the CSMS acts on: the token store (Authorize answers)
and stored charging profiles. Both live in JetStream KV; reads come from this process's mirrors."""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Response, delete, get, post, put
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_503_SERVICE_UNAVAILABLE

from api.monitoring import Limit, Offset, listing
from api.services import Services, Svc
from evbus.profiles import ProfileConflict, ProfileError, ProfileNotFound, ProfileStore
from evbus.tokens import TokenError, TokenStore, token_record
from processors.commands.named import profile_payload
from schemas.charging import ChargingProfile
from schemas.ocpp_j import Protocol
from schemas.records import TokenRecord, TokenStatus

MAX_TOKENS: Final = 10_000  # per PUT
MAX_PROBLEMS: Final = 100  # listed in one error answer


def _token_store(svc: Services) -> TokenStore:
    if svc.tokens is None:
        raise HTTPException(status_code=HTTP_503_SERVICE_UNAVAILABLE, detail="the token store is not open")
    return svc.tokens


def _profile_store(svc: Services) -> ProfileStore:
    if svc.profiles is None:
        raise HTTPException(status_code=HTTP_503_SERVICE_UNAVAILABLE, detail="the charging profiles are not open")
    return svc.profiles


# --- tokens -----------------------------------------------------------------------------------


class Token(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", forbid_unknown_fields=True):
    id_tag: Annotated[str, msgspec.Meta(description="1 to 36 printable characters, no whitespace")]
    status: TokenStatus
    expiry_date: Annotated[str | None, msgspec.Meta(description="RFC 3339; stored in UTC")] = None
    parent_id_tag: str | None = None


class Upserted(msgspec.Struct):
    upserted: int


class DeletedToken(msgspec.Struct):
    deleted: str


def _view(record: TokenRecord) -> Token:
    return Token(
        id_tag=record.id_tag,
        status=record.status,
        expiry_date=record.expiry_date,
        parent_id_tag=record.parent_id_tag,
    )


def _records(tokens: list[Token]) -> list[TokenRecord]:
    """Every token checked and normalised, or a 422 listing what is wrong (nothing is written)."""
    records: list[TokenRecord] = []
    wrong: list[dict[str, str]] = []
    seen: set[str] = set()
    for n, token in enumerate(tokens):
        try:
            records.append(token_record(token.id_tag, token.status, token.expiry_date, token.parent_id_tag))
        except TokenError as exc:
            wrong.append({"at": f"$[{n}]", "idTag": token.id_tag, "problem": str(exc)})
            continue
        if token.id_tag in seen:
            wrong.append({"at": f"$[{n}]", "idTag": token.id_tag, "problem": "idTag given twice"})
        seen.add(token.id_tag)
    if wrong:
        first = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise HTTPException(
            status_code=422,
            detail=f"invalid token at {first['at']}: {first['problem']}{more}; nothing was stored",
            extra=wrong[:MAX_PROBLEMS],
        )
    return records


@get("/api/tokens", operation_id="listTokens", tags=["tokens"])
async def list_tokens(
    svc: Svc, status: FromQuery[TokenStatus | None] = None, limit: Limit = 100, offset: Offset = 0
) -> Response[list[Token]]:
    """The token store, sorted by idTag. ``status`` is the stored one (a past expiryDate makes an
    Accepted token answer Expired all the same)."""
    records = _token_store(svc).all()
    if status is not None:
        records = [r for r in records if r.status == status]
    return listing([_view(r) for r in records[offset : offset + limit]], len(records))


@get("/api/tokens/{id_tag:str}", operation_id="getToken", tags=["tokens"])
async def get_token(svc: Svc, id_tag: FromPath[str]) -> Token:
    record = _token_store(svc).get(id_tag)
    if record is None:
        raise NotFoundException(f"unknown idTag {id_tag!r}")
    return _view(record)


@put("/api/tokens", operation_id="putTokens", tags=["tokens"], status_code=200)
async def put_tokens(svc: Svc, data: JSONBody[list[Token] | Token]) -> Upserted:
    """Add or change tokens: an array of up to 10 000 (or one object). Every entry is checked
    before any is written; the CSMS answers Authorize with them within milliseconds."""
    tokens = data if isinstance(data, list) else [data]
    if len(tokens) > MAX_TOKENS:
        raise HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"at most {MAX_TOKENS} tokens per request, got {len(tokens)}",
        )
    records = _records(tokens)
    store = _token_store(svc)
    try:
        return Upserted(upserted=await store.put(records))
    except Exception as exc:  # NATS unreachable or timed out: some tokens may have been written
        raise HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the token store did not take every token ({type(exc).__name__}); send them again",
        ) from exc


@delete("/api/tokens/{id_tag:str}", operation_id="deleteToken", tags=["tokens"], status_code=200)
async def delete_token(svc: Svc, id_tag: FromPath[str]) -> DeletedToken:
    if not await _token_store(svc).delete(id_tag):
        raise NotFoundException(f"unknown idTag {id_tag!r}")
    return DeletedToken(deleted=id_tag)


# --- charging profiles ------------------------------------------------------------------------


class DeletedProfile(msgspec.Struct):
    deleted: int


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, ProfileError):
        return HTTPException(status_code=422, detail=f"invalid charging profile: {exc}", extra=exc.problems)
    if isinstance(exc, ProfileConflict):
        return HTTPException(status_code=409, detail=str(exc))
    return NotFoundException(str(exc))


@get("/api/charging-profiles", operation_id="listChargingProfiles", tags=["charging profiles"])
async def list_profiles(svc: Svc, limit: Limit = 100, offset: Offset = 0) -> Response[list[ChargingProfile]]:
    """Stored charging profiles, sorted by id."""
    profiles = _profile_store(svc).all()
    return listing(profiles[offset : offset + limit], len(profiles))


@get("/api/charging-profiles/{profile_id:int}", operation_id="getChargingProfile", tags=["charging profiles"])
async def get_profile(
    svc: Svc, profile_id: FromPath[int], protocol: FromQuery[Protocol | None] = None
) -> ChargingProfile | dict[str, Any]:
    """The stored profile, or with ``protocol`` what a station of that version is sent
    (1.6 ``csChargingProfiles``, 2.x ``ChargingProfileType``)."""
    profile = _profile_store(svc).get(profile_id)
    if profile is None:
        raise NotFoundException(f"no charging profile {profile_id}")
    return profile if protocol is None else profile_payload(profile, protocol)


@post("/api/charging-profiles", operation_id="createChargingProfile", tags=["charging profiles"], status_code=201)
async def create_profile(svc: Svc, data: JSONBody[ChargingProfile]) -> Response[ChargingProfile]:
    """Store a profile (1.6 ``csChargingProfiles`` shape plus ``description``). Without an ``id``
    evbus allocates one; a taken id or description is a 409."""
    try:
        stored = await _profile_store(svc).create(data)
    except (ProfileError, ProfileConflict) as exc:
        raise _refused(exc) from None
    return Response(stored, status_code=201, headers={"Location": f"/api/charging-profiles/{stored.id}"})


@put("/api/charging-profiles/{profile_id:int}", operation_id="replaceChargingProfile", tags=["charging profiles"])
async def replace_profile(svc: Svc, profile_id: FromPath[int], data: JSONBody[ChargingProfile]) -> ChargingProfile:
    """Replace stored profile ``profile_id`` (the body's ``id``, if any, must be the same)."""
    if data.id is not None and data.id != profile_id:
        raise HTTPException(status_code=422, detail=f"the body's id {data.id} is not {profile_id}")
    try:
        return await _profile_store(svc).replace(msgspec.structs.replace(data, id=profile_id))
    except (ProfileError, ProfileConflict, ProfileNotFound) as exc:
        raise _refused(exc) from None


@delete(
    "/api/charging-profiles/{profile_id:int}",
    operation_id="deleteChargingProfile",
    tags=["charging profiles"],
    status_code=200,
)
async def delete_profile(svc: Svc, profile_id: FromPath[int]) -> DeletedProfile:
    if not await _profile_store(svc).delete(profile_id):
        raise NotFoundException(f"no charging profile {profile_id}")
    return DeletedProfile(deleted=profile_id)


ROUTES = [
    list_tokens,
    get_token,
    put_tokens,
    delete_token,
    list_profiles,
    get_profile,
    create_profile,
    replace_profile,
    delete_profile,
]
