"""The server the benchmark measures: `postvoice serve` started for it, or one running at a URL;
its process's memory and CPU, and the machine and settings that move the figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from harness.target import ReplayTarget, free_port, target_from_url

if TYPE_CHECKING:
    from voice.settings import Settings

__all__ = [
    "InfrastructureError",
    "ProcessMonitor",
    "Server",
    "machine_info",
    "postvoice_command",
    "running_server",
    "server_env",
    "started_server",
]

RSS_SAMPLE_S = 0.2
SERVER_START_TIMEOUT_S = 240.0


class InfrastructureError(RuntimeError):
    """The benchmark could not measure: the server did not start, died, or took no call."""


# --- the server's process ---------------------------------------------------------------------


class ProcessMonitor:
    """Samples a process's resident memory every 200 ms (its children included) on a thread."""

    def __init__(self, pid: int | None) -> None:
        self.process = psutil.Process(pid) if pid else None
        self.samples: list[tuple[float, float]] = []  # (time.monotonic(), rss MB)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rss_mb(self) -> float | None:
        """Resident memory now, MB."""
        if self.process is None:
            return None
        try:
            procs = [self.process, *self.process.children(recursive=True)]
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += proc.memory_info().rss
            return total / 1e6
        except psutil.NoSuchProcess:
            return None

    def cpu_s(self) -> float | None:
        """CPU seconds used so far (user + system, children included)."""
        if self.process is None:
            return None
        try:
            times = self.process.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = child.cpu_times()
                    total += t.user + t.system
            return total
        except psutil.NoSuchProcess:
            return None

    def alive(self) -> bool:
        """The process is still running."""
        return self.process is None or (
            self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
        )

    def start(self) -> None:
        """Begin sampling."""
        if self.process is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def peak_since(self, since: float) -> float | None:
        """The largest sample taken since `since` (time.monotonic())."""
        values = [mb for at, mb in self.samples if at >= since]
        return max(values) if values else None

    def _run(self) -> None:
        while not self._stop.is_set():
            mb = self.rss_mb()
            if mb is not None:
                self.samples.append((time.monotonic(), mb))
            self._stop.wait(RSS_SAMPLE_S)


def postvoice_command() -> list[str]:
    """The `postvoice` command of this Python environment (as a module when not installed)."""
    exe = shutil.which("postvoice", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "postvoice.cli"]


@dataclass
class Server:
    """The server being measured: how to reach it and which process it is."""

    target: ReplayTarget
    pid: int | None
    env: dict[str, str]
    log_path: Path | None = None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, when we started it."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def server_env(
    port: int, database_url: str, overrides: dict[str, str], concurrency: int
) -> dict[str, str]:
    """The environment `postvoice serve` gets: ours, a throwaway auth and admin token, the
    temporary database, capacity for the calls we make, then the user's `--env`."""
    capacity = str(max(12, concurrency + 2))
    return {
        **os.environ,
        "POSTVOICE_TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "POSTVOICE_ADMIN_TOKEN": secrets.token_hex(16),
        "POSTVOICE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "POSTVOICE_DATABASE_URL": database_url,
        "POSTVOICE_ALLOW_INJECTION": "true",  # text: turns of --scenarios
        # Bench calls come from the scenarios' few numbers, many at once.
        "POSTVOICE_MAX_CALLS": capacity,
        "POSTVOICE_MAX_CALLS_PER_CALLER": capacity,
        **overrides,
    }


@contextlib.asynccontextmanager
async def started_server(
    overrides: dict[str, str],
    server_args: Sequence[str],
    concurrency: int,
    log_file: Path | None = None,
):
    """Seed a temporary demo shop and run `postvoice serve` on it; yields the `Server`. Its
    log goes to `log_file` when given (else into the temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="postvoice-bench-") as tmp:
        port = free_port()
        env = server_env(port, f"sqlite:///{Path(tmp) / 'bench.db'}", overrides, concurrency)
        seeded = subprocess.run(
            [*postvoice_command(), "seed"], env=env, capture_output=True, text=True
        )
        if seeded.returncode != 0:
            raise InfrastructureError(f"postvoice seed failed:\n{seeded.stderr[-2000:]}")
        log_path = log_file or Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [*postvoice_command(), "serve", "--port", str(port), *server_args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            target = ReplayTarget(
                http_base=f"http://127.0.0.1:{port}",
                ws_url=f"ws://127.0.0.1:{port}/twilio/media",
                public_url=env["POSTVOICE_PUBLIC_URL"],
                auth_token=env["POSTVOICE_TWILIO_AUTH_TOKEN"],
                admin_token=env["POSTVOICE_ADMIN_TOKEN"],
            )
            server = Server(target, proc.pid, env, log_path)
            try:
                await _wait_healthy(target, lambda: proc.poll() is None, server)
                yield server
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def _wait_healthy(target: ReplayTarget, alive: Callable[[], bool], server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(target.http_base + "/healthz")).status_code == 200:
                    return
            if not alive():
                raise InfrastructureError(f"the server exited while starting:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise InfrastructureError(
                    f"the server was not healthy after {SERVER_START_TIMEOUT_S:.0f} s:\n"
                    + server.log_tail()
                )
            await asyncio.sleep(0.3)


def _pid_listening_on(port: int) -> int | None:
    """The process listening on a loopback port, when the OS lets us see it."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None


@contextlib.asynccontextmanager
async def running_server(url: str, pid: int | None, settings: Settings):
    """A server someone else started (`--url`), reached with the secrets of `settings`."""
    target = target_from_url(url, settings)
    server = Server(target, pid, dict(os.environ))
    await _wait_healthy(target, lambda: True, server)
    if server.pid is None:  # listening by now
        port = httpx.URL(target.http_base).port
        server.pid = _pid_listening_on(port) if port else None
    yield server


def machine_info(env: dict[str, str]) -> dict[str, Any]:
    """The machine and the settings that move the figures (no paths, no secrets)."""
    from voice.settings import Settings

    settings: Any = None
    overrides = {
        k.removeprefix("POSTVOICE_").lower(): v
        for k, v in env.items()
        if k.startswith("POSTVOICE_")
    }
    keep = (
        "stt_threads",
        "stt_workers",
        "stt_beam_size",
        "stt_nice",
        "stt_compute_type",
        "tts_workers",
        "tts_length_scale",
        "vad_end_of_turn_ms",
        "vad_aggressiveness",
        "max_calls",
        "database_url",
    )
    with contextlib.suppress(Exception):
        settings = Settings(**{k: v for k, v in overrides.items() if k in Settings.model_fields})
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }
    if settings is not None:
        info["stt_model"] = _model_name(settings.stt_model_dir, "tiny.en (bundled)")
        info["tts_voice"] = _model_name(settings.tts_model, "en_US-joe-medium (bundled)")
        values = {k: getattr(settings, k) for k in keep}
        values["database_url"] = str(values["database_url"]).split(":", 1)[0]  # the kind only
        info["settings"] = values
    return info


def _model_name(path: Path | None, default: str) -> str:
    return default if path is None else Path(path).name


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
