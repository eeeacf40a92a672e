"""The `loaxa` command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from app.accounts.models import Role
from app.stations.models import Network

app = typer.Typer(help="loaxa: broadcast scheduling for commune radio", no_args_is_help=True)
user_app = typer.Typer(help="Manage user accounts", no_args_is_help=True)
device_app = typer.Typer(help="Manage playout devices", no_args_is_help=True)
station_app = typer.Typer(help="Manage stations", no_args_is_help=True)
audio_app = typer.Typer(help="Manage stored audio", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(device_app, name="device")
app.add_typer(station_app, name="station")
app.add_typer(audio_app, name="audio")


def _require_migrated(what: str) -> None:
    """Refuse to start `what` on a database that is not at this code's revision.

    An unreachable database is only a warning: it may come up later, and /readyz says so.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import get_engine
    from app.migrations import schema_problem

    try:
        with get_engine().connect() as conn:
            problem = schema_problem(conn)
    except SQLAlchemyError as exc:
        typer.echo(
            f"warning: the database does not answer ({type(exc).__name__}); starting {what} "
            "anyway, /readyz fails until it does",
            err=True,
        )
        return
    if problem is not None:
        typer.echo(f"error: {what} not started: {problem}", err=True)
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn (refused on a database that is not migrated)."""
    from app.config import get_settings
    from app.logs import logging_config
    from app.metricsdir import prepare_multiprocess_dir

    settings = get_settings()
    # Before anything imports prometheus_client: the workers inherit the directory.
    prepare_multiprocess_dir(settings.data_dir, "serve")
    import uvicorn

    _require_migrated("loaxa serve")

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # X-Forwarded-* are read by app.middleware, from LOAXA_TRUSTED_PROXIES only; loaxa's
        # access log (JSON, route template, request id, no query string) replaces uvicorn's.
        proxy_headers=False,
        access_log=False,
        log_config=logging_config(fmt=settings.log_format, level=settings.log_level),
    )


def _loopback_for(host: str) -> str:
    """Where this machine reaches a server listening on `host`."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@app.command()
def up(
    host: Annotated[str, typer.Option(help="interface the web server listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the web server's TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="web worker processes")] = 1,
) -> None:
    """Run everything one commune needs: the web server, the scheduler, the stream hub
    (Icecast, on LOAXA_ICECAST_PORT) and the push broker (Mosquitto, on LOAXA_MQTT_PORT),
    stopped together."""
    from app.config import get_settings
    from app.logs import configure_logging
    from app.supervisor import Part, Supervisor, http_ok, loaxa_command

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    _require_migrated("loaxa up")
    web = f"http://{_loopback_for(host)}:{port}"
    parts = [
        Part(
            "web server",
            loaxa_command("serve", "--host", host, "--port", str(port), "--workers", str(workers)),
            ready=http_ok(f"{web}/healthz"),
        ),
        Part("scheduler", loaxa_command("scheduler")),
    ]
    if not settings.icecast_url:  # else an existing Icecast is the hub (`loaxa icecast-config`)
        hub = settings.icecast_port
        parts.append(
            Part(
                "stream hub",
                loaxa_command(
                    "hub", "--port", str(hub), "--auth-url", f"{web}/api/v1/streams/listener"
                ),
                ready=http_ok(f"http://127.0.0.1:{hub}/status-json.xsl"),
            )
        )
    if settings.mqtt_enabled and not settings.mqtt_url:  # else an existing broker
        from app.push.broker import ADMIN_USERNAME, admin_password, can_log_in

        mqtt_port, password = settings.mqtt_port, admin_password()
        parts.append(
            Part(
                "push broker",
                loaxa_command("broker", "--port", str(mqtt_port)),
                ready=lambda: can_log_in("127.0.0.1", mqtt_port, ADMIN_USERNAME, password),
            )
        )
    raise typer.Exit(Supervisor(parts).run())


@app.command()
def broker(
    port: Annotated[
        int | None, typer.Option(help="the broker's TCP port (default LOAXA_MQTT_PORT)")
    ] = None,
) -> None:
    """Run the push broker: Mosquitto 2 with loaxa's configuration and its dynamic-security
    plugin (device logins made and dropped by loaxa)."""
    import signal
    import threading

    from app.config import get_settings
    from app.logs import configure_logging
    from app.push.broker import run_broker

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    raise typer.Exit(run_broker(stop=stop, port=port))


@app.command()
def hub(
    port: Annotated[
        int | None, typer.Option(help="the hub's TCP port (default LOAXA_ICECAST_PORT)")
    ] = None,
    auth_url: Annotated[
        str | None, typer.Option(help="loaxa's listener check, as Icecast reaches it")
    ] = None,
) -> None:
    """Run the stream hub: Icecast 2 with the relay mounts, configured and watched by loaxa."""
    import signal
    import threading

    from app.config import get_settings
    from app.logs import configure_logging
    from app.streams.hub import run_hub

    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    _require_migrated("loaxa hub")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    raise typer.Exit(run_hub(stop=stop, port=port, auth_url=auth_url))


@app.command("icecast-config")
def icecast_config(
    auth_url: Annotated[
        str | None,
        typer.Option(
            help="loaxa's listener check as that Icecast reaches it (default: from "
            "LOAXA_PUBLIC_BASE_URL)"
        ),
    ] = None,
) -> None:
    """Print the hub's Icecast configuration, for an existing Icecast (LOAXA_ICECAST_URL)
    that loaxa does not run: its operator installs it and reloads Icecast."""
    from urllib.parse import urlsplit

    from app.config import get_settings
    from app.db import unit_of_work
    from app.streams.config import LISTENER_AUTH_PATH, Layout, load_secrets, relay_mounts, render

    settings = get_settings()
    if auth_url is None:
        if not settings.public_base_url:
            typer.echo(
                "error: give --auth-url, or set LOAXA_PUBLIC_BASE_URL (where Icecast reaches "
                "loaxa)",
                err=True,
            )
            raise typer.Exit(2)
        auth_url = settings.public_base_url.rstrip("/") + LISTENER_AUTH_PATH
    parts = urlsplit(settings.icecast_url or "")
    layout = Layout(
        port=parts.port or settings.icecast_port,
        bind="0.0.0.0",
        auth_url=auth_url,
        log_dir=Path("/var/log/icecast2"),
        run_as=("icecast2", "icecast"),
    )
    with unit_of_work(write=False) as session:
        mounts = relay_mounts(session)
    typer.echo(render(mounts, layout=layout, secrets=load_secrets()), nl=False)


@app.command()
def migrate() -> None:
    """Migrate the database to the newest revision."""
    from app import migrations

    migrations.upgrade()
    typer.echo("database is at the newest revision")


@app.command("seed-demo")
def seed_demo(
    sample_history: Annotated[
        bool,
        typer.Option(
            "--sample-history",
            help="also made-up history for demonstrations: segments read by espeak-ng, this "
            "month assembled, past airings, warnings, devices (never on a real commune)",
        ),
    ] = False,
) -> None:
    """Load Xuân Phúc commune (station, villages, programmes, admin). Idempotent."""
    from app.db import unit_of_work
    from app.demo import seed_demo as run
    from app.demo import seed_sample_history

    with unit_of_work() as session:
        result = run(session)
    created = list(result.created)
    if sample_history:
        created += seed_sample_history(result.station_id).created
    for line in created:
        typer.echo(f"created {line}")
    if not created:
        typer.echo("demo commune already loaded; nothing changed")
    if result.admin_password:
        typer.echo(f"admin password (shown once): {result.admin_password}")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[Role, typer.Option(help="viewer, editor, approver or admin")],
    station: Annotated[int | None, typer.Option(help="the station the user works for")] = None,
    full_name: Annotated[
        str | None, typer.Option("--name", help='"Họ và tên", as pages show the person')
    ] = None,
) -> None:
    """Add a user; the password comes from LOAXA_PASSWORD or a prompt."""
    from app.accounts import service
    from app.db import unit_of_work
    from app.errors import LoaxaError

    password = os.environ.get("LOAXA_PASSWORD") or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    if len(password) < 8:
        typer.echo("error: the password must have at least 8 characters", err=True)
        raise typer.Exit(2)
    if full_name is not None:
        from pydantic import TypeAdapter, ValidationError

        from app.text import Name

        try:
            full_name = TypeAdapter(Name).validate_python(full_name)
        except ValidationError:
            typer.echo("error: --name must be 1-200 characters, no control characters", err=True)
            raise typer.Exit(2) from None
    try:
        with unit_of_work() as session:
            user = service.create_user(
                session,
                username=name,
                password=password,
                role=role,
                station_id=station,
                full_name=full_name,
            )
            user_id = user.id
    except LoaxaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created user {name} (id {user_id}, role {role.value})")


@device_app.command("add")
def device_add(
    name: Annotated[str, typer.Argument(help="e.g. 'Playout PC, Thôn 3'")],
    station: Annotated[int, typer.Option(help="station id")],
    village: Annotated[int | None, typer.Option(help="village id")] = None,
) -> None:
    """Register a playout PC and print its token once."""
    from app.db import unit_of_work
    from app.devices import service
    from app.errors import LoaxaError

    try:
        with unit_of_work() as session:
            device, token = service.create_device(
                session, name=name, station_id=station, village_id=village
            )
            device_id = device.id
    except LoaxaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created device {device_id}")
    typer.echo(f"token (shown once): {token}")


@device_app.command("revoke")
def device_revoke(
    device_id: Annotated[int, typer.Argument(metavar="ID", help="device id")],
) -> None:
    """Revoke a playout PC's token (stolen or retired): it stops working at once."""
    from app.db import INT32_MAX, unit_of_work
    from app.devices import service
    from app.errors import LoaxaError, NotFound

    try:
        if not 1 <= device_id <= INT32_MAX:
            raise NotFound(f"device {device_id} does not exist")
        with unit_of_work() as session:
            device = service.get_device(session, device_id, for_update=True)
            service.revoke_device(session, device=device)
            name = device.name
    except LoaxaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked the token of device {device_id} ({name}); it is disabled")


@station_app.command("set")
def station_set(
    station_id: Annotated[int, typer.Argument(metavar="ID", help="station id")],
    network: Annotated[
        Network | None,
        typer.Option(help="ip (every village cluster is networked) or fm (a transmitter)"),
    ] = None,
) -> None:
    """Change a station's details; a new network kind applies from its next local day."""
    from app.db import unit_of_work
    from app.errors import LoaxaError
    from app.schedule import network as schedule_network
    from app.stations import service

    changes: dict[str, str] = {}
    if network is not None:
        changes["network"] = network.value
    if not changes:
        typer.echo("error: nothing to change (give --network ip|fm)", err=True)
        raise typer.Exit(2)
    try:
        with unit_of_work() as session:
            station = service.get_station(session, station_id)
            schedule_network.update_station(session, station=station, changes=changes)
            out = service.to_out(station)
    except LoaxaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if out.pending_network is not None:
        typer.echo(
            f"station {station_id}: network {out.network.value} today, "
            f"{out.pending_network.network.value} from {out.pending_network.effective_from}"
        )
    else:
        typer.echo(f"station {station_id}: network {out.network.value}")


@app.command()
def tts(
    text: Annotated[str, typer.Argument(help="Vietnamese text to read aloud")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MP3 file to write")],
    engine: Annotated[str, typer.Option(help="auto, gtts or espeak")] = "auto",
) -> None:
    """Read a text aloud into a playout-format MP3 (normalised loudness)."""
    import shutil
    import tempfile

    from app.audio import pipeline
    from app.config import get_settings
    from app.tts.engines import SynthesisFailed
    from app.tts.normalize import ScriptProblem
    from app.tts.synthesis import synthesize_script

    settings = get_settings()
    scratch = Path(tempfile.mkdtemp(prefix="loaxa-tts-"))
    try:
        result = synthesize_script(
            text,
            engine=engine,
            work_dir=scratch,
            sentence_pause_ms=settings.tts_sentence_pause_ms,
            paragraph_pause_ms=settings.tts_paragraph_pause_ms,
            timeout_s=settings.tts_timeout_seconds,
            gtts_endpoint=settings.tts_gtts_endpoint,
        )
        ingested = pipeline.ingest(
            result.path,
            work_dir=scratch,
            target_lufs=settings.target_lufs,
            max_true_peak_dbtp=settings.max_true_peak_dbtp,
            highpass_hz=settings.highpass_hz,
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(ingested.playout_path, output)
    except (ScriptProblem, SynthesisFailed, pipeline.AudioRejected, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {output} ({ingested.duration_ms} ms, engine {result.engine})")
    typer.echo(f"read as: {result.normalized_text}")


@audio_app.command("renormalise")
def audio_renormalise(
    verbose: Annotated[bool, typer.Option(help="print every segment made again")] = False,
) -> None:
    """Bring stored audio to the current playout standard from the kept originals.

    Idempotent and resumable: only segments whose audio was made to another standard are
    made again; then the masters of broadcasts still to come are rendered again. Nothing
    that has aired is touched.
    """
    from app import clock
    from app.schedule.assembly import reassemble_stale
    from app.segments.renormalise import renormalise_segments

    report = renormalise_segments(progress=typer.echo if verbose else None)
    typer.echo(
        f"segments: {report.segments} with audio, {report.current} already at the standard, "
        f"{report.renormalised} made again ({report.from_playout_copy} from the playout "
        f"file: no original kept), {report.changed_meanwhile} changed meanwhile, "
        f"{len(report.failed)} failed; envelopes measured for {report.envelopes_measured}"
    )
    masters = reassemble_stale(clock.now())
    typer.echo(
        f"masters still to air: {masters.checked}, {masters.reassembled} rendered again, "
        f"{masters.current} already current, {len(masters.failed)} failed"
    )
    for line in [*report.failed, *masters.failed]:
        typer.echo(f"error: {line}", err=True)
    if report.failed or masters.failed:
        raise typer.Exit(1)


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option(help="run every job once (catch up) and exit")] = False,
    at: Annotated[
        str | None,
        typer.Option(help="start the clock at this ISO time; it runs on (testing)", hidden=True),
    ] = None,
    rate: Annotated[
        float, typer.Option(help="the clock runs this many times faster (testing)", hidden=True)
    ] = 1.0,
) -> None:
    """Run the scheduler process (APScheduler): plan, fill, assemble, warn, mark missed."""
    from datetime import UTC, datetime

    from app.config import get_settings
    from app.logs import configure_logging
    from app.metricsdir import prepare_multiprocess_dir

    settings = get_settings()
    prepare_multiprocess_dir(settings.data_dir, "scheduler")
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    from app import clock
    from app.push import outbox
    from app.schedule import runner

    if settings.mqtt_enabled:  # what its jobs change reaches devices through the outbox
        outbox.install()
    if rate <= 0:
        typer.echo("error: --rate must be above 0", err=True)
        raise typer.Exit(2)
    if at is not None or rate != 1.0:
        start = datetime.fromisoformat(at) if at is not None else datetime.now(UTC)
        if start.tzinfo is None:
            typer.echo("error: --at needs an offset, e.g. 2024-03-13T10:00:00+07:00", err=True)
            raise typer.Exit(2)
        real_start = datetime.now(UTC)
        clock.set_now(lambda: start + (datetime.now(UTC) - real_start) * rate)
    _require_migrated("loaxa scheduler")
    runner.run(once=once, rate=rate)


@app.command()
def plan(
    station: Annotated[int, typer.Option(help="station id")],
    year: Annotated[int | None, typer.Option(help="a whole year, e.g. 2024")] = None,
    months: Annotated[
        int | None,
        typer.Option(help="the coming months (1-36); default LOAXA_PLAN_HORIZON_MONTHS"),
    ] = None,
) -> None:
    """Create broadcasts from the programmes' cadences: a year, or the coming months
    (what the scheduler's rolling plan does every day). Idempotent."""
    from app.config import get_settings
    from app.db import unit_of_work
    from app.errors import LoaxaError
    from app.schedule.planning import plan_station_for
    from app.stations.models import Station

    if year is None and months is None:
        months = get_settings().plan_horizon_months
    try:
        with unit_of_work() as session:
            if session.get(Station, station) is None:
                typer.echo(f"error: station {station} does not exist", err=True)
                raise typer.Exit(1)
            window, result = plan_station_for(
                session, station_id=station, year=year, horizon_months=months
            )
    except LoaxaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    what = str(year) if year is not None else f"{window.first} to {window.last}"
    typer.echo(
        f"station {station}, {what}: {result.created} broadcasts created, "
        f"{result.existing} already there, {result.cancelled} cancelled, {result.moved} moved"
    )


@app.command()
def agent(
    config: Annotated[
        Path, typer.Option(help="agent config file (see scripts/agent.example.toml)")
    ],
    dry_run: Annotated[bool, typer.Option(help="log instead of playing")] = False,
    check: Annotated[
        bool, typer.Option(help="pull the playlist, download one file, play one second, exit")
    ] = False,
) -> None:
    """Run the playout agent on a playout PC (also installed alone as `loaxa-agent`)."""
    if check:
        from app.playout.agent.check import check as run_check

        raise typer.Exit(run_check(config, say=typer.echo))
    from app.playout.agent import run_agent

    run_agent(config, dry_run=dry_run)


@app.command()
def assemble(broadcast_id: Annotated[int, typer.Argument(help="broadcast id")]) -> None:
    """Render a broadcast's master file (or reuse it when the rundown is unchanged)."""
    from app.errors import LoaxaError
    from app.schedule.assembly import assemble_broadcast

    try:
        view = assemble_broadcast(broadcast_id)
    except LoaxaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"broadcast {broadcast_id}: master {view.master_sha256} "
        f"({view.master_duration_ms} ms, window {view.window_ms[0]}-{view.window_ms[1]} ms)"
    )
    for cue in view.cue_sheet or []:
        typer.echo(f"  {cue.offset_ms:>9} ms  {cue.duration_ms:>8} ms  {cue.label}")
    if view.master_sha256:  # after the master is stored and told: it never waits for this
        from app.audio import listen

        copy = listen.make(view.master_sha256)
        typer.echo(f"listening copy: {copy or 'not made (the scheduler tries again)'}")


@app.command()
def backup(
    output: Annotated[Path, typer.Option("-o", "--output", help="archive to write (.tar.gz)")],
) -> None:
    """Write one consistent archive: the database, the audio it names, the secret key, and a
    manifest of sha256 sums. Safe while loaxa runs."""
    from app.backup.archive import BackupError
    from app.backup.service import backup as run

    try:
        result = run(output)
    except (BackupError, OSError) as exc:  # OSError: the disk (full, unwritable), not loaxa
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"wrote {result.path}: {result.size_bytes / 1e6:.1f} MB, database at revision "
        f"{result.revision}, {result.audio_files} audio files "
        f"({result.audio_bytes / 1e6:.1f} MB), in {result.seconds:.1f} s"
    )
    if result.missing_audio:
        typer.echo(
            f"warning: {len(result.missing_audio)} audio files the database names were already "
            f"missing from the store, e.g. {result.missing_audio[0]}",
            err=True,
        )


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="an archive written by `loaxa backup`")],
    force: Annotated[
        bool, typer.Option(help="replace a database that is not empty, and its secret key")
    ] = False,
) -> None:
    """Restore an archive into an empty database and data directory (stop loaxa first).
    The whole archive is checked before anything changes."""
    from app.backup.archive import BackupError
    from app.backup.service import restore as run

    try:
        result = run(archive, force=force)
    except (BackupError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    migrated = (
        f", migrated to {result.migrated_to}" if result.migrated_to != result.revision else ""
    )
    typer.echo(
        f"restored {archive}: {result.rows} rows at revision {result.revision}{migrated}, "
        f"{result.audio_files} audio files, in {result.seconds:.1f} s"
    )


if __name__ == "__main__":
    app()
