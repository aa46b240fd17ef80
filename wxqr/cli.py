"""The ``wxqr`` command: batch generation of QR codes, and ``wxqr sandbox``.

::

    wxqr qrcode  [--permanent | --expire SECONDS] [--str] [--from FILE] [SCENE ...] --out DIR
    wxqr wxacode [--page PAGE] [--width N] [--env-version V] [--no-check-path]
                 [--line-color R,G,B | --auto-color] [--hyaline]
                 [--from FILE] [SCENE ...] --out DIR
    wxqr links   --kind scheme|urllink|shortlink [--path PAGE] [--expires-in-days N]
                 [--env-version V] [--title T] [--permanent] [--from FILE] [QUERY ...] --out DIR
    wxqr sandbox ...                       (serve the WeChat emulator: wxqr.sandbox.serve_main)
    wxqr --version

Common options: ``--sandbox`` (the embedded emulator, in-process: no credentials, no network),
or the account from ``--appid`` (``WXQR_APPID``) and ``--secret-file FILE`` (``WXQR_SECRET``;
``--secret`` works but is visible to every local user in ``ps``); ``--api-base-url`` (e.g. a
served sandbox), ``--redis URL`` (share the production app's token and rate budget),
``--rate-limit BUCKET=CALLS/SECONDS``, ``--concurrency N`` (default 16), ``--resume``,
``--classic-token``, ``--timeout``.

Each batch command is a :class:`BatchCommand` in :data:`COMMANDS`: its options, how they are
checked (a bad option is exit status 2 before any request) and the :class:`wxqr._batch.Job`
they make. The rest — rows, the manifest and ``--resume``, the lock on ``--out``, the early
stop on account-level errors, progress and the summary — is :func:`wxqr._batch.run_job`.

What a run produces in ``DIR``:

* one image per distinct scene, named ``<slug>-<hash>.<ext>`` (:func:`wxqr._batch.file_stem`:
  no two scenes collide, no name leaves ``DIR``), the extension the image's real type;
* ``manifest.csv`` with columns ``scene,status,file,ticket,url,error``: one row per input
  scene, in input order (``status``: ``ok``, ``failed``, ``skipped`` after an early stop,
  ``pending`` only in a manifest left by an interrupted run); ``manifest.json``: the command,
  the options that shape the images and the account, which ``--resume`` must match.
* ``wxqr links`` writes no files: its ``manifest.csv`` is ``query,status,link,expire_time,error``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import _validate as v
from ._batch import (
    EXIT_STATUS_HELP,
    EXIT_USAGE,
    Job,
    OpenClient,
    Result,
    UsageError,
    check_argv,
    exit_status_help,
    read_items,
    run_job,
)
from ._client import DEFAULT_API_BASE_URL, DEFAULT_MP_BASE_URL, Client
from ._extras import MissingExtraError, require
from ._ratelimit import DEFAULT_RATE_LIMITS, RateLimit
from .errors import ValidationError
from .models import EnvVersion

__all__ = [
    "COMMANDS",
    "BatchCommand",
    "LinksJob",
    "QrCodeJob",
    "WxaCodeJob",
    "main",
    "qrcode_scene",
]

#: Lifetime of temporary Official Account codes unless ``--expire`` says otherwise: 7 days.
DEFAULT_EXPIRE: Final = 604_800
DEFAULT_CONCURRENCY: Final = 16
#: The largest ``--secret-file`` read (an AppSecret is 32 characters).
MAX_SECRET_FILE: Final = 4096
_CANONICAL_INT: Final = re.compile(r"-?[1-9][0-9]*|0")
_SECRET_WARNING: Final = (
    "wxqr: warning: --secret is visible to every local user (ps, /proc); "
    "use --secret-file FILE or the WXQR_SECRET environment variable"
)


def qrcode_scene(scene: str, *, force_str: bool = False) -> dict[str, Any]:
    """The ``scene_id=`` / ``scene_str=`` argument a scene given as text stands for.

    A canonical decimal integer (``42``, ``-7``, ``0``; not ``007`` or ``+1``) is a
    ``scene_id`` (so ``0`` is refused as an id: temporary ids are non-zero), anything else a
    ``scene_str``; ``force_str`` makes every scene a string. The example web apps use the same
    rule, so ``wxqr qrcode 0`` and ``GET /qrcode/0`` agree.
    """
    if not force_str and _CANONICAL_INT.fullmatch(scene):
        return {"scene_id": int(scene)}
    return {"scene_str": scene}


# -- jobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QrCodeJob:
    """An Official Account code per scene: ``qrcode/create`` then ``showqrcode``."""

    permanent: bool
    expire: int
    force_str: bool
    command: str = "qrcode"
    key: str = "scene"
    columns: tuple[str, ...] = ("ticket", "url")

    @property
    def options(self) -> Mapping[str, str]:
        """The options that shape the codes (recorded in the manifest)."""
        return {
            "kind": "permanent" if self.permanent else "temporary",
            "expire_seconds": "" if self.permanent else str(self.expire),
            "scenes": "strings" if self.force_str else "integers as scene_id",
        }

    async def run(self, client: Client, item: str) -> Result:
        """Create the code for ``item`` and download its image."""
        scene = qrcode_scene(item, force_str=self.force_str)
        if self.permanent:
            ticket = await client.qrcode.create_permanent(**scene)
        else:
            ticket = await client.qrcode.create_temporary(expire_seconds=self.expire, **scene)
        return Result(await client.qrcode.show(ticket), (ticket.ticket, ticket.url))


@dataclass(frozen=True)
class WxaCodeJob:
    """A Mini Program code per scene: ``getwxacodeunlimit`` with the scene verbatim."""

    page: str | None
    width: int
    env_version: EnvVersion
    check_path: bool
    auto_color: bool = False
    line_color: tuple[int, int, int] | None = None
    is_hyaline: bool = False
    command: str = "wxacode"
    key: str = "scene"
    columns: tuple[str, ...] = ("ticket", "url")

    @property
    def options(self) -> Mapping[str, str]:
        """The options that shape the codes (recorded in the manifest)."""
        colour = ",".join(map(str, self.line_color)) if self.line_color else ""
        return {
            "page": self.page or "",
            "width": str(self.width),
            "env_version": self.env_version,
            "check_path": str(self.check_path).lower(),
            "line_color": "auto" if self.auto_color else colour,
            "hyaline": str(self.is_hyaline).lower(),
        }

    async def run(self, client: Client, item: str) -> Result:
        """Get the code of ``item``."""
        image = await client.wxacode.get_unlimited(
            scene=item,
            page=self.page,
            width=self.width,
            env_version=self.env_version,
            check_path=self.check_path,
            auto_color=self.auto_color,
            line_color=self.line_color,
            is_hyaline=self.is_hyaline,
        )
        return Result(image)


#: Lifetime WeChat gives a scheme / URL Link without an expiry, and every short-term Short Link.
LINK_DEFAULT_DAYS: Final = 30
LINK_KINDS: Final = ("scheme", "urllink", "shortlink")


@dataclass(frozen=True)
class LinksJob:
    """A Mini Program link per query: URL Scheme, URL Link or Short Link (``wxqr links``).

    The results are the manifest's columns (``query,status,link,expire_time,error``): no file
    is written per item. ``expire_time`` is computed here (Unix seconds: the moment WeChat
    answered plus the lifetime asked for, 30 days by default; ``0`` for a permanent Short
    Link), since WeChat's answer carries none.
    """

    kind: str
    path: str | None = None
    env_version: EnvVersion | None = None
    expires_in_days: int | None = None
    title: str | None = None
    permanent: bool = False
    command: str = "links"
    key: str = "query"
    columns: tuple[str, ...] = ("link", "expire_time")
    writes_files: bool = False

    @property
    def options(self) -> Mapping[str, str]:
        """The options that shape the links (recorded in the manifest)."""
        return {
            "kind": self.kind,
            "path": self.path or "",
            "env_version": self.env_version or "",
            "expires_in_days": "" if self.expires_in_days is None else str(self.expires_in_days),
            "title": self.title or "",
            "permanent": str(self.permanent).lower(),
        }

    async def run(self, client: Client, item: str) -> Result:
        """Generate the link of the query ``item``."""
        if self.kind == "shortlink":
            assert self.path is not None
            link = await client.links.generate_short_link(
                f"{self.path}?{item}", title=self.title, permanent=self.permanent
            )
            if self.permanent:
                return Result(None, (link, "0"))
        elif self.kind == "scheme":
            scheme = await client.links.generate_scheme(
                path=self.path,
                query=item,
                env_version=self.env_version,
                expires_in_days=self.expires_in_days,
            )
            link = scheme.openlink
        else:
            url_link = await client.links.generate_url_link(
                path=self.path,
                query=item,
                env_version=self.env_version,
                expires_in_days=self.expires_in_days,
            )
            link = url_link.url_link
        days = self.expires_in_days or LINK_DEFAULT_DAYS
        return Result(None, (link, str(int(time.time()) + days * 86400)))


def _checked(option: str, check: Callable[[Any], Any], value: Any) -> None:
    try:
        check(value)
    except ValidationError as exc:
        raise UsageError(f"{option}: {str(exc).removeprefix(exc.argument + ': ')}") from None


def _qrcode_job(args: argparse.Namespace) -> Job:
    if not args.permanent:
        _checked("--expire", v.expire_seconds, args.expire)
    return QrCodeJob(permanent=args.permanent, expire=args.expire, force_str=args.force_str)


def _wxacode_job(args: argparse.Namespace) -> Job:
    if args.page is not None:
        _checked("--page", v.page, args.page)
    _checked("--width", v.width, args.width)
    return WxaCodeJob(
        page=args.page,
        width=args.width,
        env_version=args.env_version,
        check_path=args.check_path,
        auto_color=args.auto_color,
        line_color=args.line_color,
        is_hyaline=args.hyaline,
    )


def _links_job(args: argparse.Namespace) -> Job:
    short = args.kind == "shortlink"
    if short:
        if args.path is None:
            raise UsageError("--path: required for --kind shortlink (the page, e.g. pages/a/a)")
        _checked("--path", v.page_url, args.path)
        if "?" in args.path:
            raise UsageError("--path: no query for shortlink: each QUERY is appended as ?QUERY")
        for option, value in (
            ("--expires-in-days", args.expires_in_days),
            ("--env-version", args.env_version),
        ):
            if value is not None:
                raise UsageError(f"{option}: not for shortlink (short-term links live 30 days)")
        if args.title is not None:
            _checked("--title", lambda t: v.text("title", t, max_len=256), args.title)
            if len(args.title) > 20:
                print(
                    "wxqr: note: WeChat shows the first 20 characters of --title", file=sys.stderr
                )
    else:
        if args.path is not None:
            _checked("--path", v.link_path, args.path)
        if args.expires_in_days is not None:
            _checked("--expires-in-days", lambda d: v.link_expiry(None, d, 0), args.expires_in_days)
        for option, given in (("--title", args.title is not None), ("--permanent", args.permanent)):
            if given:
                raise UsageError(f"{option}: only for --kind shortlink")
    return LinksJob(
        kind=args.kind,
        path=args.path,
        env_version=args.env_version,
        expires_in_days=args.expires_in_days,
        title=args.title,
        permanent=args.permanent,
    )


def _links_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        required=True,
        choices=LINK_KINDS,
        help="scheme: weixin://dl/business/?t=... ; urllink: https://wxaurl.cn/... ; "
        "shortlink: #小程序://... (opens inside WeChat only)",
    )
    parser.add_argument(
        "--path",
        help="page opened, without a query (default: the home page; required for shortlink)",
    )
    parser.add_argument(
        "--expires-in-days",
        type=int,
        metavar="DAYS",
        help=f"scheme/urllink lifetime, 1..30 (default: WeChat's, {LINK_DEFAULT_DAYS} days)",
    )
    parser.add_argument("--env-version", choices=v.ENV_VERSIONS, help="scheme/urllink only")
    parser.add_argument(
        "--title", help="shortlink page title (WeChat shows 20 characters, then '...')"
    )
    parser.add_argument(
        "--permanent",
        action="store_true",
        help="permanent shortlinks (at most 100,000 per account, for good)",
    )


def _qrcode_arguments(parser: argparse.ArgumentParser) -> None:
    lifetime = parser.add_mutually_exclusive_group()
    lifetime.add_argument(
        "--permanent", action="store_true", help="permanent codes (at most 100,000 per account)"
    )
    lifetime.add_argument(
        "--expire",
        type=int,
        default=DEFAULT_EXPIRE,
        metavar="SECONDS",
        help=f"lifetime of temporary codes, 1..2592000 (default {DEFAULT_EXPIRE}: 7 days)",
    )
    parser.add_argument(
        "--str", dest="force_str", action="store_true", help="every scene is a string"
    )


def _wxacode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page", help="page opened, no leading '/' (default: the home page)")
    parser.add_argument("--width", type=int, default=430, help="280..1280 px (default 430)")
    parser.add_argument("--env-version", default="release", choices=v.ENV_VERSIONS)
    parser.add_argument(
        "--no-check-path",
        dest="check_path",
        action="store_false",
        help="allow pages not (yet) released",
    )
    colour = parser.add_mutually_exclusive_group()
    colour.add_argument(
        "--line-color",
        type=_rgb,
        metavar="R,G,B",
        help="colour of the code's lines, each 0..255 (default 0,0,0)",
    )
    colour.add_argument("--auto-color", action="store_true", help="let WeChat pick the line colour")
    parser.add_argument(
        "--hyaline", action="store_true", help="transparent background (PNG with alpha)"
    )


@dataclass(frozen=True)
class BatchCommand:
    """One batch subcommand of ``wxqr``.

    Attributes:
        name: the subcommand.
        help: one line for ``wxqr --help``.
        description: the subcommand's ``--help`` text.
        add_arguments: adds its own options to its parser (the common ones are already there).
        make_job: checks the parsed options (raising :class:`UsageError`) and makes the job.
        item: what each positional argument (and each line of ``--from``) is: ``scene`` or
            ``query`` (the job's manifest key); ``items`` is its plural.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    make_job: Callable[[argparse.Namespace], Job]
    item: str = "scene"
    items: str = "scenes"


#: The batch subcommands, by name.
COMMANDS: dict[str, BatchCommand] = {
    "qrcode": BatchCommand(
        "qrcode",
        "Official Account parametric QR codes",
        "Official Account codes: qrcode/create + showqrcode. A scene written as a decimal "
        "integer (42, 0, -7; not 042) is a scene_id, anything else a scene_str.",
        _qrcode_arguments,
        _qrcode_job,
    ),
    "wxacode": BatchCommand(
        "wxacode",
        "Mini Program codes (getwxacodeunlimit)",
        "Mini Program codes with a scene (getwxacodeunlimit): scenes are 1..32 characters of "
        "0-9 a-z A-Z !#$&'()*+,/:;=?@-._~",
        _wxacode_arguments,
        _wxacode_job,
    ),
    "links": BatchCommand(
        "links",
        "Mini Program links: URL Scheme, URL Link, Short Link",
        "Mini Program links in bulk: one link per QUERY (k1=v1&k2=v2, <= 1024 characters of "
        "0-9 a-z A-Z !#$&'()*+,/:;=?@-._~%) opening --path. DIR/manifest.csv has the columns "
        "query,status,link,expire_time,error (expire_time: Unix seconds, computed; 0 = "
        "permanent). Scheme and URL Link generation share WeChat's 100 calls/s (respected "
        "client-side) and 500,000 a day.",
        _links_arguments,
        _links_job,
        item="query",
        items="queries",
    ),
}


# -- the client ----------------------------------------------------------------------------------


def _credentials(args: argparse.Namespace) -> tuple[str, str]:
    appid = args.appid or os.environ.get("WXQR_APPID")
    secret = args.secret
    if secret is not None:
        print(_SECRET_WARNING, file=sys.stderr)
    elif args.secret_file is not None:
        try:
            with open(args.secret_file, "rb") as fh:
                raw = fh.read(MAX_SECRET_FILE + 1)
            if len(raw) > MAX_SECRET_FILE:
                raise UsageError(f"--secret-file {args.secret_file}: larger than 4 KiB")
            secret = raw.decode("utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read --secret-file {args.secret_file}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise UsageError(f"--secret-file {args.secret_file} is not UTF-8 text") from None
        if not secret:
            raise UsageError(f"--secret-file {args.secret_file} is empty")
    else:
        secret = os.environ.get("WXQR_SECRET")
    if not appid or not secret:
        missing = " and ".join(
            name for name, value in (("WXQR_APPID", appid), ("WXQR_SECRET", secret)) if not value
        )
        raise UsageError(
            f"no credentials: {missing} not set (pass --appid and --secret-file, set "
            "WXQR_APPID and WXQR_SECRET, or try --sandbox)"
        )
    return appid, secret


def _client_factory(args: argparse.Namespace) -> tuple[OpenClient, dict[str, str]]:
    """How to open the client the options ask for, and what identifies its account."""
    rate_limits = {**DEFAULT_RATE_LIMITS, **dict(args.rate_limit)}
    if args.sandbox:
        if args.api_base_url or args.mp_base_url:
            raise UsageError("--sandbox runs the emulator in-process: drop --api-base-url")
        require("segno", "sandbox", "--sandbox draws the images with segno")
        from .sandbox import DEFAULT_APPID

        appid, secret, account = DEFAULT_APPID, "", {"appid": DEFAULT_APPID, "api": "sandbox"}
    else:
        appid, secret = _credentials(args)
        api = args.api_base_url or DEFAULT_API_BASE_URL
        account = {"appid": appid, "api": api}
    if args.redis:
        require("redis", "redis", "--redis shares tokens and rate budgets through redis-py")

    @contextlib.asynccontextmanager
    async def open_client() -> AsyncIterator[Client]:
        async with contextlib.AsyncExitStack() as stack:
            shared: dict[str, Any] = {}
            if args.redis:
                from redis.asyncio import Redis

                from .caches import RedisRateLimiter, RedisTokenCache

                redis = Redis.from_url(args.redis)
                stack.push_async_callback(redis.aclose)
                shared = {
                    "token_cache": RedisTokenCache(redis),
                    "rate_limiter": RedisRateLimiter(redis),
                }
            options: dict[str, Any] = {
                "max_concurrency": args.concurrency,
                "timeout": args.timeout,
                "rate_limits": rate_limits,
                "stable_token": not args.classic_token,
                **shared,
            }
            if args.sandbox:
                from .sandbox import SandboxState, sandbox_client, sandbox_http_client

                state = SandboxState()
                http = await stack.enter_async_context(
                    sandbox_http_client(state, timeout=args.timeout)
                )
                client = sandbox_client(state, http_client=http, **options)
            else:
                api = args.api_base_url or DEFAULT_API_BASE_URL
                mp = args.mp_base_url or args.api_base_url or DEFAULT_MP_BASE_URL
                client = Client(appid, secret, api_base_url=api, mp_base_url=mp, **options)
            async with client:
                yield client

    return open_client, account


# -- command line --------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _rgb(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        r, g, b = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected R,G,B (three integers), got {text!r}") from None
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise argparse.ArgumentTypeError(f"each of R,G,B must be 0..255, got {text!r}")
    return (r, g, b)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _rate_limit(text: str) -> tuple[str, RateLimit]:
    bucket, _, rate = text.partition("=")
    calls, _, period = rate.partition("/")
    try:
        return bucket, RateLimit(int(calls), float(period))
    except (ValueError, ValidationError):
        raise argparse.ArgumentTypeError(
            f"expected BUCKET=CALLS/SECONDS, e.g. getwxacodeunlimit=2500/60, got {text!r}"
        ) from None


def _common_parser(item: str = "scene", items: str = "scenes") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    io_group = common.add_argument_group("input and output")
    io_group.add_argument("scenes", nargs="*", metavar=item.upper(), help=f"{items} to generate")
    io_group.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help=f"read {items} from FILE ('-' = stdin): one per line, or a CSV with a '{item}' column",
    )
    io_group.add_argument(
        "--out", required=True, metavar="DIR", help="directory for manifest.csv (and the images)"
    )
    io_group.add_argument(
        "--resume",
        action="store_true",
        help=f"keep {items} that DIR/manifest.csv lists as ok (file present); redo the rest. "
        "Refused if DIR was made with another command, other options or another account",
    )
    account = common.add_argument_group("account")
    account.add_argument(
        "--sandbox",
        action="store_true",
        help="use the embedded WeChat emulator in-process (no credentials, no network)",
    )
    account.add_argument("--appid", help="the account's AppID (default: $WXQR_APPID)")
    account.add_argument(
        "--secret-file",
        metavar="FILE",
        help="read the AppSecret from FILE (default: $WXQR_SECRET)",
    )
    account.add_argument(
        "--secret", help="the AppSecret itself: visible to other users in ps, prefer the above"
    )
    account.add_argument(
        "--api-base-url", metavar="URL", help="API host (e.g. a served `wxqr sandbox`)"
    )
    account.add_argument(
        "--mp-base-url", metavar="URL", help="showqrcode host (default: --api-base-url if given)"
    )
    account.add_argument(
        "--classic-token",
        action="store_true",
        help="fetch tokens with cgi-bin/token instead of cgi-bin/stable_token",
    )
    account.add_argument(
        "--redis",
        metavar="URL",
        help="share the token and the rate budgets with your app's workers through this Redis "
        "(RedisTokenCache + RedisRateLimiter), e.g. redis://cache:6379/0",
    )
    tuning = common.add_argument_group("tuning")
    tuning.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight and workers (default {DEFAULT_CONCURRENCY})",
    )
    tuning.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="per-request timeout (default 10)",
    )
    tuning.add_argument(
        "--rate-limit",
        type=_rate_limit,
        action="append",
        default=[],
        metavar="BUCKET=CALLS/SECONDS",
        help="client-side rate limit, repeatable (default getwxacodeunlimit=5000/60, "
        "qrcodejump=5/1, wxalink=100/1); with --redis it is shared by every process",
    )
    return common


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of ``wxqr`` and those of its batch commands (:data:`COMMANDS`).

    ``wxqr sandbox`` is dispatched before any parsing. A batch command is parsed by its own
    parser with ``parse_intermixed_args``, so options and scenes may come in any order.
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="wxqr",
        description="Generate WeChat QR codes in bulk (see also: wxqr sandbox --help).",
        epilog=EXIT_STATUS_HELP,
    )
    parser.add_argument("--version", action="version", version=f"wxqr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {}
    for command in COMMANDS.values():
        parsers[command.name] = sub.add_parser(
            command.name,
            parents=[_common_parser(command.item, command.items)],
            help=command.help,
            description=command.description,
            epilog=exit_status_help(command.item, command.items),
        )
        command.add_arguments(parsers[command.name])
    sub.add_parser("sandbox", help="serve the WeChat emulator (see: wxqr sandbox --help)")
    return parser, parsers


def _run(argv: list[str]) -> int:
    if argv[:1] == ["sandbox"]:
        from .sandbox import serve_main

        return serve_main(argv[1:])
    check_argv(argv)
    parser, parsers = build_parser()
    try:
        if argv[:1] and argv[0] in parsers:
            args = parsers[argv[0]].parse_intermixed_args(argv[1:])
            args.command = argv[0]
        else:
            args = parser.parse_args(argv)  # --help, --version, or a usage error
    except SystemExit as exc:  # argparse exits 2 on errors, 0 for --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    job = COMMANDS[args.command].make_job(args)
    open_client, account = _client_factory(args)
    scenes = list(args.scenes)
    if args.from_file is not None:
        scenes += read_items(args.from_file, job.key)
    if not scenes:
        command = COMMANDS[args.command]
        raise UsageError(
            f"no {command.items}: give {command.item.upper()} arguments or --from FILE"
        )
    return run_job(
        job,
        scenes,
        Path(args.out),
        open_client,
        account=account,
        resume=args.resume,
        concurrency=args.concurrency,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``wxqr`` command.

    Args:
        argv: the arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 when every scene succeeded, 1 when any failed, 2 for usage errors
        (nothing sent), 3 when stopped early by an account-level error, the daily quota, the
        token cache or the disk, 130 when interrupted.
    """
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except (UsageError, MissingExtraError) as exc:
        print(f"wxqr: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
