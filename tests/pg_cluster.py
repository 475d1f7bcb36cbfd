"""A throwaway PostgreSQL cluster for tests: initdb in a temp folder, loopback only, trust auth.

Uses Debian's server binaries (`sh scripts/install_os_packages.sh` installs them); never the
package's own cluster. initdb refuses root, so as root the cluster runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "sh scripts/install_os_packages.sh installs them"
# SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the project depends on psycopg2.
SCHEME = "postgresql+psycopg2"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_bin() -> Path:
    """The newest installed PostgreSQL server's bin folder; RuntimeError with the fix if none."""
    found = sorted((Path(p) for p in glob.glob(BIN_GLOB) if Path(p, "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise RuntimeError(f"no PostgreSQL server binaries ({BIN_GLOB}/initdb): {INSTALL_HINT}")
    return found[-1]


def connect(uri: str):
    """A psycopg2 connection to a SQLAlchemy URI (libpq does not know the `+driver` part)."""
    import psycopg2

    return psycopg2.connect(uri.replace(f"{SCHEME}://", "postgresql://", 1))


def _as_owner(args: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` OS user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str], cwd: Path, log: Path | None = None) -> None:
    done = subprocess.run(_as_owner(args), cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace") if log and log.exists() else ""
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}"
                           f"{done.stderr}{server_log}")


@contextlib.contextmanager
def postgres_cluster(database: str = "mlflow", control: dict | None = None) -> Iterator[str]:
    """Start a cluster on a free 127.0.0.1 port; yield its SQLAlchemy URI for `database`.

    The data folder and unix socket live in a fresh temp folder, deleted with the cluster.
    `control`, when given, receives `stop()` and `start()`: a database outage on demand.
    """
    bindir = server_bin()
    # Directly under /tmp (not pytest's 0700 tmp_path) so the `postgres` user can reach it.
    root = Path(tempfile.mkdtemp(prefix="opm-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log, port = root / "data", root / "server.log", free_port()
    started = False
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--locale=C", "--no-sync"], cwd=root)
        # Loopback only, socket in our folder, no fsync: a test cluster, thrown away after.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        def start() -> None:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                  "-o", options, "start"], cwd=root, log=log)

        start()
        started = True
        if control is not None:
            control.update(start=start, stop=lambda: _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], cwd=root))
        server = f"{SCHEME}://postgres@127.0.0.1:{port}"
        with contextlib.closing(connect(f"{server}/postgres")) as conn:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{database}"')
        yield f"{server}/{database}"
    finally:
        try:
            if started:
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                     cwd=root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
