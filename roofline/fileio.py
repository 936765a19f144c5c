"""Reading and writing the user's files safely, in one place.

* `read_text`: a file the user named (scenario, config.json, calibration profile, trace) is read
  only if it is a regular file (not a FIFO, device, folder, dangling link or link loop), no larger
  than the caller's limit and text; every failure becomes the caller's own error type with a
  message naming the file. It is opened without blocking and checked on the open descriptor, so a
  FIFO swapped in after a check cannot hang the read.
* `load_yaml`: YAML text -> data with `yaml.safe_load` semantics, in bounded time and memory:
  nesting is bounded on the event stream, and aliases are counted on the composed node graph
  before anything is constructed, so an anchor bomb is refused instead of expanded.
* `write_atomic`: outputs are written to a temporary file beside the target, synced, then renamed
  over it, so a crash, Ctrl-C or SIGTERM never leaves half a file where the user's file was, nor a
  temporary file beside it. Only regular files are replaced: a symlink, FIFO, device or a file with
  other hard links is refused (replacing it would silently break the link), and so is a file the
  command reads (`inputs`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path

import yaml

MAX_ALIAS_EXPANSION = 100_000  # nodes that aliases may add on top of the document's own nodes
MAX_YAML_DEPTH = 100  # nesting of sequences and mappings
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_text(path, max_bytes: int, what: str, fail) -> str:
    """The text of `path`; `fail(message)` builds the exception raised for a missing, non-regular,
    oversized or binary file (`what` names the kind of file in the message)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        dangling = os.path.islink(path)
        raise fail(
            f"{path}: no such {what}" + (" (a symbolic link to nothing)" if dangling else "")
        ) from None
    except OSError as exc:
        raise fail(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    except ValueError:  # a name no file can have (an embedded NUL byte)
        raise fail(f"{path!r}: not a valid {what} name (it contains a NUL byte)") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise fail(f"{path}: no such {what} ({_kind(mode)}, not a regular file)")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise fail(f"{path}: larger than {max_bytes} bytes; not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"{path}: not a text file; not a {what}") from None


class YAMLLimitError(ValueError):
    """A YAML document that nests too deep or whose aliases expand past the bound."""


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _alias_growth(root) -> int:
    """How many nodes expanding every alias would add: the expanded size minus the distinct nodes,
    counted over the composed graph (each shared node once), iteratively; a self-containing
    alias is refused."""
    size: dict = {}
    open_nodes: set = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
        elif key not in size:
            if key in open_nodes:
                raise YAMLLimitError("an alias refers to the node that contains it")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return size.get(id(root), 0) - len(size)


def load_yaml(text: str, max_alias_expansion: int = MAX_ALIAS_EXPANSION, max_depth: int = MAX_YAML_DEPTH):
    """One YAML document's data, as `yaml.safe_load` gives it. Raises yaml.YAMLError for bad YAML
    and YAMLLimitError (with the bound in the message) for nesting deeper than `max_depth` or
    aliases adding more than `max_alias_expansion` nodes; both checks run before construction."""
    depth = 0
    aliases = False
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > max_depth:
                raise YAMLLimitError(f"nested more than {max_depth} levels deep")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases = True
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if aliases:  # (a '*' in a string is no alias: the walk only runs where the events had one)
            growth = _alias_growth(root)
            if growth > max_alias_expansion:
                raise YAMLLimitError(
                    f"its aliases expand to {growth:,} extra elements (at most {max_alias_expansion:,}); "
                    "write the values out instead"
                )
        return loader.construct_document(root)
    finally:
        loader.dispose()


def load_yaml_file(path, max_bytes: int, what: str, fail):
    """read_text + load_yaml, every failure as `fail(message)` naming the file."""
    return parse_yaml(read_text(path, max_bytes, what, fail), path, what, fail)


def parse_yaml(text: str, path, what: str, fail):
    """load_yaml of a file's text, every failure as `fail(message)` naming the file."""
    try:
        return load_yaml(text)
    except YAMLLimitError as exc:
        raise fail(f"{path}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise fail(_yaml_error(path, exc)) from None
    except RecursionError:
        raise fail(f"{path}: nested too deeply to be a {what}") from None


def _yaml_error(path, exc: yaml.YAMLError) -> str:
    """One line naming the file and the line (1-based) where the parser stopped, and why."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return f"{path}: not valid YAML ({' '.join(str(exc).split())[:300]})"
    context = getattr(exc, "context", None)
    why = f"{problem} ({context})" if context else problem
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {' '.join(why.split())[:300]}"


class OutputRefused(OSError):
    """An output target that write_atomic will not replace (not a regular file, or an input)."""


def check_output(path, inputs=()) -> None:
    """Refuse an output target that is not a plain regular file, or that is one of `inputs`."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputRefused(exc.errno, f"cannot write there ({exc.strerror})", str(p)) from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputRefused(21, f"{_kind(st.st_mode)}; only a regular file is replaced", str(p))
    if st.st_nlink > 1:
        raise OutputRefused(
            31, f"has {st.st_nlink - 1} other hard link(s), which replacing it would break", str(p)
        )
    for other in inputs:
        try:
            same = os.path.samefile(p, other)
        except OSError:
            same = False
        if same:
            raise OutputRefused(17, f"is the input {other}; refusing to overwrite it", str(p))


class _Signalled(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum, frame):
    raise _Signalled(signum)


@contextlib.contextmanager
def _signals_raise():
    """While writing, SIGTERM and SIGHUP raise (so cleanup runs) instead of killing at once."""
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                saved[sig] = signal.signal(sig, _raise_signalled)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def write_atomic(path, text: str, inputs=()) -> None:
    """Write `text` to `path` atomically; refuses non-regular targets and the files in `inputs`."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(21, "is a directory, not a file", str(p))
    check_output(p, inputs)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with _signals_raise():
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
            os.fchmod(fd, _mode_for(p))  # mkstemp's 0600 would hide a report from its readers
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
            tmp = None
    except _Signalled as exc:
        _remove(tmp)
        os.kill(os.getpid(), exc.signum)  # the previous handler (default: terminate) now runs
        raise SystemExit(128 + exc.signum) from None
    except BaseException:
        _remove(tmp)
        raise


def _mode_for(path: Path) -> int:
    """The file's own permissions when it exists, else what a new file gets (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _remove(tmp) -> None:
    if tmp is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
