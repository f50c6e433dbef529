"""``gcs node``: one ring member serving local clients until it is told to stop.

Why a daemon at all: corosync's model, where many local processes (a lock manager, a resource
manager, a CLI) share one ring membership instead of each being a member (RFC 0006 §10). The
daemon is an embedded ``gcs.Node`` plus three observers: the control socket
(``gcs.daemon.server``), the status view (``gcs.daemon.status``: view changes with their reasons
and durations, rates) and optionally Prometheus metrics (``gcs.daemon.metrics``).

Lifecycle. Start the node (it returns once it installed its first ring), then listen; stop on
SIGTERM or SIGINT — tell the clients, leave the ring cleanly (the others reform at once with
reason ``leave``), then drop the clients. A fail-stop of the node (an invariant violation, a
ring seq that could not be written) ends the daemon too, with exit code 1, after the clients
were told why: continuing would risk the guarantees (RFC 0006 API-7-1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from gcs.api.node import Node
from gcs.config import Config
from gcs.daemon import protocol as proto
from gcs.daemon.collector import tune_after_start
from gcs.daemon.metrics import MetricsServer
from gcs.daemon.server import ControlServer, prepare_socket_path
from gcs.daemon.status import ChangeLog, Rates, build_status
from gcs.errors import ConfigError
from gcs.history.recorder import InputKind
from gcs.totem.effects import Configuration, ConfigurationKind, Effect

__all__ = ["Daemon", "check_state_dir", "socket_path"]

_LOG = logging.getLogger("gcs.daemon")
SAMPLE_S = 1.0
UNREACHABLE_S = 10.0
"""How long configured nodes may stay out of the ring before the daemon says so."""


def socket_path(config: Config) -> Path:
    """Where a node's control socket lives: ``control_socket``, else in its ``state_dir``,
    else in the temp dir (named after the cluster and node, so two daemons never collide)."""
    if config.control_socket is not None:
        return Path(config.control_socket)
    if config.state_dir is not None:
        return Path(config.state_dir) / "gcs.sock"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime_dir) / f"gcs-{config.cluster_name}-{config.node_id}.sock"


def check_state_dir(config: Config) -> None:
    """Create ``state_dir`` if needed; ``ConfigError`` naming it if it cannot be used.

    Checked before anything else starts, so a directory that is a file, cannot be created or
    is not writable is one line naming the setting, not a traceback from deep inside.
    """
    if config.state_dir is None:
        return
    path = Path(config.state_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError("state_dir", f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError("state_dir", f"cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("state_dir", f"{path} is not writable by this user")


class _RingTap:
    """Tells clients about ring changes and logs each change with its reason and duration."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        pass

    def on_effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if type(effect) is Configuration:
                self._daemon.on_configuration(effect)

    def on_failure(self, exc: BaseException) -> None:
        self._daemon.on_failure(exc)


class Daemon:
    """A ``gcs.Node`` with a control socket, status and metrics (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        metrics_port: int | None = None,
        history: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.path = socket_path(config)
        self.changes = ChangeLog()
        self.rates = Rates()
        self.node = Node(config, history=history, taps=(self.changes, _RingTap(self)))
        self.server = ControlServer(self.node, self.path, self.status, self._dump)
        self.metrics = None if metrics_port is None else MetricsServer(self.status, metrics_port)
        self.started = time.monotonic()
        self.failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._missing: tuple[int, ...] = ()
        self._missing_since = 0.0
        self._missing_told = False

    def status(self) -> dict[str, Any]:
        status = build_status(
            self.node, self.changes, self.rates, self.started, len(self.server.connections)
        )
        status.update(self.server.limits())
        status["control_socket"] = os.fspath(self.path)
        status["metrics_port"] = None if self.metrics is None else self.metrics.port
        return status

    async def _dump(self, path: Path) -> Path:
        return await self.node.dump_flight_recorder(path, reason="gcs status --dump")

    # ------------------------------------------------------------------ running

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit code 0) or a fail-stop of the node (1)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        check_state_dir(self.config)
        prepare_socket_path(self.path)  # refuse early if another daemon owns the socket
        await self.node.start()
        sampler = self._loop.create_task(self._sample())
        try:
            await self.server.start()
            if self.metrics is not None:
                await self.metrics.start()
            self._announce()
            tune_after_start()  # start-up is over: what exists now lives as long as the process
            with self._signals():
                await self._stop.wait()
        finally:
            sampler.cancel()
            await self._shutdown()
        return 0 if self.failure is None else 1

    def stop(self) -> None:
        """Ask the daemon to shut down cleanly (what SIGTERM does)."""
        if self._stop is not None:
            self._stop.set()

    def _announce(self) -> None:
        cfg = self.config
        metrics = "" if self.metrics is None else f", metrics on 127.0.0.1:{self.metrics.port}"
        _LOG.info(
            "node %d of cluster %r listening on %s for clients (udp %s:%d%s)",
            cfg.node_id,
            cfg.cluster_name,
            self.path,
            *cfg.bind_address,
            metrics,
        )

    @contextlib.contextmanager
    def _signals(self) -> Any:
        loop = self._loop
        assert loop is not None
        installed = []
        handlers = {signal.SIGTERM: self.stop, signal.SIGINT: self.stop, signal.SIGHUP: _no_reload}
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests), or no signals on this platform
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _sample(self) -> None:
        while True:
            self.rates.sample(self.node, self.changes)
            self._check_missing()
            await asyncio.sleep(SAMPLE_S)

    def _check_missing(self) -> None:
        """Say once, in one line, when configured nodes stay out of the ring (unreachable peers).

        A node that cannot reach its peers still runs — in a ring of the nodes it reaches — so
        nothing fails; without this line an operator would only see a short member list.
        """
        view = self.node.view
        if view is None or view.transitional:
            return
        missing = tuple(n for n in sorted(self.config.nodes) if n not in view.members)
        now = time.monotonic()
        if missing != self._missing:
            self._missing, self._missing_since, self._missing_told = missing, now, False
        elif missing and not self._missing_told and now - self._missing_since >= UNREACHABLE_S:
            self._missing_told = True
            _LOG.warning(
                "node %d: configured nodes %s are not in the ring (ring %s has %s) for %.0f s: "
                "unreachable, down, or a different key or cluster name",
                self.config.node_id,
                list(missing),
                view.ring_id,
                list(view.members),
                now - self._missing_since,
            )

    async def _shutdown(self) -> None:
        reason = "shutting down" if self.failure is None else "node failed"
        self.server.begin_close(reason, self.failure)
        await self.node.close()
        await self.server.close()
        if self.metrics is not None:
            await self.metrics.close()
        if self.failure is None:
            _LOG.info("node %d left the ring and stopped", self.config.node_id)

    # ------------------------------------------------------------------ observers

    def on_configuration(self, conf: Configuration) -> None:
        ring = proto.ring_to_wire(
            conf.ring_id,
            conf.members,
            conf.kind is ConfigurationKind.TRANSITIONAL,
            conf.joined,
            conf.left,
            str(conf.reason),
        )
        self.server.broadcast_ring(ring)
        change = self.changes.changes[-1] if self.changes.changes else None
        if conf.kind is ConfigurationKind.REGULAR and change is not None and change.trigger:
            # The runtime logs the configuration itself; this adds how long the change took.
            _LOG.info(
                "node %d: membership change to ring %s took %.0f ms (started by %s)",
                self.config.node_id,
                conf.ring_id,
                change.duration_ms or 0.0,
                change.trigger,
            )

    def on_failure(self, exc: BaseException) -> None:
        """The node failed: stop serving (called on the loop, from the driver)."""
        if self.failure is None:
            self.failure = exc
            _LOG.error("node %d failed and stops: %r", self.config.node_id, exc)
        self.stop()


def _no_reload() -> None:
    """SIGHUP: the configuration is read once; say so instead of reloading or dying silently."""
    _LOG.warning("SIGHUP ignored: gcs node does not reload its configuration; restart it instead")
