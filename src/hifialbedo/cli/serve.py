"""``hifialbedo serve``: the local web page (``hifialbedo.web``): upload photos, watch the
stages, turn the face in 3D and relight it."""

from __future__ import annotations

import argparse

from hifialbedo.cli.args import check_between


def add_parser(sub) -> None:
    srv = sub.add_parser("serve", help="a local web page: upload photos, watch the stages, turn the face in 3D and relight it")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    srv.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload, all photos together (default 20)")
    srv.add_argument("--workers", type=int, default=1, help="jobs run at once, each with its own loaded models (default 1)")
    srv.add_argument("--max-queued", type=int, default=4, help="jobs that may wait; more are answered 503 (default 4)")
    srv.add_argument("--keep-minutes", type=float, default=60.0, help="results are deleted this long after a job finishes (default 60)")


def run(args: argparse.Namespace) -> int:
    try:
        from hifialbedo.web.app import ServeConfig
        from hifialbedo.web.jobs import Limits
        from hifialbedo.web.server import serve
    except ImportError as exc:
        raise ValueError(f"serve needs the web extra ({exc.name} is missing): pip install -e '.[web]'") from None

    check_between("--port", args.port, 0, 65535)
    if not 0 < args.max_upload_mb <= 4096:
        raise ValueError(f"--max-upload-mb must be > 0 and <= 4096, got {args.max_upload_mb}")
    check_between("--workers", args.workers, 1, 64)
    check_between("--max-queued", args.max_queued, 1, 1000)
    if not args.keep_minutes > 0:
        raise ValueError(f"--keep-minutes must be > 0, got {args.keep_minutes}")
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20))
    config = ServeConfig(
        host=args.host, port=args.port, workers=args.workers, max_queued=args.max_queued, keep_seconds=args.keep_minutes * 60, limits=limits
    )
    serve(config)
    return 0
