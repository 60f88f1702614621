"""What operator commands left behind at the stations: reservations and local authorization lists.

(The commands themselves, ``/api/commands``, are in :mod:`api.commands`.)
"""

from __future__ import annotations

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from api.monitoring import Limit, Offset, listing, page
from api.services import Svc
from projections import queries, views


@get("/api/reservations", operation_id="listReservations", tags=["operations"])
async def list_reservations(
    svc: Svc,
    identity: FromQuery[str | None] = None,
    status: FromQuery[views.ReservationStatus | None] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[list[views.Reservation]]:
    """Reservations made with ReserveNow, newest first. An accepted reservation whose expiry has
    passed shows as ``expired``, whether or not the station said so."""
    now = svc.now()
    rows, total = await svc.projection.read(
        lambda cur: queries.reservations(cur, now, identity, status, page(limit, offset))
    )
    return listing(rows, total)


@get("/api/stations/{identity:str}/local-list", operation_id="getLocalList", tags=["operations"])
async def get_local_list(svc: Svc, identity: FromPath[str]) -> views.LocalList:
    """The station's local authorization list as the SendLocalList updates it accepted left it,
    and the version it last reported (GetLocalListVersion). Empty when none was ever sent."""
    found = await svc.projection.read(lambda cur: queries.local_list(cur, identity))
    if found is None:
        raise NotFoundException(f"unknown station {identity!r}")
    return found


ROUTES = [list_reservations, get_local_list]
