"""Bulk jobs of the ``wxqr`` command: rows, manifest, resume, output lock, early stop, progress.

A subcommand that turns many input items (scenes, paths...) into results describes what one
item does as a :class:`Job` and hands it to :func:`run_job`; everything else is shared:

* :func:`read_items` / :func:`check_argv`: input items from a file (one per line, or a CSV
  with a header column), bounded and never split at a character Python's ``splitlines`` would
  split at (U+2028, ``\\x1c``...); invalid UTF-8 is refused.
* :class:`Row`: one compact record per distinct item (an item given twice shares one row).
* the manifest: ``DIR/manifest.csv`` (one line per input item, in input order: ``<key>,status,
  file,<job columns>,error``) and ``DIR/manifest.json`` (the job: command, result-shaping
  options, account). Both written atomically; the CSV is streamed row by row, at the start,
  at most once a second while the job runs and at the end (Ctrl-C and errors included).
* ``--resume`` (:func:`load_previous`): keeps the ``ok`` rows whose file still exists, and
  refuses a manifest written by a different job (command, options or account).
* :func:`lock_output`: one run per output folder (an exclusive ``flock`` on ``DIR`` itself).
* :func:`stop_cause`: errors that would fail every remaining item alike (account-level
  errcodes, daily quota 45009, the token cache down, the output folder unwritable) stop the run
  at once; the rest of the rows become ``skipped`` with the cause.
* files are created with the user's umask (``0644`` under ``umask 022``), atomically.

Exit status (:data:`EXIT_OK` ...): 0 every item ok, 1 some failed, 2 usage error (nothing
was sent), 3 stopped early (account-level error, quota, cache or disk: fix the cause, then
``--resume``), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

import anyio
from anyio.abc import ObjectReceiveStream

from ._decoder import image_kind
from .errors import APIError, ResponseDecodeError, TokenCacheError

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STOPPED",
    "EXIT_USAGE",
    "MANIFEST",
    "MANIFEST_JOB",
    "BatchRun",
    "Job",
    "OpenClient",
    "Progress",
    "Result",
    "Row",
    "Stop",
    "UsageError",
    "atomic_write",
    "check_argv",
    "exit_status_help",
    "file_stem",
    "load_previous",
    "lock_output",
    "progress_bar",
    "read_items",
    "run_job",
    "stop_cause",
    "write_manifest",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_STOPPED: Final = 3
EXIT_INTERRUPTED: Final = 130


def exit_status_help(item: str = "scene", items: str = "scenes") -> str:
    """The exit statuses, as ``--help`` shows them, for a job over ``items``."""
    return (
        f"Exit status: 0 every {item} ok; 1 some {items} failed (see manifest.csv); 2 usage "
        f"error (nothing sent); 3 stopped early by an error every {item} would hit (wrong "
        "AppSecret, IP not whitelisted, frozen secret, daily quota 45009, Redis down, disk "
        "full): the rest are 'skipped', fix the cause and --resume; 130 interrupted (Ctrl-C)."
    )


#: The exit statuses of the code commands, as ``--help`` shows them.
EXIT_STATUS_HELP: Final = exit_status_help()

MANIFEST: Final = "manifest.csv"
MANIFEST_JOB: Final = "manifest.json"
#: Version of ``manifest.json``'s layout.
JOB_FORMAT: Final = 1
#: Seconds between two checkpoint writes of the manifest (at least; see BatchRun).
CHECKPOINT_INTERVAL: Final = 1.0
#: The longest input line / manifest field accepted, in characters (a clear refusal beyond).
MAX_FIELD: Final = 1 << 20
#: How many failures are echoed on stderr (all of them are in the manifest).
SHOWN_FAILURES: Final = 10

PENDING: Final = "pending"
OK: Final = "ok"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"

_EXTENSIONS: Final = {"png": ".png", "jpeg": ".jpg", "gif": ".gif"}
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_SLUG_MAX: Final = 40


class UsageError(Exception):
    """A problem with the command line or its inputs (exit status 2, nothing sent)."""


# -- items and file names ------------------------------------------------------------------------


def file_stem(item: str) -> str:
    """The file name (without extension) of ``item``'s output: a safe slug plus a short hash.

    The slug keeps ``[A-Za-z0-9._-]`` of the NFKC-normalised item (other runs become ``_``,
    leading dots and underscores are dropped, 40 characters at most); the hash (10 hex digits of
    SHA-256) keeps distinct items apart. The result never contains a path separator, never
    starts with a dot and is at most 51 characters long.
    """
    slug = _UNSAFE.sub("_", unicodedata.normalize("NFKC", item)).lstrip("._")[:_SLUG_MAX]
    digest = hashlib.sha256(item.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug.rstrip('.') or 'scene'}-{digest}"


def check_argv(argv: Sequence[str]) -> None:
    """Refuse arguments that were not valid UTF-8 (Python decodes them with surrogates).

    Raises:
        UsageError: naming the argument.
    """
    for number, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape")[:40]
            raise UsageError(f"argument {number} is not valid UTF-8: {shown!r}") from None


def _lines(fh: IO[str], source: str) -> Iterator[str]:
    """The lines of ``fh`` (opened with ``newline=""``), each at most :data:`MAX_FIELD` long.

    Only ``\\n``, ``\\r\\n`` and ``\\r`` end a line: U+2028, ``\\x1c``... stay inside it.
    """
    number = 0
    while True:
        line = fh.readline(MAX_FIELD + 3)
        if not line:
            return
        number += 1
        if len(line.rstrip("\r\n")) > MAX_FIELD:
            raise UsageError(f"{source}: line {number} is longer than {MAX_FIELD} characters")
        yield line


def read_items(path: str, column: str = "scene") -> list[str]:
    """Read items from a file (``-`` is stdin): one per line, or a CSV with a ``column`` header.

    A file whose first line, read as CSV, starts with the header ``column`` is a CSV: the first
    column of every later row is an item (other columns are ignored, quoted fields may hold
    commas). Otherwise every line is an item. A UTF-8 BOM is ignored, leading/trailing
    whitespace removed and blank lines/cells skipped. The file is streamed, not loaded whole.

    Raises:
        UsageError: the file cannot be read, is not UTF-8, is not valid CSV or has a line
            longer than :data:`MAX_FIELD` characters.
    """
    source = "stdin" if path == "-" else path
    try:
        with contextlib.ExitStack() as stack:
            if path == "-":
                fh: IO[str] = open(  # noqa: SIM115 - closed by the exit stack
                    sys.stdin.fileno(), encoding="utf-8-sig", newline="", closefd=False
                )
            else:
                fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
            stack.enter_context(fh)
            lines = _lines(fh, source)
            first = next(lines, "")
            header = next(csv.reader([first]), []) if first.strip() else []
            cells: Iterable[str]
            if header and header[0].strip().lower() == column:
                csv.field_size_limit(MAX_FIELD)
                cells = (row[0] if row else "" for row in csv.reader(lines, strict=True))
            else:
                cells = (line.rstrip("\r\n") for line in _chain(first, lines))
            items = [cell.strip() for cell in cells if cell.strip()]
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UsageError(f"{source}: not valid CSV: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    return items


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


# -- rows and results ----------------------------------------------------------------------------


class Row:
    """One distinct input item and what happened to it (shared by its duplicate input lines).

    ``state`` is one tuple replaced as a whole, so a manifest written from another thread
    never sees half an update: ``(status, extension, error, *job column values)``.
    """

    __slots__ = ("item", "state")

    def __init__(self, item: str) -> None:
        self.item = item
        self.state: tuple[str, ...] = (PENDING, "", "")

    @property
    def status(self) -> str:
        """``pending``, ``ok``, ``failed`` or ``skipped``."""
        return self.state[0]

    @property
    def error(self) -> str:
        """The error of a ``failed`` row, or the cause of a ``skipped`` one."""
        return self.state[2]

    def file(self) -> str:
        """The output file's name in ``DIR`` (``""`` when there is none)."""
        ext = self.state[1]
        return file_stem(self.item) + ext if ext else ""

    def values(self, count: int) -> tuple[str, ...]:
        """The job's column values (``count`` of them, empty when not known)."""
        values = self.state[3:]
        return values + ("",) * (count - len(values))


class Result:
    """What :meth:`Job.run` produced for one item.

    Args:
        data: bytes to save as the item's file (an image unless ``ext`` is given), or ``None``.
        values: the job's column values, in :attr:`Job.columns` order.
        ext: the file extension (with the dot) for non-image ``data``.
    """

    __slots__ = ("data", "ext", "values")

    def __init__(
        self, data: bytes | None = None, values: Sequence[str] = (), *, ext: str | None = None
    ) -> None:
        self.data = data
        self.values = tuple(values)
        self.ext = ext


class Job(Protocol):
    """One kind of bulk work: what the ``wxqr`` command does with each item.

    Attributes:
        command: the subcommand (recorded in the manifest; ``--resume`` must match it).
        key: the name of the manifest's first column (``"scene"``).
        columns: the job's result columns between ``file`` and ``error``.
        options: every option that shapes the results (kind, page, width, colours...), as
            strings; recorded in ``manifest.json`` and compared on ``--resume``.

    A job may also set ``writes_files = False`` (``wxqr links``: its results are the manifest's
    columns): then the manifest has no ``file`` column and ``--resume`` keeps every ``ok`` row.
    """

    @property
    def command(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def columns(self) -> tuple[str, ...]: ...

    @property
    def options(self) -> Mapping[str, str]: ...

    async def run(self, client: Client, item: str) -> Result:
        """Produce the result of one item; raise (any exception) to fail its row."""
        ...


#: Opens the ``wxqr.Client`` a run uses (closed when the block ends).
OpenClient = Callable[[], contextlib.AbstractAsyncContextManager["Client"]]


class Stop:
    """Why a run stopped early, and what to fix."""

    __slots__ = ("error", "fix")

    def __init__(self, error: str, fix: str) -> None:
        self.error = error
        self.fix = fix


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: Quotas that refuse every remaining item alike: the daily quota (45009), link generations
#: today (44993), permanent Short Links for good (85400).
_STOP_ERRCODES: Final = frozenset({45009, 44993, 85400})


def stop_cause(exc: BaseException) -> Stop | None:
    """The :class:`Stop` for an error every remaining item would hit alike, else ``None``.

    Account-level errcodes (``APIError.account_level``: wrong AppID/AppSecret, IP not
    whitelisted, frozen secret, unreleased Mini Program...), the daily quotas (45009, 44993),
    the permanent Short Link cap (85400), the token cache (Redis) down, and
    the output folder refusing writes (disk full, permissions).
    """
    if isinstance(exc, APIError) and (exc.account_level or exc.errcode in _STOP_ERRCODES):
        meaning = exc.meaning or exc.errmsg
        return Stop(_describe(exc), f"{meaning} (errcode {exc.errcode}, on {exc.endpoint})")
    if isinstance(exc, TokenCacheError):
        return Stop(_describe(exc), "the token cache (Redis) is unreachable: check --redis")
    if isinstance(exc, OSError):
        return Stop(_describe(exc), "the output folder refuses writes: free space or fix it")
    return None


# -- files ---------------------------------------------------------------------------------------


@functools.cache
def _file_mode() -> int:
    """``0o666`` less the process umask (what ``open()`` would give a new file)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(
    path: Path, data: bytes | Callable[[IO[str]], None], *, mode: int | None = None
) -> None:
    """Write ``path`` through a temporary file in the same directory + ``os.replace``.

    Readers see either the old file or the complete new one, never a partial write. The file
    gets ``mode`` (default: ``0o666`` less the umask, like any file the user creates).

    Args:
        path: the file to (re)place.
        data: the bytes, or a function writing UTF-8 text to the open file (streamed).
        mode: permission bits.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(AttributeError):  # no fchmod on Windows
            os.fchmod(fd, _file_mode() if mode is None else mode)
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as text:
                data(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def writes_files(job: Job) -> bool:
    """Whether ``job`` saves a file per item (the manifest then has a ``file`` column)."""
    return bool(getattr(job, "writes_files", True))


def write_manifest(
    out_dir: Path, job: Job, rows: Sequence[Row], *, mode: int | None = None
) -> None:
    """Atomically (re)write ``DIR/manifest.csv``: the header, then one line per input row."""
    width = len(job.columns)
    files = writes_files(job)

    def lines(fh: IO[str]) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow((job.key, "status", *(("file",) if files else ()), *job.columns, "error"))
        for row in rows:
            state = row.state  # one read: a consistent snapshot of the row
            ext, values = state[1], state[3:]
            name = (file_stem(row.item) + ext if ext else "",) if files else ()
            writer.writerow(
                (row.item, state[0], *name, *values, *("",) * (width - len(values)), state[2])
            )

    atomic_write(out_dir / MANIFEST, lines, mode=mode)


def _job_record(job: Job, account: Mapping[str, str]) -> dict[str, Any]:
    return {
        "format": JOB_FORMAT,
        "command": job.command,
        "options": dict(job.options),
        "account": dict(account),
    }


def write_job(out_dir: Path, job: Job, account: Mapping[str, str]) -> None:
    """Atomically write ``DIR/manifest.json``: the job that ``manifest.csv`` belongs to."""
    record = json.dumps(_job_record(job, account), indent=2, ensure_ascii=False) + "\n"
    atomic_write(out_dir / MANIFEST_JOB, record.encode("utf-8"))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    if old.get("command") != new["command"]:
        out.append(f"command {old.get('command')!r} (now {new['command']!r})")
    for group in ("account", "options"):
        before, now = old.get(group) or {}, new[group]
        if not isinstance(before, dict):
            before = {}
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                out.append(f"{name} {before.get(name)!r} (now {now.get(name)!r})")
    return out


def load_previous(
    out_dir: Path, job: Job, account: Mapping[str, str], rows: Mapping[str, Row]
) -> int:
    """For ``--resume``: mark ``ok`` the rows a previous run of the same job finished.

    A previous row is kept when its status is ``ok``, its file is a plain name in ``DIR`` with
    the stem :func:`file_stem` gives its item, and that file still exists. The manifest is
    streamed (never loaded whole); a BOM (a manifest re-saved by a spreadsheet) is ignored.

    Args:
        out_dir: the output folder.
        job: the job about to run.
        account: what identifies the account (``appid``, ``api``).
        rows: the rows of this run by item.

    Returns:
        How many distinct items were kept.

    Raises:
        UsageError: the manifest was written by another job (command, options or account),
            ``manifest.json`` is missing or unreadable, or ``manifest.csv`` is not a manifest.
    """
    path, record_path = out_dir / MANIFEST, out_dir / MANIFEST_JOB
    if not path.exists() and not record_path.exists():
        return 0
    try:
        old = json.loads(record_path.read_text(encoding="utf-8-sig"))
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise UsageError(
            f"cannot resume: {record_path} is missing, so the options {path} was made with are "
            "unknown; run without --resume, or into a new --out"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot resume: cannot read {record_path}: {exc}") from None
    changed = _differences(old, _job_record(job, account))
    if changed:
        raise UsageError(
            f"cannot resume: {out_dir} holds a different job: "
            + "; ".join(changed)
            + ". Run with the same options, or into a new --out"
        )
    kept = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            csv.field_size_limit(MAX_FIELD)
            reader = csv.reader(_lines(fh, str(path)), strict=True)
            header = next(reader, [])
            index = {name: i for i, name in enumerate(header)}
            files = writes_files(job)
            if not {job.key, "status", *(("file",) if files else ())} <= set(index):
                raise UsageError(f"cannot resume: {path} is not a wxqr manifest")
            extra = [index.get(name) for name in job.columns]
            for fields in reader:
                if len(fields) != len(header):
                    continue
                row = rows.get(fields[index[job.key]])
                if row is None or row.status == OK or fields[index["status"]] != OK:
                    continue
                if not files:  # the results are the columns themselves
                    row.state = (OK, "", "", *("" if i is None else fields[i] for i in extra))
                    kept += 1
                    continue
                name = fields[index["file"]]
                stem, dot, ext = name.rpartition(".")
                if Path(name).name != name or stem != file_stem(row.item) or not dot:
                    continue
                if (out_dir / name).is_file():
                    values = tuple("" if i is None else fields[i] for i in extra)
                    row.state = (OK, "." + ext, "", *values)
                    kept += 1
    except FileNotFoundError:
        return 0
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot resume: {path} is not UTF-8 ({exc.reason})") from None
    except csv.Error as exc:
        raise UsageError(f"cannot resume: {path} is not valid CSV: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot resume: cannot read {path}: {exc.strerror or exc}") from None
    return kept


@contextlib.contextmanager
def lock_output(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for one run (released when the process ends).

    Raises:
        UsageError: another run holds it.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs are not serialised there
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{out_dir} is in use by another wxqr run (one run per output folder): wait for "
                "it to finish, or choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)


# -- progress ------------------------------------------------------------------------------------


class Progress(Protocol):
    """Where completions are reported."""

    def advance(self) -> None:
        """One more item is finished."""


class _NoProgress:
    def advance(self) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, description: str = "generating") -> Iterator[Progress]:
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
    task = bar.add_task(description, total=total)

    class _Rich:
        def advance(self) -> None:
            bar.advance(task)

    with bar:
        yield _Rich()


# -- the run -------------------------------------------------------------------------------------


class BatchRun:
    """One run of a job over its rows: workers, checkpoints, early stop.

    Args:
        job: what to do with each item.
        rows: one per input line, in input order (duplicates share a :class:`Row`).
        out_dir: where files and the manifest go.
        concurrency: workers (and so requests in flight).
    """

    def __init__(self, job: Job, rows: list[Row], out_dir: Path, concurrency: int) -> None:
        self.job = job
        self.rows = rows
        self.out_dir = out_dir
        self.concurrency = concurrency
        self.stop: Stop | None = None
        self.dirty = False
        self._mode = _file_mode()

    def distinct(self) -> Iterator[Row]:
        """Each distinct row once, in input order."""
        seen: set[int] = set()
        for row in self.rows:
            if id(row) not in seen:
                seen.add(id(row))
                yield row

    def checkpoint(self) -> None:
        """Write the manifest as it stands now."""
        self.dirty = False
        write_manifest(self.out_dir, self.job, self.rows, mode=self._mode)

    def _save(self, row: Row, result: Result) -> None:
        ext = ""
        if result.data is not None:
            if result.ext is not None:
                ext = result.ext
            else:
                kind = image_kind(result.data)
                if kind is None:  # the decoder guarantees an image; never write anything else
                    raise ResponseDecodeError("the answer was not a complete image")
                ext = _EXTENSIONS[kind]
        if result.data is not None:
            path = self.out_dir / (file_stem(row.item) + ext)
            try:
                atomic_write(path, result.data, mode=self._mode)
            except OSError as exc:
                raise _WriteError(exc, path) from None
        row.state = (OK, ext, "", *result.values)

    async def _one(self, client: Client, row: Row) -> None:
        try:
            result = await self.job.run(client, row.item)
            if result.data is None:
                self._save(row, result)
            else:
                # Shielded: an interrupted run never leaves a file on disk its manifest omits.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._save, row, result)
        except Exception as exc:  # every failure becomes a manifest row; nothing is dropped
            if isinstance(exc, _WriteError):
                exc = exc.cause
            row.state = (FAILED, "", _describe(exc))
            stop = stop_cause(exc)
            if stop is not None and self.stop is None:
                self.stop = stop
        self.dirty = True

    async def run(self, client: Client, progress: Progress) -> None:
        """Produce every pending row with ``concurrency`` workers, until done or stopped.

        Workers pull rows from a bounded memory stream, so memory and tasks stay bounded
        however many items there are. The manifest is checkpointed at most once a second (and
        no more often than ten times the last write took).
        """
        send, receive = anyio.create_memory_object_stream[Row](self.concurrency)
        pending = sum(1 for row in self.distinct() if row.status == PENDING)

        async def worker(items: ObjectReceiveStream[Row], scope: anyio.CancelScope) -> None:
            async with items:
                async for row in items:
                    await self._one(client, row)
                    progress.advance()
                    if self.stop is not None:
                        scope.cancel()

        async def checkpoints() -> None:
            interval = CHECKPOINT_INTERVAL
            while True:
                await anyio.sleep(interval)
                if self.dirty:
                    started = time.perf_counter()
                    try:
                        await anyio.to_thread.run_sync(self.checkpoint)
                    except OSError as exc:
                        self.stop = self.stop or stop_cause(exc)
                        workers.cancel_scope.cancel()
                        return
                    interval = max(CHECKPOINT_INTERVAL, 10 * (time.perf_counter() - started))

        async with anyio.create_task_group() as outer:
            outer.start_soon(checkpoints)
            async with anyio.create_task_group() as workers:
                for _ in range(min(self.concurrency, max(1, pending))):
                    workers.start_soon(worker, receive.clone(), workers.cancel_scope)
                receive.close()
                async with send:
                    for row in self.distinct():
                        if row.status == PENDING:
                            await send.send(row)
            outer.cancel_scope.cancel()
        if self.stop is not None:
            cause = f"skipped: run stopped by {self.stop.error}"
            for row in self.distinct():
                if row.status == PENDING:
                    row.state = (SKIPPED, "", cause)

    def counts(self) -> dict[str, int]:
        """How many input lines (not distinct items) have each status."""
        counts = dict.fromkeys((OK, FAILED, SKIPPED, PENDING), 0)
        for row in self.rows:
            counts[row.status] += 1
        return counts


class _WriteError(Exception):
    """Saving a result failed: the output folder's fault, not the item's."""

    def __init__(self, cause: OSError, path: Path) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.path = path


def build_rows(items: Iterable[str]) -> tuple[list[Row], dict[str, Row]]:
    """One :class:`Row` per distinct item; the list has one entry per input line."""
    by_item: dict[str, Row] = {}
    rows = []
    for item in items:
        row = by_item.get(item)
        if row is None:
            row = by_item[item] = Row(item)
        rows.append(row)
    return rows, by_item


def _shown(item: str) -> str:
    return repr(item) if len(item) <= 80 else f"{item[:60]!r}...({len(item)} characters)"


def _report(run: BatchRun, kept: int, elapsed: float) -> int:
    failed = [row for row in run.distinct() if row.status == FAILED]
    for row in failed[:SHOWN_FAILURES]:
        print(f"failed {_shown(row.item)}: {row.error}", file=sys.stderr)
    if len(failed) > SHOWN_FAILURES:
        more = len(failed) - SHOWN_FAILURES
        print(f"... and {more} more (see {run.out_dir / MANIFEST})", file=sys.stderr)
    counts = run.counts()
    line = f"ok {counts[OK]}" + (f" ({kept} kept)" if kept else "") + f" / failed {counts[FAILED]}"
    for status in (SKIPPED, PENDING):
        if counts[status]:
            line += f" / {status} {counts[status]}"
    print(f"{line} / {elapsed:.2f} s", file=sys.stderr)
    if run.stop is not None:
        print(
            f"wxqr: stopped: {run.stop.error}\nwxqr: fix: {run.stop.fix}; then run the same "
            "command with --resume",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    return EXIT_OK if counts[OK] == len(run.rows) else EXIT_FAILED


def run_job(
    job: Job,
    items: Sequence[str],
    out_dir: Path,
    open_client: OpenClient,
    *,
    account: Mapping[str, str],
    resume: bool,
    concurrency: int,
) -> int:
    """Run ``job`` over ``items`` into ``out_dir``: the whole ``wxqr`` batch command.

    Takes the output lock, loads the previous manifest on ``resume``, writes the manifest
    (every row ``pending``) before the first request, runs, writes it again at the end
    (Ctrl-C and errors included) and prints the failures and a summary on stderr.

    Args:
        job: what to do with each item (options already validated).
        items: the input items, in order (duplicates allowed).
        out_dir: the output folder (created if missing).
        open_client: opens the client (called once, inside the event loop).
        account: what identifies the account in ``manifest.json`` (``appid``, ``api``).
        resume: keep what a previous run of the same job finished.
        concurrency: workers.

    Returns:
        The exit status (:data:`EXIT_OK` ...).
    """
    started = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"wxqr: error: cannot create --out {out_dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock_output(out_dir))
            rows, by_item = build_rows(items)
            kept_items = load_previous(out_dir, job, account, by_item) if resume else 0
            kept = sum(1 for row in rows if row.status == OK) if kept_items else 0
            del by_item  # rows hold everything from here on
            run = BatchRun(job, rows, out_dir, concurrency)
            write_job(out_dir, job, account)
            run.checkpoint()
        except UsageError as exc:
            print(f"wxqr: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"wxqr: error: cannot write to {out_dir}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        pending = sum(1 for row in run.distinct() if row.status == PENDING)

        async def main() -> None:
            async with open_client() as client:
                with progress_bar(pending) as progress:
                    await run.run(client, progress)

        interrupted = False
        try:
            anyio.run(main)
        except KeyboardInterrupt:
            interrupted = True
            print("wxqr: interrupted", file=sys.stderr)
        finally:
            try:
                run.checkpoint()
            except OSError as exc:
                print(
                    f"wxqr: error: cannot save {out_dir / MANIFEST} ({exc.strerror}): it holds "
                    "the last checkpoint",
                    file=sys.stderr,
                )
        status = _report(run, kept, time.perf_counter() - started)
        return EXIT_INTERRUPTED if interrupted else status
    raise AssertionError("unreachable")
