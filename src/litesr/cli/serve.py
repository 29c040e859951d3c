"""``litesr serve``: the local web page and HTTP API (``pip install 'litesr[serve]'``).

Safe by default: it listens on 127.0.0.1 only, and listening on any other address needs
``--token`` (or ``--insecure-no-token``, which says loudly what it does). The model is
loaded and the address bound before the server starts, so a bad ``-m`` or a port in use is
one ``error:`` line. Ctrl-C and SIGTERM stop it cleanly (exit 130 and 143): uvicorn
finishes the requests in flight, then the CLI's handlers see the signal as any command would.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path

from ..imaging.atomic import os_error_reason
from ..serve.config import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_QUEUE
from ..serve.errors import ServeSetupError
from ..zoo import ZOO
from .options import (
    add_command,
    add_device,
    add_model_source,
    add_scale,
    add_threads,
    load_cli_model,
    positive_int,
    prepare_runtime,
)

#: Where ``--token`` is read from when not given (keeps it out of ``ps`` listings).
TOKEN_VARIABLE = "LITESR_SERVE_TOKEN"
#: Seconds uvicorn waits for requests in flight after Ctrl-C/SIGTERM before closing them.
GRACEFUL_SHUTDOWN_S = 15
_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_exposure(host: str, token: str | None, insecure: bool) -> str | None:
    """Refuse a non-loopback address without a token; returns the warning to print, if any."""
    if is_loopback(host):
        return None
    if token:
        return None
    if insecure:
        return (f"listening on {host} without a token (--insecure-no-token): anyone who can reach this "
                "machine can use its CPU/GPU through this server")
    raise ServeSetupError(f"--host {host} makes the server reachable from other machines: give it a --token "
                          f"(or ${TOKEN_VARIABLE}), or pass --insecure-no-token if that is really meant")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or one ``error:`` line saying why not."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
    except (OSError, UnicodeError) as error:
        reason = os_error_reason(error) if isinstance(error, OSError) and error.errno else str(error)
        raise ServeSetupError(f"cannot listen on {host}:{port}: {reason}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise ServeSetupError(f"cannot listen on {host}:{port}: {os_error_reason(error)}") from None
    return sock


def command_serve(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    warning = check_exposure(args.host, token, args.insecure_no_token)
    try:
        import uvicorn

        from ..serve import ModelCatalogue, ServeConfig, create_app
    except ImportError as error:
        raise ServeSetupError(f"litesr serve needs the serve extra ({error.name} is missing): "
                              "pip install 'litesr[serve]'") from None
    device = prepare_runtime(args)
    sock = bind_socket(args.host, args.port)  # first: a busy port is reported before any loading
    with sock:
        model, label = load_cli_model(args, device)
        model.deploy()
        name = model.name if model.name in ZOO else Path(label).name
        config = ServeConfig(max_upload_bytes=args.max_upload_mb * 2**20, max_pixels=args.max_pixels,
                             queue=args.queue, token=token)
        loopback_names = ("127.0.0.1", "localhost") if args.host in ("127.0.0.1", "localhost") and not token else ()
        app = create_app(ModelCatalogue(model, name, device), device, config, allowed_hosts=loopback_names)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        host, port = sock.getsockname()[:2]
        shown_host = f"[{host}]" if ":" in host else host
        fragment = "#token=<your token>" if token else ""
        print(f"litesr serve: {name} on {device}; open http://{shown_host}:{port}/{fragment} "
              f"(API docs: /docs); Ctrl-C stops", file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="info" if args.access_log else "warning",
                                               access_log=args.access_log,
                                               timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
        server.run(sockets=[sock])
    return 0


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return int(text)


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "serve", command_serve, help="a local web page and HTTP API for upscaling",
                         description="Serve a web page (GET /) and an HTTP API (POST /api/upscale, GET /api/models, "
                                     "docs at /docs) for upscaling images. Needs pip install 'litesr[serve]'.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; any other needs --token)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default 8000; 0 picks a free one)")
    add_model_source(parser)
    add_scale(parser)
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--max-upload-mb", type=positive_int, default=DEFAULT_MAX_UPLOAD_MB, metavar="N",
                        help=f"largest upload in MiB, refused with 413 (default {DEFAULT_MAX_UPLOAD_MB})")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"largest decoded image in pixels, refused with 413 (default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--queue", type=positive_int, default=DEFAULT_QUEUE, metavar="N",
                        help=f"jobs admitted at once, the running one included; more get 503 "
                             f"(default {DEFAULT_QUEUE})")
    parser.add_argument("--token", metavar="T",
                        help=f"require 'Authorization: Bearer T' on /api (default: ${TOKEN_VARIABLE}); "
                             "the page asks for it, or takes it from its address as #token=T")
    parser.add_argument("--insecure-no-token", action="store_true",
                        help="allow a non-loopback --host without a token (prints a warning)")
    parser.add_argument("--access-log", action="store_true", help="log every request on stderr")
