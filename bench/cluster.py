"""A throwaway PostgreSQL cluster: made with initdb in a temporary directory, served on a free port of its own.

It can be stopped and started again under a load, with the shared server, and every connection to it,
left alone. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
and its commands run as that user.
"""

import glob
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from serve import free_port


class ClusterUnavailable(Exception):
    """No throwaway cluster can be made here; the message says why."""


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory: Debian's /usr/lib/postgresql/<version>/bin, else PATH."""
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: [int(n) for n in re.findall(r"\d+", path)],
    )
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ClusterUnavailable("no initdb: install PostgreSQL's server package (Debian: postgresql)")


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """The prefix that runs a command as the cluster's owner, and that owner when it is not us."""
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterUnavailable("running as root, and there is no postgres user to own a cluster") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable("running as root without runuser to start PostgreSQL as the postgres user")
    return [runuser, "-u", "postgres", "--"], owner


def check_available() -> None:
    """Raise ClusterUnavailable, saying why, when no throwaway cluster can be made here."""
    postgres_bin()
    _run_as()


class Cluster:
    """initdb, then pg_ctl start; `stop()` and `start()` at will; removed whole on exit. A context manager."""

    def __init__(self):
        self.bin = postgres_bin()
        self.prefix, owner = _run_as()
        self.port = free_port()
        # The server's address, as bench/_db.py names servers: a database's URL is this plus "/<name>".
        self.postgres = f"postgres://postgres@127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="autopack-pg-"))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.running = False

    def __enter__(self):
        try:
            self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        # Its socket file stays in our directory; fsync is off: a throwaway cluster need not survive a crash.
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {shlex.quote(str(self.dir))} -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.running = True

    def stop(self) -> None:
        """Stop the server as an administrator would for a restart: open sessions are ended, not waited for."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        self.running = False

    def close(self) -> None:
        try:
            if self.running:
                self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                self.running = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _pg(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self.prefix, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
