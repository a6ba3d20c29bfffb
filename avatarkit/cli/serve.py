"""``avatarkit serve``: Motion Server, Console API and avatar assets on one port."""

from __future__ import annotations

import argparse
import errno
import os
import socket

EXAMPLES = """examples:
  avatarkit serve                                    # 127.0.0.1:8765, credentials printed
  avatarkit serve --port 0                           # any free port
  avatarkit serve --avatars ~/avatars                # + your .glb/.vrm files and packages
  avatarkit serve --host 0.0.0.0 --api-key KEY --app-id APP --workers 4
  avatarkit serve --config apps.toml                 # several apps; keys: avatarkit keys --help
  AVATARKIT_API_KEY=KEY avatarkit serve --allow-origin https://kiosk.example.com"""

MAX_IDS_SHOWN = 20  # the banner names this many avatar ids (GET /v1/avatars lists all)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the local Motion Server + Console API (Spatius v2 compatible)",
        description="Serve the Console API (/v1/console), the ingress websocket "
        "(/v2/driveningress/websocket) and avatar assets (/v1/avatars) on one port. "
        "One app: credentials come from the flags, else AVATARKIT_API_KEY / "
        "AVATARKIT_APP_ID, else they are generated and printed. Several apps: --config.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)"
    )
    parser.add_argument("--api-key", default=None, help="API key the Console API accepts")
    parser.add_argument("--app-id", default=None, help="app id session tokens are scoped to")
    parser.add_argument(
        "--config",
        default=None,
        metavar="APPS.TOML",
        help="host the apps of this file (hashed keys, avatar allow-lists, session limits; "
        "re-read when it changes) instead of one app from --api-key/--app-id",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="seconds without audio before a session closes",
    )
    parser.add_argument(
        "--avatars",
        action="append",
        default=[],
        metavar="PATH",
        help="serve your avatars: a folder of .glb/.vrm files and avatar packages (rescanned "
        "as files come and go), one package folder, or one file; repeatable, first wins. "
        "A file's id comes from its name ('My Avatar.vrm' -> my-avatar). The bundled "
        "avatars are served after them",
    )
    parser.add_argument(
        "--max-avatar-mb",
        type=float,
        default=512,
        help="larger avatar files or packages are not served (default 512)",
    )
    parser.add_argument(
        "--any-avatar",
        action="store_true",
        help="sessions for any well-formed avatar id, served or not (load tests; default: "
        "only the avatars served at /v1/avatars)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="browser Origin allowed to open sessions (repeatable; '*' for any); "
        "by default a websocket upgrade carrying an Origin header is refused",
    )
    parser.add_argument(
        "--max-per-ip",
        type=int,
        default=100,
        help="live sessions allowed from one address (0: no limit)",
    )
    parser.add_argument(
        "--max-pending-per-ip",
        type=int,
        default=8,
        help="websocket upgrades from one address still waiting to configure; past it the "
        "oldest is closed (0: no limit, e.g. for a load generator on one address)",
    )
    parser.add_argument(
        "--max-http-per-ip",
        type=int,
        default=256,
        help="open TCP connections allowed from one address (0: no limit; raise it behind a proxy)",
    )
    parser.add_argument(
        "--trust-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a proxy (its IP address; repeatable) whose X-Forwarded-For names the "
        "client for per-address limits; it is exempt from --max-http-per-ip",
    )
    parser.add_argument(
        "--reusable-tokens",
        action="store_true",
        help="let a session token reconnect after its connection closed (default: "
        "one connection per token)",
    )
    parser.add_argument(
        "--redis",
        default="",
        metavar="URL",
        help="keep used tokens and per-address session counts in Redis "
        "(e.g. redis://127.0.0.1:6379/0), shared by every server given the same URL",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # One BLAS thread per server process (see avatarkit.server.workers); effective only
    # if numpy is not loaded yet, which holds because the CLI imports it lazily.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    from avatarkit.errors import AvatarKitError, ErrorCode
    from avatarkit.motion.stream import require_model
    from avatarkit.server.catalog import AvatarCatalog
    from avatarkit.server.config import ServerConfig
    from avatarkit.server.workers import pick_free_port, serve

    if args.workers < 1:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, "--workers must be at least 1")
    require_model(args.model)  # refuse to start rather than fail every utterance
    apps_file = ""
    if args.config is not None:
        from avatarkit.server.apps import load_apps

        if args.api_key or args.app_id:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST,
                "--config names the apps and their keys: drop --api-key / --app-id",
            )
        apps_file = os.path.abspath(args.config)
        apps = load_apps(apps_file)  # a bad file stops the start, naming the field
    key_given = bool(args.api_key or os.environ.get("AVATARKIT_API_KEY"))
    if not 0 <= args.port <= 65535:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"--port {args.port}: must be 0..65535")
    if args.max_avatar_mb <= 0:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, "--max-avatar-mb must be above zero")
    max_avatar_bytes = int(args.max_avatar_mb * 1024 * 1024)
    catalog = AvatarCatalog(args.avatars, max_bytes=max_avatar_bytes)  # a typo stops here
    served = catalog.index().entries
    port = args.port or pick_free_port(args.host)
    check_bind(args.host, port)  # a busy port is one line now, not a traceback per worker
    config = ServerConfig(
        host=args.host,
        port=port,
        api_key=args.api_key or "",
        app_id=args.app_id or "",
        idle_timeout_s=args.idle_timeout,
        motion_model=args.model,
        avatars=tuple(args.avatars),
        max_avatar_bytes=max_avatar_bytes,
        any_avatar=args.any_avatar,
        allowed_origins=tuple(args.allow_origin),
        max_connections_per_ip=args.max_per_ip,
        max_http_connections_per_ip=args.max_http_per_ip,
        max_pending_handshakes_per_ip=args.max_pending_per_ip,
        redis_url=args.redis,
        trusted_proxies=tuple(args.trust_proxy),
        single_use_tokens=not args.reusable_tokens,
        apps_file=apps_file,
    ).with_credentials()
    base = f"http://{args.host}:{port}"
    print(f"AvatarKit Motion Server on {base}  ({args.workers} worker(s))")
    print(f"  console_endpoint_url = {base}/v1/console")
    print(f"  ingress_endpoint_url = ws://{args.host}:{port}/v2/driveningress")
    print(f"  assets               = {base}/v1/avatars")
    if apps_file:
        for app in apps.values():
            limit = app.max_sessions or "no limit"
            print(f"  app {app.app_id}: {len(app.keys)} key(s), max_sessions {limit}")
        secret = (
            "AVATARKIT_TOKEN_SECRET"
            if config.token_secret
            else "from AVATARKIT_API_KEY"
            if key_given
            else "random (tokens end with this process)"
        )
        print(f"  apps file            = {apps_file} (re-read when it changes)")
        print(f"  token signing key    = {secret}")
    else:
        print(f"  app_id               = {config.app_id}")
        print(f"  api_key              = {config.api_key if not key_given else '(given)'}")
    ids = sorted(served)
    more = f", ... ({len(ids)} in all)" if len(ids) > MAX_IDS_SHOWN else ""
    print(f"  avatars              = {', '.join(ids[:MAX_IDS_SHOWN]) or 'none'}{more}")
    print(f"  avatars from         = {catalog.where()}")
    print("Ctrl-C stops it gracefully.", flush=True)
    try:
        serve(config, args.workers)
    except OSError as exc:  # taken between the check and the bind
        raise bind_error(args.host, port, exc) from None
    return 0


def check_bind(host: str, port: int) -> None:
    """Bind ``host:port`` once the way the server will (SO_REUSEADDR, as asyncio does)."""
    try:
        with socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
        ) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise bind_error(host, port, exc) from None


def bind_error(host: str, port: int, exc: OSError):
    from avatarkit.errors import AvatarKitError, ErrorCode

    if exc.errno == errno.EADDRINUSE:
        return AvatarKitError(
            ErrorCode.ADDRESS_IN_USE,
            f"{host}:{port} is already in use (another `avatarkit serve`?); stop it, or pick "
            "another port with --port N (--port 0: any free one)",
        )
    if isinstance(exc, socket.gaierror):
        return AvatarKitError(
            ErrorCode.INVALID_REQUEST, f"--host {host}: unknown host ({exc.strerror})"
        )
    return AvatarKitError(
        ErrorCode.INVALID_REQUEST, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    )
