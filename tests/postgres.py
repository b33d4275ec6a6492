"""A real PostgreSQL for the tests: Debian's package (``.ci/run`` installs it), a throwaway
cluster in a temporary folder listening only on a Unix socket there, started for the
session and stopped after it. Tests skip with the reason where it cannot start.

PostgreSQL refuses to run as root; under root (CI containers) the server runs as the
package's ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PORT = 5432  # on a socket in our own folder: no clash with any other server


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/NN/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


class Cluster:
    def __init__(self) -> None:
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="routesim-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root without runuser: PostgreSQL will not start as root")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"

    def _run(self, *args: str) -> None:
        done = subprocess.run(self.as_user + [str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=120)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "routesim", "--no-sync", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-o",
                  f"-k {self.root} -p {PORT} -c listen_addresses='' -c fsync=off", "start")
        self._run("createdb", "-h", str(self.root), "-p", str(PORT), "-U", "routesim", "litellm")

    @property
    def url(self) -> str:
        return f"postgresql://routesim@/litellm?host={self.root}&port={PORT}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
