"""The ``wxqr`` command: batch generation of QR codes, and ``wxqr sandbox``.

::

    wxqr qrcode  [--permanent | --expire SECONDS] [--str] [--from FILE] [SCENE ...] --out DIR
    wxqr wxacode [--page PAGE] [--width N] [--env-version V] [--no-check-path]
                 [--line-color R,G,B | --auto-color] [--hyaline]
                 [--from FILE] [SCENE ...] --out DIR
    wxqr sandbox ...                       (serve the WeChat emulator: wxqr.sandbox.serve_main)

Common options: ``--sandbox`` (the embedded emulator, in-process: no credentials, no network),
or credentials from ``--appid``/``--secret`` or ``WXQR_APPID``/``WXQR_SECRET``;
``--api-base-url`` (e.g. a served sandbox), ``--concurrency N`` (default 16), ``--resume``,
``--classic-token``, ``--timeout``.

What a run produces in ``DIR``:

* one image per distinct scene, named ``<slug>-<hash>.<ext>``: the slug is the scene reduced to
  ``[A-Za-z0-9._-]`` (at most 40 characters), the hash the first 10 hex digits of the scene's
  SHA-256 (so ``a/b``, ``a?b`` and ``a_b`` never collide, and no name can leave ``DIR``), the
  extension the image's real type (``wxqr.image_kind``: ``.png``, ``.jpg``, ``.gif``);
* ``manifest.csv`` with columns ``scene,status,file,ticket,url,error``: one row per input scene,
  in input order, failures included (``status`` is ``ok`` or ``failed``; ``pending`` only in a
  manifest left by an interrupted run). For wxacode rows ``ticket`` and ``url`` are empty.

Images are written atomically (a temporary file in ``DIR``, then ``os.replace``): a file in
``DIR`` is always a complete image. The manifest is written atomically too: once at the start
(every row ``pending``), at most once a second while the batch runs, and at the end (also on
Ctrl-C), so a crash leaves a valid manifest that ``--resume`` can continue from.

A scene given twice is generated once; each of its rows reports the same outcome and file.
``--resume`` keeps every scene whose manifest row is ``ok`` and whose file still exists, and
generates the rest. Exit status: 0 when every scene succeeded, 1 when any failed, 2 for usage
errors (bad options, missing credentials), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import anyio
from anyio.abc import ObjectReceiveStream

from ._client import DEFAULT_API_BASE_URL, DEFAULT_MP_BASE_URL, Client
from ._decoder import image_kind
from .errors import ResponseDecodeError

__all__ = ["main"]

MANIFEST: Final = "manifest.csv"
MANIFEST_FIELDS: Final = ("scene", "status", "file", "ticket", "url", "error")
#: Lifetime of temporary Official Account codes unless ``--expire`` says otherwise: 7 days.
DEFAULT_EXPIRE: Final = 604_800
DEFAULT_CONCURRENCY: Final = 16
#: Seconds between two checkpoint writes of the manifest while a batch runs.
CHECKPOINT_INTERVAL: Final = 1.0
#: How many failures are echoed on stderr (all of them are in the manifest).
SHOWN_FAILURES: Final = 10
_EXTENSIONS: Final = {"png": ".png", "jpeg": ".jpg", "gif": ".gif"}
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_CANONICAL_INT: Final = re.compile(r"-?[1-9][0-9]*|0")
_SLUG_MAX: Final = 40


class UsageError(Exception):
    """A problem with the command line or its inputs (exit status 2)."""


# -- scenes and file names -------------------------------------------------------------------


def file_stem(scene: str) -> str:
    """The file name (without extension) of ``scene``'s image: a safe slug plus a short hash.

    The slug keeps ``[A-Za-z0-9._-]`` of the NFKC-normalised scene (other runs become ``_``,
    leading dots and underscores are dropped, 40 characters at most); the hash (10 hex digits of
    SHA-256) keeps distinct scenes apart. The result never contains a path separator, never
    starts with a dot and is at most 51 characters long.
    """
    slug = _UNSAFE.sub("_", unicodedata.normalize("NFKC", scene)).lstrip("._")[:_SLUG_MAX]
    digest = hashlib.sha256(scene.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug.rstrip('.') or 'scene'}-{digest}"


def read_scenes(path: str) -> list[str]:
    """Read scenes from a file (``-`` is stdin): one per line, or a CSV with a ``scene`` column.

    A file whose first line, read as CSV, starts with the header ``scene`` is a CSV: the first
    column of every later row is a scene (other columns are ignored). Otherwise every line is a
    scene. Leading/trailing whitespace is removed and blank lines/cells are skipped.

    Raises:
        UsageError: the file cannot be read or is not UTF-8.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read scenes from {path}: {exc}") from None
    lines = text.splitlines()
    header = next(csv.reader(lines[:1]), [])
    cells: Iterable[str]
    if header and header[0].strip().lower() == "scene":
        cells = (row[0] if row else "" for row in csv.reader(lines[1:]))
    else:
        cells = iter(lines)
    return [cell.strip() for cell in cells if cell.strip()]


# -- manifest ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What happened to one distinct scene (shared by every manifest row of that scene)."""

    scene: str
    status: str = "pending"
    file: str = ""
    ticket: str = ""
    url: str = ""
    error: str = ""

    def row(self) -> tuple[str, str, str, str, str, str]:
        """The manifest row."""
        return (self.scene, self.status, self.file, self.ticket, self.url, self.error)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory + ``os.replace``.

    Readers see either the old file or the complete new one, never a partial write.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_manifest(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Atomically (re)write the manifest CSV at ``path`` with ``rows`` under the header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_FIELDS)
    writer.writerows(rows)
    atomic_write(path, out.getvalue().encode("utf-8"))


def read_done(out_dir: Path) -> dict[str, Outcome]:
    """The scenes a previous run finished: ``ok`` rows of ``DIR/manifest.csv`` whose file exists.

    A row is trusted only if its file is a plain name in ``DIR`` with the stem :func:`file_stem`
    gives its scene (an edited or foreign manifest cannot point outside ``DIR``).

    Raises:
        UsageError: the manifest exists but is not a wxqr manifest.
    """
    path = out_dir / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot resume: cannot read {path}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"scene", "status", "file"} <= set(reader.fieldnames):
        raise UsageError(f"cannot resume: {path} is not a wxqr manifest")
    done: dict[str, Outcome] = {}
    for row in reader:
        scene, name = row.get("scene") or "", row.get("file") or ""
        if row.get("status") != "ok" or not scene or not name:
            continue
        if Path(name).name != name or Path(name).stem != file_stem(scene):
            continue
        if (out_dir / name).is_file():
            done[scene] = Outcome(
                scene, "ok", name, row.get("ticket") or "", row.get("url") or "", ""
            )
    return done


# -- generators: one scene in, one image out ---------------------------------------------------

#: Generates the image of one scene; records ``ticket``/``url`` on the outcome as they are known.
Generate = Callable[[Client, Outcome], Awaitable[bytes]]


def qrcode_generator(*, permanent: bool, expire: int, force_str: bool) -> Generate:
    """An Official Account code: ``qrcode/create`` then ``showqrcode``.

    A scene written as a canonical decimal integer (``42``, ``-7``; not ``007``) is a
    ``scene_id`` unless ``force_str``; anything else is a ``scene_str``.
    """

    async def generate(client: Client, outcome: Outcome) -> bytes:
        scene = outcome.scene
        as_id = not force_str and _CANONICAL_INT.fullmatch(scene) is not None
        scene_id = int(scene) if as_id else None
        scene_str = None if as_id else scene
        if permanent:
            ticket = await client.qrcode.create_permanent(scene_id=scene_id, scene_str=scene_str)
        else:
            ticket = await client.qrcode.create_temporary(
                scene_id=scene_id, scene_str=scene_str, expire_seconds=expire
            )
        outcome.ticket, outcome.url = ticket.ticket, ticket.url
        return await client.qrcode.show(ticket)

    return generate


def wxacode_generator(
    *,
    page: str | None,
    width: int,
    env_version: str,
    check_path: bool,
    auto_color: bool = False,
    line_color: tuple[int, int, int] | None = None,
    is_hyaline: bool = False,
) -> Generate:
    """A Mini Program code: ``getwxacodeunlimit`` with the scene verbatim."""

    async def generate(client: Client, outcome: Outcome) -> bytes:
        return await client.wxacode.get_unlimited(
            scene=outcome.scene,
            page=page,
            width=width,
            env_version=env_version,
            check_path=check_path,
            auto_color=auto_color,
            line_color=line_color,
            is_hyaline=is_hyaline,
        )

    return generate


# -- progress ---------------------------------------------------------------------------------


class Progress(Protocol):
    """Where completions are reported."""

    def advance(self) -> None:
        """One more scene is finished."""


class _NoProgress:
    def advance(self) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int) -> Iterator[Progress]:
    """A rich progress bar on stderr when it is a terminal (and rich is installed), else none."""
    if not sys.stderr.isatty():
        yield _NoProgress()
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress
    except ImportError:
        yield _NoProgress()
        return
    bar = RichProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = bar.add_task("generating", total=total)

    class _Rich:
        def advance(self) -> None:
            bar.advance(task)

    with bar:
        yield _Rich()


# -- the batch --------------------------------------------------------------------------------


@dataclass
class Batch:
    """One run: the input scenes, their outcomes and where they go."""

    scenes: list[str]
    out_dir: Path
    generate: Generate
    concurrency: int
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    kept: int = 0
    dirty: bool = False

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """Manifest rows: one per input scene, in input order."""
        return [self.outcomes[scene].row() for scene in self.scenes]

    def checkpoint(self) -> None:
        """Write the manifest as it stands now."""
        self.dirty = False
        write_manifest(self.out_dir / MANIFEST, self.rows())


async def _produce(batch: Batch, client: Client, outcome: Outcome) -> None:
    try:
        image = await batch.generate(client, outcome)
        kind = image_kind(image)
        if kind is None:  # the decoder already guarantees an image; never write anything else
            raise ResponseDecodeError("the answer was not a complete image")
        name = file_stem(outcome.scene) + _EXTENSIONS[kind]
        # Shielded: an interrupted run never leaves an image on disk that its manifest omits.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(atomic_write, batch.out_dir / name, image)
            outcome.status, outcome.file, outcome.error = "ok", name, ""
    except Exception as exc:  # every failure becomes a manifest row; nothing is dropped
        outcome.status = "failed"
        outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    batch.dirty = True


async def run_batch(batch: Batch, client: Client, progress: Progress) -> None:
    """Generate every pending outcome with ``batch.concurrency`` workers.

    Workers pull scenes from a bounded memory stream, so memory and tasks stay bounded however
    many scenes there are. The manifest is checkpointed at most every second.
    """
    todo = [o for o in batch.outcomes.values() if o.status == "pending"]
    send, receive = anyio.create_memory_object_stream[Outcome](batch.concurrency)

    async def worker(items: ObjectReceiveStream[Outcome]) -> None:
        async with items:
            async for outcome in items:
                await _produce(batch, client, outcome)
                progress.advance()

    async def checkpoints() -> None:
        while True:
            await anyio.sleep(CHECKPOINT_INTERVAL)
            if batch.dirty:
                batch.dirty = False
                rows = batch.rows()
                await anyio.to_thread.run_sync(write_manifest, batch.out_dir / MANIFEST, rows)

    async with anyio.create_task_group() as outer:
        outer.start_soon(checkpoints)
        async with anyio.create_task_group() as workers:
            for _ in range(min(batch.concurrency, max(1, len(todo)))):
                workers.start_soon(worker, receive.clone())
            receive.close()
            async with send:
                for outcome in todo:
                    await send.send(outcome)
        outer.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """The :class:`wxqr.Client` the options ask for: the in-process sandbox or a real account."""
    if args.sandbox:
        from .sandbox import SandboxState, sandbox_client, sandbox_http_client

        state = SandboxState()
        async with (
            sandbox_http_client(state, timeout=args.timeout) as http,
            sandbox_client(
                state, http_client=http, max_concurrency=args.concurrency, timeout=args.timeout
            ) as client,
        ):
            yield client
        return
    api = args.api_base_url or DEFAULT_API_BASE_URL
    mp = args.mp_base_url or args.api_base_url or DEFAULT_MP_BASE_URL
    async with Client(
        args.appid,
        args.secret,
        stable_token=not args.classic_token,
        api_base_url=api,
        mp_base_url=mp,
        max_concurrency=args.concurrency,
        timeout=args.timeout,
    ) as client:
        yield client


async def _amain(batch: Batch, args: argparse.Namespace) -> None:
    pending = sum(1 for o in batch.outcomes.values() if o.status == "pending")
    async with open_client(args) as client:
        with progress_bar(pending) as progress:
            await run_batch(batch, client, progress)


# -- command line -----------------------------------------------------------------------------


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


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of ``wxqr`` and those of its batch commands (``qrcode``, ``wxacode``).

    ``wxqr sandbox`` is dispatched before any parsing. A batch command is parsed by its own
    parser with ``parse_intermixed_args``, so options and scenes may come in any order.
    """
    common = argparse.ArgumentParser(add_help=False)
    io_group = common.add_argument_group("input and output")
    io_group.add_argument("scenes", nargs="*", metavar="SCENE", help="scenes to generate")
    io_group.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="read scenes from FILE ('-' = stdin): one per line, or a CSV with a 'scene' column",
    )
    io_group.add_argument(
        "--out", required=True, metavar="DIR", help="directory for the images and manifest.csv"
    )
    io_group.add_argument(
        "--resume",
        action="store_true",
        help="keep scenes that DIR/manifest.csv lists as ok (file present); redo the rest",
    )
    account = common.add_argument_group("account")
    account.add_argument(
        "--sandbox",
        action="store_true",
        help="use the embedded WeChat emulator in-process (no credentials, no network)",
    )
    account.add_argument("--appid", help="the account's AppID (default: $WXQR_APPID)")
    account.add_argument("--secret", help="its AppSecret (default: $WXQR_SECRET)")
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

    parser = argparse.ArgumentParser(
        prog="wxqr",
        description="Generate WeChat QR codes in bulk (see also: wxqr sandbox --help).",
        epilog="Exit status: 0 all scenes ok, 1 some failed, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    qr = sub.add_parser(
        "qrcode",
        parents=[common],
        help="Official Account parametric QR codes",
        description="Official Account codes: qrcode/create + showqrcode. A scene written as a "
        "decimal integer (42, not 042) is a scene_id, anything else a scene_str.",
    )
    lifetime = qr.add_mutually_exclusive_group()
    lifetime.add_argument(
        "--permanent", action="store_true", help="permanent codes (at most 100,000 per account)"
    )
    lifetime.add_argument(
        "--expire",
        type=_positive_int,
        default=DEFAULT_EXPIRE,
        metavar="SECONDS",
        help=f"lifetime of temporary codes, up to 2592000 (default {DEFAULT_EXPIRE}: 7 days)",
    )
    qr.add_argument("--str", dest="force_str", action="store_true", help="every scene is a string")
    wxa = sub.add_parser(
        "wxacode",
        parents=[common],
        help="Mini Program codes (getwxacodeunlimit)",
        description="Mini Program codes with a scene (getwxacodeunlimit): scenes are 1..32 "
        "characters of 0-9 a-z A-Z !#$&'()*+,/:;=?@-._~",
    )
    wxa.add_argument("--page", help="page opened, no leading '/' (default: the home page)")
    wxa.add_argument("--width", type=int, default=430, help="280..1280 px (default 430)")
    wxa.add_argument("--env-version", default="release", choices=("release", "trial", "develop"))
    wxa.add_argument(
        "--no-check-path",
        dest="check_path",
        action="store_false",
        help="allow pages not (yet) released",
    )
    colour = wxa.add_mutually_exclusive_group()
    colour.add_argument(
        "--line-color",
        type=_rgb,
        metavar="R,G,B",
        help="colour of the code's lines, each 0..255 (default 0,0,0)",
    )
    colour.add_argument("--auto-color", action="store_true", help="let WeChat pick the line colour")
    wxa.add_argument(
        "--hyaline", action="store_true", help="transparent background (PNG with alpha)"
    )
    sub.add_parser("sandbox", help="serve the WeChat emulator (see: wxqr sandbox --help)")
    return parser, {"qrcode": qr, "wxacode": wxa}


def _prepare(args: argparse.Namespace) -> Batch:
    if not args.sandbox:
        args.appid = args.appid or os.environ.get("WXQR_APPID")
        args.secret = args.secret or os.environ.get("WXQR_SECRET")
        if not args.appid or not args.secret:
            missing = " and ".join(
                name
                for name, value in (("WXQR_APPID", args.appid), ("WXQR_SECRET", args.secret))
                if not value
            )
            raise UsageError(
                f"no credentials: {missing} not set (pass --appid/--secret, set WXQR_APPID and "
                "WXQR_SECRET, or try --sandbox)"
            )
    elif args.api_base_url or args.mp_base_url:
        raise UsageError("--sandbox runs the emulator in-process: drop --api-base-url")
    scenes = list(args.scenes)
    if args.from_file is not None:
        scenes += read_scenes(args.from_file)
    if not scenes:
        raise UsageError("no scenes: give SCENE arguments or --from FILE")
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out_dir}: {exc}") from None
    if args.command == "qrcode":
        generate = qrcode_generator(
            permanent=args.permanent, expire=args.expire, force_str=args.force_str
        )
    else:
        generate = wxacode_generator(
            page=args.page,
            width=args.width,
            env_version=args.env_version,
            check_path=args.check_path,
            auto_color=args.auto_color,
            line_color=args.line_color,
            is_hyaline=args.hyaline,
        )
    batch = Batch(scenes, out_dir, generate, args.concurrency)
    done = read_done(out_dir) if args.resume else {}
    for scene in scenes:
        if scene not in batch.outcomes:
            batch.outcomes[scene] = done.get(scene) or Outcome(scene)
    batch.kept = sum(1 for scene in scenes if scene in done)  # rows, like the summary's counts
    return batch


def _summary(batch: Batch, elapsed: float) -> tuple[str, int]:
    rows = batch.rows()
    ok = sum(1 for row in rows if row[1] == "ok")
    failed = sum(1 for row in rows if row[1] == "failed")
    pending = len(rows) - ok - failed
    kept = f" ({batch.kept} kept)" if batch.kept else ""
    line = f"ok {ok}{kept} / failed {failed}"
    if pending:
        line += f" / pending {pending}"
    return f"{line} / {elapsed:.2f} s", 0 if ok == len(rows) else 1


def _report_failures(batch: Batch) -> None:
    failed = [o for o in batch.outcomes.values() if o.status == "failed"]
    for outcome in failed[:SHOWN_FAILURES]:
        print(f"failed {outcome.scene!r}: {outcome.error}", file=sys.stderr)
    if len(failed) > SHOWN_FAILURES:
        print(
            f"... and {len(failed) - SHOWN_FAILURES} more (see {batch.out_dir / MANIFEST})",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the ``wxqr`` command.

    Args:
        argv: the arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 when every scene succeeded, 1 when any failed, 2 for usage errors,
        130 when interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sandbox"]:
        from .sandbox import serve_main

        return serve_main(argv[1:])
    parser, commands = build_parser()
    try:
        if argv[:1] and argv[0] in commands:
            args = commands[argv[0]].parse_intermixed_args(argv[1:])
            args.command = argv[0]
        else:
            args = parser.parse_args(argv)  # --help, --version, or a usage error
    except SystemExit as exc:  # argparse exits 2 on errors, 0 for --help
        return exc.code if isinstance(exc.code, int) else 2
    started = time.perf_counter()
    try:
        batch = _prepare(args)
        batch.checkpoint()
    except (UsageError, OSError) as exc:
        print(f"wxqr: error: {exc}", file=sys.stderr)
        return 2
    status = 130
    try:
        anyio.run(_amain, batch, args)
        status = 0
    except KeyboardInterrupt:
        print("wxqr: interrupted", file=sys.stderr)
    finally:
        batch.checkpoint()
    _report_failures(batch)
    line, result = _summary(batch, time.perf_counter() - started)
    print(line, file=sys.stderr)
    return status or result
