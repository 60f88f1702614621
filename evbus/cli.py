"""The ``evbus`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

from api.stations import password_problem
from evbus import bootstrap, replay
from evbus.clock import parse_moment, utc_now
from evbus.embedded_nats import PortInUse
from evbus.passwords import hash_password
from evbus.settings import Settings, SettingsError, load
from evbus.tokens import TokenError, token_record
from projections.rebuild import RebuildError, rebuild
from schemas import subjects
from schemas.records import StationRecord, UserRecord, encode

T = TypeVar("T")

# Every connection holds ~80 objects the cyclic garbage collector tracks (websockets' connection,
# protocol, tasks and futures, our subscription). With CPython's default thresholds (700, 10, 10),
# 10 000 stations connecting meant 1 500 collections, nine of them full ones over ~1 M objects at
# up to 0.7 s each, in which no handshake moves: a third of the gateway's CPU during the ramp
# (bench/RESULTS.md, connection capacity). Young collections every 10 000 allocations instead take
# that to ~100 collections and one full one, while garbage that closed connections leave in the
# oldest generation is still reclaimed within about a million allocations.
GC_THRESHOLDS: Final = (10_000, 10, 10)


def collect_less_often() -> None:
    """Raise the garbage collector's thresholds to :data:`GC_THRESHOLDS` (never lower them). Every
    evbus command starts with it: the gateway needs it most, the simulator's 10 000 stations too."""
    current = gc.get_threshold()
    gc.set_threshold(*(max(now, wanted) for now, wanted in zip(current, GC_THRESHOLDS, strict=True)))


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run ``main`` on the event loop ``EVBUS_EVENT_LOOP`` names (uvloop unless told otherwise)."""
    collect_less_often()
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evbus", description="Event-sourced message bus for EV charging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="run the whole stack in one process (embedded nats-server unless EVBUS_NATS_URL)")
    commands.add_parser("gateway", help="run the OCPP gateway (needs EVBUS_NATS_URL)")
    commands.add_parser("processors", help="run the CSMS processor (needs EVBUS_NATS_URL)")
    commands.add_parser("api", help="run the projections and the REST API (needs EVBUS_NATS_URL)")
    commands.add_parser(
        "mqtt-gateway", help="run the MQTT telemetry gateway (needs EVBUS_NATS_URL; broker: EVBUS_MQTT_URL)"
    )

    replay = commands.add_parser("replay", help="print a station's frames from the OCPP stream")
    replay.add_argument("station_id")
    replay.add_argument("--since", default="24h", help="RFC 3339 time or an age like 90s, 15m, 2h, 7d (default 24h)")
    replay.add_argument("--until", help="RFC 3339 time or an age (default: now)")
    replay.add_argument("--format", choices=["pretty", "ndjson"], default="pretty")

    projections = commands.add_parser("projections", help="manage the DuckDB read models")
    projections_commands = projections.add_subparsers(dest="projections_command", required=True, metavar="ACTION")
    projections_commands.add_parser("rebuild", help="drop the read models and replay the streams (stop the API first)")

    user = commands.add_parser("user", help="add an API user for {username, password} logins")
    user.add_argument("username")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    station = commands.add_parser(
        "station", help="register a station: its password and OCPP security profile (PUT /api/stations/{id}/security)"
    )
    station.add_argument("station_id")
    station.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    station.add_argument("--no-password", action="store_true", help="register without a password")
    station.add_argument(
        "--security-profile",
        type=int,
        choices=[0, 1, 2, 3],
        help="0 open, 1 Basic auth, 2 TLS + Basic auth, 3 TLS client certificate (no password asked); "
        "default: 1 with a password, 0 without",
    )
    station.add_argument("--description", default="")

    _add_sim(commands)

    demo = commands.add_parser(
        "demo", help="the whole stack plus simulated stations charging (1.6 and 2.0.1; every idTag accepted)"
    )
    demo.add_argument("--stations", type=int, default=10, metavar="N", help="simulated stations (default 10)")
    demo.add_argument(
        "--rate", type=float, default=0.5, metavar="R", help="meter values/s per charging station (default 0.5)"
    )

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
            run(bootstrap.run(settings), settings)
        elif args.command in bootstrap.ROLES:
            if not settings.nats_url:
                print(
                    f"evbus {args.command}: set EVBUS_NATS_URL (only `evbus up` starts its own nats-server)",
                    file=sys.stderr,
                )
                return 2
            run(bootstrap.run(settings, roles=[args.command], embedded=False), settings)
        elif args.command == "replay":
            return run(_replay(settings, args), settings)
        elif args.command == "projections":
            return run(_rebuild(settings), settings)
        elif args.command == "user":
            run(_put_user(settings, args), settings)
        elif args.command == "station":
            run(_put_station(settings, args), settings)
        elif args.command == "token":
            run(_put_token(settings, args), settings)
        elif args.command == "sim":
            return run(_sim(args), settings)
        elif args.command == "demo":
            run(_demo(settings, args), settings)
    except (PortInUse, SettingsError) as exc:  # SettingsError here: e.g. a TLS certificate that does not load
        print(f"evbus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _add_sim(commands: Any) -> None:
    from evbus.sim.config import MODES

    sim = commands.add_parser(
        "sim",
        help="simulated charge points: demo sessions, round-trip load, idle connections",
        description="Simulated charge points against an OCPP server. Station ids are {prefix}{n:05d}; each "
        "connects to {url}/{id}, boots, reports its 2 connectors, heartbeats, answers every CSMS call "
        "and reconnects with backoff. Progress goes to stderr; a report follows at the end.",
    )
    sim.add_argument("--url", required=True, help="OCPP endpoint without the station id, e.g. ws://127.0.0.1:9000/ocpp")
    sim.add_argument("--stations", type=int, default=1, metavar="N", help="number of stations (default 1)")
    sim.add_argument(
        "--protocol", default="ocpp1.6", choices=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], help="(default ocpp1.6)"
    )
    sim.add_argument(
        "--duration", type=float, default=0.0, metavar="S", help="seconds to run (default 0: until Ctrl-C)"
    )
    sim.add_argument(
        "--mode",
        choices=MODES,
        default="session",
        help="session: charging sessions with meter values (default); roundtrip: sequential Heartbeat/"
        "StatusNotification/MeterValues CALLs for benchmarks; idle: boot, statuses and heartbeats only",
    )
    sim.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="session: meter-value messages per second per charging station, which also paces the sessions "
        "(default 0.2); roundtrip: total round trips per second over all stations (default 0: as fast as possible)",
    )
    sim.add_argument("--prefix", default="SIM-", help="station id prefix (default SIM-)")
    sim.add_argument("--password", metavar="PW", help="Basic auth password of every station (user = station id)")
    sim.add_argument(
        "--connect-rate",
        type=float,
        metavar="C",
        help="max new connections per second (default: unlimited, 100 handshakes in flight; 0: all at once)",
    )
    sim.add_argument("--seed", type=int, default=1, metavar="N", help="seed of the simulated behaviour (default 1)")
    sim.add_argument("--json", action="store_true", help="print the report as one JSON object (last stdout line)")


async def _sim(args: argparse.Namespace) -> int:
    import signal

    from evbus.sim import SimConfig, Simulator
    from evbus.sim.progress import format_report, show_progress

    try:
        config = SimConfig(
            url=args.url,
            stations=args.stations,
            protocol=args.protocol,
            duration=args.duration,
            mode=args.mode,
            rate=args.rate,
            prefix=args.prefix,
            password=args.password,
            connect_rate=args.connect_rate,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"evbus sim: {exc}", file=sys.stderr)
        return 2
    sim = Simulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    interrupts = 0

    def interrupt() -> None:  # first Ctrl-C: stop gracefully and report; second: stop now
        nonlocal interrupts
        interrupts += 1
        stop.set()
        if interrupts > 1 and main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    progress = asyncio.create_task(show_progress(sim, sys.stderr))
    try:
        report = await sim.run(stop)
    finally:
        progress.cancel()
        if sys.stderr.isatty():
            print(file=sys.stderr)
    print(format_report(report, sim.stats.handshake_causes), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(report.json(), flush=True)
    return 0 if report.connected else 1


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from evbus.sim import simulate

    stop = bootstrap.stop_on_signals()
    settings = settings.with_(unknown_tokens="accept")  # the simulated cards are not in the token store
    async with bootstrap.stack(settings) as running, contextlib.AsyncExitStack() as simulators:
        assert running.ocpp_url is not None
        v16 = (args.stations + 1) // 2
        for protocol, count, first in (("ocpp1.6", v16, 1), ("ocpp2.0.1", args.stations - v16, v16 + 1)):
            if count:
                options = {
                    "stations": count,
                    "protocol": protocol,
                    "first": first,
                    "prefix": "DEMO-",
                    "rate": args.rate,
                }
                await simulators.enter_async_context(simulate(url=running.ocpp_url, **options))
        print(
            f"demo: {args.stations} simulated stations DEMO-00001.. are charging (EVBUS_UNKNOWN_TOKENS=accept "
            f"for this run); watch {running.api_url}/api/connections and /api/transactions",
            flush=True,
        )
        await stop.wait()


async def _put_station(settings: Settings, args: argparse.Namespace) -> None:
    profile = args.security_profile
    password_hash = None
    if profile in (1, 2) and args.no_password:
        raise SystemExit(f"evbus station: security profile {profile} needs a password")
    if not args.no_password and (profile not in (0, 3) or args.password_stdin):
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("station password: ")
        if not password:
            raise SystemExit("evbus station: empty password (use --no-password to register without one)")
        problem = password_problem(password)
        if problem:  # stored all the same: it may be what the charger already has
            print(f"evbus station: warning: {problem}", file=sys.stderr)
        password_hash = hash_password(password)
    record = StationRecord(password_hash=password_hash, description=args.description, security_profile=profile)
    await _put(settings, subjects.BUCKET_REGISTRY, args.station_id, encode(record))
    print(
        f"station {args.station_id!r} registered, security profile {record.profile}"
        + (" with a password" if password_hash else "")
    )


async def _put_token(settings: Settings, args: argparse.Namespace) -> None:
    try:  # the API's checks: idTag and parent without whitespace, expiry RFC 3339 (stored in UTC)
        record = token_record(args.id_tag, args.status, args.expiry_date, args.parent_id_tag)
    except TokenError as exc:
        raise SystemExit(f"evbus token: {exc}") from None
    await _put(settings, subjects.BUCKET_TOKENS, args.id_tag, encode(record))
    print(f"token {args.id_tag!r}: {args.status}")


async def _put_user(settings: Settings, args: argparse.Namespace) -> None:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    if len(password) < 8:
        raise SystemExit("evbus user: the password needs at least 8 characters")
    await _put(
        settings, subjects.BUCKET_USERS, args.username, encode(UserRecord(password_hash=hash_password(password)))
    )
    print(f"user {args.username!r} can log in")


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    now = utc_now()
    try:
        since = parse_moment(args.since, now)
        until = parse_moment(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"evbus replay: {exc}", file=sys.stderr)
        return 2
    colour = args.format == "pretty" and sys.stdout.isatty()
    count = 0
    async with bootstrap.bus(settings, embedded=False) as b:
        if args.format == "ndjson":  # the API's bytes: whole socket buffers of frames at a time
            async for chunk in replay.ndjson(b.nc, args.station_id, since, until):
                sys.stdout.buffer.write(chunk)
            return 0
        async for frame in replay.frames(b.nc, args.station_id, since, until):
            count += 1
            print(replay.pretty(frame, colour=colour))
    if args.format == "pretty":
        print(f"{count} frames of {args.station_id!r}", file=sys.stderr)
    return 0


async def _rebuild(settings: Settings) -> int:
    from tqdm import tqdm

    path = settings.data_dir / bootstrap.PROJECTION_FILE
    async with bootstrap.bus(settings, embedded=False) as b:
        with tqdm(unit=" msg", unit_scale=True, desc="rebuild", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                heads = await rebuild(b.nc, path, progress)
            except RebuildError as exc:
                print(f"evbus projections rebuild: {exc}", file=sys.stderr)
                return 1
    print(f"rebuilt {path} up to {heads}")
    return 0


async def _put(settings: Settings, bucket: str, key: str, value: bytes) -> None:
    async with bootstrap.bus(settings, embedded=False) as b:
        kv = await b.nc.jetstream().key_value(bucket)
        await kv.put(subjects.kv_key(key), value)


if __name__ == "__main__":
    sys.exit(main())
