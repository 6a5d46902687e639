"""Running the app under uvicorn: the URL printed, a warning when not bound to loopback."""

from __future__ import annotations

import ipaddress
import sys

from hifialbedo.web.app import ServeConfig, create_app

LOOPBACK_NAMES = ("localhost",)


def host_warning(host: str) -> str | None:
    """The warning for a bind address other than loopback (None for 127.0.0.0/8, ::1, localhost).

    >>> host_warning("127.0.0.1") is None
    True
    >>> host_warning("0.0.0.0").startswith("serving on every network interface")
    True
    """
    if host in LOOPBACK_NAMES:
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"serving on {host}: anyone who can reach that address can upload photos and read the results (no login)"
    if address.is_loopback:
        return None
    if address.is_unspecified:
        return "serving on every network interface: anyone on your network can upload photos and read the results (no login)"
    return f"serving on {host}: anyone who can reach that address can upload photos and read the results (no login)"


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(config: ServeConfig) -> None:
    """Serve until interrupted (Ctrl+C); the job folders are deleted on the way out."""
    import uvicorn

    warning = host_warning(config.host)
    if warning:
        print(f"hifialbedo: warning: {warning}", file=sys.stderr)
    app = create_app(config)
    uv_config = uvicorn.Config(
        app, host=config.host, port=config.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=3, access_log=False
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:  # bound: say where (the real port when --port 0)
                port = next((s.getsockname()[1] for srv in self.servers for s in srv.sockets), config.port)
                keep = config.keep_seconds / 60
                print(
                    f"hifialbedo serve: open {url_of(config.host, port)} in a browser (Ctrl+C stops; results are kept {keep:.0f} min)",
                    flush=True,
                )

    try:
        Server(uv_config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after its clean shutdown (the lifespan's clean-up ran)
        pass
    print("hifialbedo serve: stopped; the job folders are deleted", flush=True)
