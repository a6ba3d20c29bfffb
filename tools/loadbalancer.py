"""Start nginx (from Debian) as a websocket load balancer in front of Motion Servers, on loopback.

    python tools/loadbalancer.py --listen 127.0.0.1:8080 127.0.0.1:8765 127.0.0.1:8766

Everything nginx writes (pid, logs, temp files) goes to a private temp directory, so it runs
without root and leaves the system's nginx alone. Tests use :class:`NginxBalancer`.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


class NginxBalancer:
    """``with NginxBalancer(["127.0.0.1:8765", ...], port) as lb: lb.url``"""

    def __init__(self, backends: list[str], port: int, host: str = "127.0.0.1") -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        self.binary, self.backends, self.host, self.port = binary, backends, host, port
        self.prefix = Path(tempfile.mkdtemp(prefix="avatarkit-nginx-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> NginxBalancer:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / sub).mkdir(exist_ok=True)
        servers = "\n        ".join(
            f"server {b} max_fails=1 fail_timeout=5s;" for b in self.backends
        )
        config = TEMPLATE.read_text().format(
            prefix=self.prefix, listen=f"{self.host}:{self.port}", servers=servers
        )
        conf = self.prefix / "nginx.conf"
        conf.write_text(config)
        self.process = subprocess.Popen(
            [
                self.binary,
                "-p",
                str(self.prefix),
                "-c",
                str(conf),
                "-e",
                str(self.prefix / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    error = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.stop()
                    raise RuntimeError(f"nginx did not start: {error or self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> NginxBalancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("backends", nargs="+", help="HOST:PORT of each Motion Server")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    with NginxBalancer(args.backends, int(port), host) as balancer:
        print(
            f"load balancer on {balancer.url} -> {', '.join(args.backends)}; Ctrl-C stops it",
            flush=True,
        )
        try:
            balancer.process.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
