"""The ``evbus`` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence

from evbus import bootstrap
from evbus.embedded_nats import PortInUse
from evbus.passwords import hash_password
from evbus.settings import Settings, SettingsError, load
from schemas import subjects
from schemas.records import StationRecord, TokenRecord, encode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evbus", description="Event-sourced message bus for EV charging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="run the whole stack in one process (embedded nats-server unless EVBUS_NATS_URL)")
    commands.add_parser("gateway", help="run the OCPP gateway (needs EVBUS_NATS_URL)")
    commands.add_parser("processors", help="run the CSMS processor (needs EVBUS_NATS_URL)")

    station = commands.add_parser("station", help="register a station and set its password (OCPP security profile 1)")
    station.add_argument("station_id")
    station.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    station.add_argument("--no-password", action="store_true", help="register without a password")
    station.add_argument("--description", default="")

    token = commands.add_parser("token", help="add or change an idTag in the token store")
    token.add_argument("id_tag")
    token.add_argument("--status", default="Accepted", choices=["Accepted", "Blocked", "Expired", "Invalid"])
    token.add_argument("--expiry-date", help="RFC 3339, e.g. 2027-01-01T00:00:00Z")
    token.add_argument("--parent-id-tag")

    args = parser.parse_args(argv)
    try:
        settings = load()
    except SettingsError as exc:
        print(f"evbus: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the gateway logs connections with their station id; websockets' own lines would repeat them without it
    logging.getLogger("websockets.server").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.command == "up":
            asyncio.run(bootstrap.run(settings))
        elif args.command in bootstrap.ROLES:
            if not settings.nats_url:
                print(
                    f"evbus {args.command}: set EVBUS_NATS_URL (only `evbus up` starts its own nats-server)",
                    file=sys.stderr,
                )
                return 2
            asyncio.run(bootstrap.run(settings, roles=[args.command], embedded=False))
        elif args.command == "station":
            asyncio.run(_put_station(settings, args))
        elif args.command == "token":
            asyncio.run(_put_token(settings, args))
    except PortInUse as exc:
        print(f"evbus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _put_station(settings: Settings, args: argparse.Namespace) -> None:
    password_hash = None
    if not args.no_password:
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("station password: ")
        if not password:
            raise SystemExit("evbus station: empty password (use --no-password to register without one)")
        password_hash = hash_password(password)
    record = StationRecord(password_hash=password_hash, description=args.description)
    await _put(settings, subjects.BUCKET_REGISTRY, args.station_id, encode(record))
    print(f"station {args.station_id!r} registered" + (" with a password" if password_hash else ""))


async def _put_token(settings: Settings, args: argparse.Namespace) -> None:
    record = TokenRecord(
        id_tag=args.id_tag, status=args.status, expiry_date=args.expiry_date, parent_id_tag=args.parent_id_tag
    )
    await _put(settings, subjects.BUCKET_TOKENS, args.id_tag, encode(record))
    print(f"token {args.id_tag!r}: {args.status}")


async def _put(settings: Settings, bucket: str, key: str, value: bytes) -> None:
    async with bootstrap.bus(settings, embedded=False) as b:
        kv = await b.nc.jetstream().key_value(bucket)
        await kv.put(subjects.kv_key(key), value)


if __name__ == "__main__":
    sys.exit(main())
