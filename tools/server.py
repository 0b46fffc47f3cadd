"""`make server`: a shared MLflow tracking server for a team or a class, with logins.

One command gives what MLflow's own team set-up needs: PostgreSQL (its own cluster in the state
directory, on 127.0.0.1), `mlflow server` on it with the runs' artifacts served by the server
(clients upload and download through HTTP, `mlflow-artifacts:` URIs: no shared disk), and MLflow's
basic-auth app (users and their permissions, in the same PostgreSQL). The admin's password is
generated on first use into `<state>/admin-password` (mode 600), never MLflow's documented default.

    python -m tools.server [--port 5050] [--state .mlflow-server]
    python -m tools.server add-user NAME [--permission READ|EDIT] [--password P]

The first runs the server until Ctrl-C or SIGTERM, then stops MLflow and PostgreSQL cleanly; if
`mlflow server` dies (a crash, kill -9), it is started again on the same port. The second, run
while the server is up, is what a teacher runs per student: it creates the login and grants it
READ (look at every run) or EDIT (also record runs) on the project's MLflow experiment.

PostgreSQL refuses to run as root: started by root, its cluster belongs to the `postgres` system
user (Debian's package creates it), else to `nobody`, so that user must be able to enter the state
directory's parents (not so under /root: said before any work). Started by anyone else, it is theirs.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.ui import QUIET, experiment_name, port_is_free, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE = ROOT / ".mlflow-server"
DEFAULT_PORT = 5050
HOST = "127.0.0.1"  # loopback only: put a TLS proxy in front to serve other machines
ADMIN = "admin"
POSTGRES_ROOT = Path("/usr/lib/postgresql")  # Debian's: <major>/bin/{initdb,pg_ctl,postgres}
DB_USER = "mlflow"  # PostgreSQL's superuser in this cluster (initdb -U)
TRACKING_DB, AUTH_DB = "mlflow", "mlflow_auth"
PERMISSIONS = ("READ", "EDIT", "MANAGE")
START_SECONDS = 180  # MLflow's first start creates its schema in PostgreSQL (~5 s here; CI is slower)
AUTH_CACHE_SECONDS = 60  # how long a worker trusts a checked login (write_auth_config)
STABLE_SECONDS = 10  # an `mlflow server` that dies sooner after coming up is not restarted


class Refused(Exception):
    """Bad input or environment, found before any work: main prints it as one line."""


@dataclass(frozen=True)
class State:
    """Everything the server keeps, under one directory (default .mlflow-server/, gitignored)."""

    root: Path

    @property
    def data(self) -> Path:  # PGDATA, owned by the PostgreSQL user
        return self.root / "postgres"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def auth_config(self) -> Path:
        return self.root / "basic_auth.ini"

    @property
    def running(self) -> Path:  # the live server's URI and ports, for add-user and the tests
        return self.root / "server.json"

    def secret(self, name: str) -> Path:  # admin-password, db-password, flask-secret-key
        return self.root / name


# --- PostgreSQL -----------------------------------------------------------------------------------


def postgres_bin(data: Path | None = None) -> Path:
    """The directory of initdb, pg_ctl and postgres: Debian's /usr/lib/postgresql/<major>/bin (the
    cluster's own major version if it exists, as a cluster only runs under its own version), else
    the newest there, else the one pg_ctl on PATH is in."""
    installed = sorted(POSTGRES_ROOT.glob("*/bin/pg_ctl"), key=lambda p: _major(p.parent.parent.name))
    version = data / "PG_VERSION" if data else None
    if version and version.is_file():
        wanted = version.read_text().strip()
        for pg_ctl in installed:
            if pg_ctl.parent.parent.name == wanted:
                return pg_ctl.parent
        raise Refused(f"the cluster in {data} is PostgreSQL {wanted}, which is not installed "
                      f"(found: {', '.join(p.parent.parent.name for p in installed) or 'none'})")
    if installed:
        return installed[-1].parent
    import shutil

    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    raise Refused("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_ctl on PATH): "
                  "apt-get install postgresql")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


@dataclass(frozen=True)
class Owner:
    """Who runs PostgreSQL: the caller, or (for root, which PostgreSQL refuses) a system user."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict:
        if self.uid == os.geteuid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def postgres_owner() -> Owner:
    """The caller unless root; for root Debian's `postgres` user, else `nobody`."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
    else:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            entry = pwd.getpwnam("nobody")
    return Owner(entry.pw_name, entry.pw_uid, entry.pw_gid)


def unreachable_parent(path: Path, owner: Owner) -> Path | None:
    """The first existing directory above `path` that `owner` cannot enter (PostgreSQL then fails
    to find its data directory with a less helpful message), or None."""
    for parent in reversed(path.resolve().parents):
        if parent.exists() and not _enterable(parent.stat(), owner):
            return parent
    return None


def _enterable(st: os.stat_result, owner: Owner) -> bool:
    if owner.uid == 0:
        return True
    if st.st_uid == owner.uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == owner.gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def pg(bin_dir: Path, owner: Owner, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the cluster's owner, from / (pg_ctl needs a current directory
    it can read), in a session of its own: Ctrl-C in the terminal must not reach the postmaster
    before this script stops it."""
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd="/", capture_output=True, text=True,
                          timeout=timeout, start_new_session=True, **owner.popen_kwargs(), **kw)


def init_cluster(state: State, bin_dir: Path, owner: Owner, password: str) -> bool:
    """initdb on first use: superuser DB_USER with `password` (scram over TCP), listening on
    127.0.0.1 only, no Unix socket. Returns whether it created the cluster."""
    if (state.data / "PG_VERSION").is_file():
        return False
    state.data.mkdir(mode=0o700)
    os.chown(state.data, owner.uid, owner.gid)
    pwfile = state.root / ".initdb-password"
    pwfile.write_text(password + "\n")
    try:
        os.chmod(pwfile, 0o600)
        os.chown(pwfile, owner.uid, owner.gid)
        result = pg(bin_dir, owner, "initdb", "-D", str(state.data), "-U", DB_USER, f"--pwfile={pwfile}",
                    "--auth=scram-sha-256", "-E", "UTF8", "--locale=C")
    finally:
        pwfile.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")
    with open(state.data / "postgresql.conf", "a") as conf:  # appended: the file keeps its owner
        conf.write("\n# tools/server.py\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
    return True


def postgres_running(state: State, bin_dir: Path, owner: Owner) -> bool:
    return pg(bin_dir, owner, "pg_ctl", "status", "-D", str(state.data)).returncode == 0


def start_postgres(state: State, bin_dir: Path, owner: Owner, port: int) -> None:
    """pg_ctl start on `port`, waiting until it accepts connections; its log: <state>/postgres.log."""
    log = state.root / "postgres.log"
    if not log.exists():
        log.touch()
        os.chown(log, owner.uid, owner.gid)
    result = pg(bin_dir, owner, "pg_ctl", "start", "-D", str(state.data), "-l", str(log), "-w", "-t", "60",
                "-o", f"-p {port}")
    if result.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-5:])
        raise RuntimeError(f"PostgreSQL did not start on {HOST}:{port}:\n{result.stderr}{tail}")


def stop_postgres(state: State, bin_dir: Path, owner: Owner) -> None:
    """A fast shutdown: open transactions roll back, everything committed stays."""
    pg(bin_dir, owner, "pg_ctl", "stop", "-D", str(state.data), "-m", "fast", "-w", "-t", "60")


def create_databases(port: int, password: str) -> None:
    """The tracking store's and the logins' databases, once."""
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=port, user=DB_USER, password=password, dbname="postgres",
                            connect_timeout=10)
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            for name in (TRACKING_DB, AUTH_DB):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def database_uri(pg_port: int, name: str) -> str:
    """SQLAlchemy's URI through psycopg2 (2.1's default for postgresql:// is psycopg 3). No password
    in it (it would show in `ps`): libpq reads PGPASSWORD from the environment."""
    return f"postgresql+psycopg2://{DB_USER}@{HOST}:{pg_port}/{name}"


# --- Secrets and the auth app's configuration -----------------------------------------------------


def secret(state: State, name: str) -> str:
    """A generated secret kept in <state>/<name> (mode 600): created once, read afterwards."""
    path = state.secret(name)
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def write_auth_config(state: State, pg_port: int) -> None:
    """basic-auth's settings: users in PostgreSQL, READ for a logged-in user without a grant. The
    admin's password is not in it: MLflow takes it from MLFLOW_AUTH_ADMIN_PASSWORD on first start.

    The login cache is on (AUTH_CACHE_SECONDS): without it every request checks the password's
    PBKDF2 hash, ~0.3 s of CPU, and one evaluate@ makes ~100 requests. The price, per MLflow's
    basic_auth.ini: a password changed or a user deleted through one worker is still accepted by
    the other worker for up to that long."""
    config = configparser.ConfigParser()
    config["mlflow"] = {"default_permission": "READ", "database_uri": database_uri(pg_port, AUTH_DB),
                        "admin_username": ADMIN,
                        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
                        "auth_cache_ttl_seconds": str(AUTH_CACHE_SECONDS)}
    with open(state.auth_config, "w") as f:
        config.write(f)


# --- MLflow ---------------------------------------------------------------------------------------


def mlflow_command(state: State, port: int, pg_port: int, workers: int) -> list[str]:
    uri = database_uri(pg_port, TRACKING_DB)
    return [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
            "--backend-store-uri", uri, "--registry-store-uri", uri,
            "--artifacts-destination", str(state.artifacts), "--app-name", "basic-auth",
            "--workers", str(workers), "--uvicorn-opts", "--log-level warning --no-access-log"]


def mlflow_env(state: State) -> dict[str, str]:
    """QUIET as `make ui` (no job runner: ~1.3 GiB less), the secrets, and no client settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | QUIET
    return env | {"PGPASSWORD": secret(state, "db-password"), "PGCONNECT_TIMEOUT": "5",
                  "MLFLOW_AUTH_CONFIG_PATH": str(state.auth_config),
                  "MLFLOW_AUTH_ADMIN_PASSWORD": secret(state, "admin-password"),
                  "MLFLOW_FLASK_SERVER_SECRET_KEY": secret(state, "flask-secret-key")}


def start_mlflow(state: State, port: int, pg_port: int, workers: int = 2) -> subprocess.Popen:
    """`mlflow server` in a process group of its own (it forks uvicorn and its workers: stopping
    or killing it means the whole group), logging to <state>/mlflow.log; returns once healthy."""
    log = open(state.root / "mlflow.log", "ab")
    server = subprocess.Popen(mlflow_command(state, port, pg_port, workers), cwd=state.root, env=mlflow_env(state),
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    if not wait_healthy(f"http://{HOST}:{port}", server, timeout=START_SECONDS):
        stop_mlflow(server)
        tail = "".join((state.root / "mlflow.log").read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"mlflow server did not come up on {HOST}:{port}; "
                           f"the end of {state.root / 'mlflow.log'}:\n{tail}")
    return server


def stop_mlflow(server: subprocess.Popen) -> None:
    """SIGTERM to the server's group, SIGKILL after 30 s; also reaps workers left by a killed parent."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not group_alive(server.pid):
            return


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: a worker whose parent
    died is reaped by init, which in a container may not do it at once."""
    import psutil

    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except ProcessLookupError:
            continue
    return False


# --- `python -m tools.server`: run it -------------------------------------------------------------


def check_serve(state: State, port: int, pg_port: int | None) -> tuple[Path, Owner]:
    """Everything that can be refused before any work: the ports, PostgreSQL, the state's place."""
    if not port_is_free(HOST, port):
        raise Refused(f"{HOST}:{port} is in use (another server?); try `make server PORT={port + 1}`")
    if pg_port is not None and not port_is_free(HOST, pg_port):
        raise Refused(f"{HOST}:{pg_port} (--pg-port) is in use")
    bin_dir = postgres_bin(state.data)
    owner = postgres_owner()
    blocked = unreachable_parent(state.data, owner)
    if blocked is not None:
        raise Refused(f"PostgreSQL runs as {owner.name!r}, which cannot enter {blocked}: "
                      f"choose a --state whose parent directories it can enter")
    try:
        import psycopg2  # noqa: F401
        import flask_wtf  # noqa: F401  (MLflow's basic-auth app)
    except ImportError as exc:
        raise Refused(f"{exc.name} is missing: `pip install -r requirements.txt`") from None
    return bin_dir, owner


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare(state: State, bin_dir: Path, owner: Owner, pg_port: int) -> bool:
    """The state directory, the cluster (created once) and its databases, PostgreSQL started.
    Returns whether this is the first use."""
    state.root.mkdir(parents=True, exist_ok=True)
    os.chmod(state.root, 0o711)  # the PostgreSQL user enters it; the secrets are 600
    state.artifacts.mkdir(exist_ok=True)
    first = init_cluster(state, bin_dir, owner, secret(state, "db-password"))
    if postgres_running(state, bin_dir, owner):  # left by a server that was killed: ours to stop
        print(f"PostgreSQL of an earlier run was still running in {state.data}: restarting it", file=sys.stderr)
        stop_postgres(state, bin_dir, owner)
    start_postgres(state, bin_dir, owner, pg_port)
    create_databases(pg_port, secret(state, "db-password"))
    write_auth_config(state, pg_port)
    return first


def show(state: State, uri: str, pg_port: int) -> None:
    password_file = state.secret("admin-password")
    print(f"\nMLflow tracking server: {uri}  (PostgreSQL on {HOST}:{pg_port}; state in {state.root})\n"
          f"Log in as {ADMIN!r} with the password in {password_file}. To record runs there:\n"
          f"  export MLFLOW_TRACKING_URI={uri} MLFLOW_TRACKING_USERNAME={ADMIN} "
          f"MLFLOW_TRACKING_PASSWORD=$(cat {password_file})\n"
          f"  make run\n"
          "Add a student (READ: look; EDIT: also record runs): "
          "python -m tools.server add-user NAME --permission EDIT\n"
          "Ctrl-C stops the server and PostgreSQL.", flush=True)


class Supervised:
    """The live `mlflow server`: `wait()` starts it again when it dies after running a while (a
    crash, kill -9); clients see a refused connection for the seconds that takes, and lose nothing
    they recorded (it is in PostgreSQL and <state>/artifacts). `stop()` stops whichever is live."""

    def __init__(self, state: State, port: int, pg_port: int, workers: int):
        self.state, self.port, self.pg_port, self.workers = state, port, pg_port, workers
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = start_mlflow(self.state, self.port, self.pg_port, self.workers)
        self.state.running.write_text(json.dumps(
            {"uri": f"http://{HOST}:{self.port}", "port": self.port, "pg_port": self.pg_port,
             "pid": os.getpid(), "mlflow_pid": self.process.pid}) + "\n")

    def wait(self) -> int:
        while True:
            up = time.monotonic()
            code = self.process.wait()
            stop_mlflow(self.process)  # its uvicorn workers, if only the parent died
            if time.monotonic() - up < STABLE_SECONDS:
                print(f"error: mlflow server exited ({code}) within {STABLE_SECONDS} s of starting; "
                      f"see {self.state.root / 'mlflow.log'}", file=sys.stderr)
                return 1
            print(f"mlflow server exited ({code}); starting it again", file=sys.stderr, flush=True)
            self.start()
            print("mlflow server is back", file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self.process is not None:
            stop_mlflow(self.process)


def serve(args) -> int:
    state = State(args.state.resolve())
    bin_dir, owner = check_serve(state, args.port, args.pg_port)
    pg_port = args.pg_port or free_port()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops it as Ctrl-C does
    server = Supervised(state, args.port, pg_port, args.workers)
    try:
        if prepare(state, bin_dir, owner, pg_port):
            print(f"Created the PostgreSQL cluster in {state.data}; the admin's password is in "
                  f"{state.secret('admin-password')} (mode 600)")
        server.start()
        show(state, f"http://{HOST}:{args.port}", pg_port)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second `kill` must not cut the clean-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.stop()
        state.running.unlink(missing_ok=True)
        if (state.data / "postmaster.pid").exists():
            stop_postgres(state, bin_dir, owner)
        print("Stopped the MLflow server and PostgreSQL.", file=sys.stderr)


# --- `python -m tools.server add-user`: a login per student ---------------------------------------


def log_in_as_admin(state: State, uri: str | None) -> str:
    """The server's URI (from server.json unless given); the admin's login set for MLflow's client
    (it reads MLFLOW_TRACKING_USERNAME and _PASSWORD from the environment)."""
    if uri is None:
        if not state.running.is_file():
            raise Refused(f"no server is running with state {state.root} (start it with `make server`), "
                          "or give its --uri")
        uri = json.loads(state.running.read_text())["uri"]
    password = state.secret("admin-password")
    if not password.is_file():
        raise Refused(f"{password} does not exist: run add-user on the machine and state of the server")
    os.environ["MLFLOW_TRACKING_USERNAME"] = ADMIN
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password.read_text().strip()
    return uri


def project_experiment(uri: str, name: str) -> str:
    """The project's experiment id, created (as `make run` would) if no run was recorded yet, so a
    student can be granted it before the first run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


def add_user(args) -> int:
    """Create the login (or keep an existing one's password) and set its permission on the
    project's experiment; prints what the student exports."""
    import warnings

    warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
    from mlflow.exceptions import RestException
    from mlflow.server.auth.client import AuthServiceClient

    uri = log_in_as_admin(State(args.state.resolve()), args.uri)
    auth = AuthServiceClient(uri)
    name = experiment_name(ROOT)
    try:
        experiment_id = project_experiment(uri, name)
        password = args.password or secrets.token_urlsafe(12)
        created = create_user(auth, args.name, password)
        grant(auth, args.name, experiment_id, args.permission)
    except RestException as exc:  # e.g. "Password must be at least 12 characters."
        raise Refused(f"the server refused: {exc.message}") from None
    login = f"password {password}" if created else "password unchanged (the user existed)"
    print(f"{args.name}: {args.permission} on experiment {name!r} ({experiment_id}) at {uri}; {login}\n"
          f"  export MLFLOW_TRACKING_URI={uri} MLFLOW_TRACKING_USERNAME={args.name}"
          + (f" MLFLOW_TRACKING_PASSWORD={password}" if created else ""))
    return 0


def create_user(auth, name: str, password: str) -> bool:
    """Returns False if the user already exists (nothing changed)."""
    from mlflow.exceptions import RestException

    try:
        auth.create_user(name, password)
    except RestException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return False
    return True


def grant(auth, name: str, experiment_id: str, permission: str) -> None:
    """Set the user's permission on the experiment, replacing an earlier grant (READ -> EDIT)."""
    from mlflow.exceptions import RestException

    try:
        auth.grant_user_permission(name, "experiment", experiment_id, permission)
    except RestException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(name, "experiment", experiment_id)
        auth.grant_user_permission(name, "experiment", experiment_id, permission)


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m tools.server", description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE,
                        help="PostgreSQL's cluster, the artifacts and the secrets (default: .mlflow-server/)")
    commands = parser.add_subparsers(dest="command")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"MLflow's port on {HOST}")
    parser.add_argument("--pg-port", type=int, help="PostgreSQL's port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--workers", type=int, default=2, help="mlflow server's worker processes")
    user = commands.add_parser("add-user", help="a login with READ or EDIT on the project's experiment")
    user.add_argument("name", help="the login, e.g. the student's name")
    user.add_argument("--permission", choices=PERMISSIONS, default="READ",
                      help="READ: see every run (default); EDIT: also record runs; MANAGE: also delete runs")
    user.add_argument("--password", help="default: a generated one, printed once")
    user.add_argument("--uri", help="the server (default: the one running with --state)")
    user.add_argument("--state", type=Path, default=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return add_user(args) if args.command == "add-user" else serve(args)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # PostgreSQL or MLflow did not start: what they said
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
