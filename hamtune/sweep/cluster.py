"""A Ray cluster's workers that get hamtune themselves: the `runtime_env:` of a space and `--runtime-env`, as
plain data checked once (what Ray does with it, and ending one cluster's processes: sweep/tune/cluster.py)."""

from __future__ import annotations

from pathlib import Path

from hamtune.errors import HamtuneError

RUNTIME_ENV_KEYS = ("pip", "uv", "conda", "working_dir", "py_modules", "py_executable", "env_vars", "excludes", "config")
LOCAL_PATH_KEYS = ("working_dir", "py_modules")


def runtime_env(value, where: str, base: Path) -> dict:
    """A Ray runtime_env as plain data, checked once: a mapping of the keys hamtune's users need (pip or uv
    requirements, a wheel or source folder in py_modules, a working_dir, env_vars). Local paths are made
    absolute against `base` (the space file's folder, or the working directory for --runtime-env)."""
    if not isinstance(value, dict) or not value:
        raise HamtuneError(f"{where}: expected a mapping of Ray runtime_env keys ({', '.join(RUNTIME_ENV_KEYS)}), got {value!r}")
    unknown = sorted(set(value) - set(RUNTIME_ENV_KEYS))
    if unknown:
        raise HamtuneError(f"{where}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(RUNTIME_ENV_KEYS)}")
    env = dict(value)
    if "env_vars" in env and not (isinstance(env["env_vars"], dict) and all(isinstance(v, str) for v in env["env_vars"].values())):
        raise HamtuneError(f"{where}: env_vars: expected a mapping of names to strings")
    for key in LOCAL_PATH_KEYS:
        if key in env:
            paths = env[key] if isinstance(env[key], list) else [env[key]]
            if not all(isinstance(p, str) for p in paths):
                raise HamtuneError(f"{where}: {key}: expected a path or URI" + ("s" if key == "py_modules" else ""))
            located = [p if "://" in p else str((base / p).expanduser().absolute()) for p in paths]
            for path in located:
                if "://" not in path and not Path(path).exists():
                    raise HamtuneError(f"{where}: {key}: {path} does not exist")
            env[key] = located if isinstance(env[key], list) else located[0]
    return env


def read_runtime_env(text: str) -> dict:
    """--runtime-env: inline JSON (`{"pip": [...]}`) or a JSON/YAML file."""
    import json

    from hamtune.errors import UsageError
    from hamtune.yamlfile import load_yaml

    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--runtime-env: not valid JSON ({exc})") from None
        return runtime_env(value, "--runtime-env", Path.cwd())
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"--runtime-env: {text} is neither inline JSON nor a file")
    try:
        value = load_yaml(path.read_text())
    except Exception as exc:  # YAML's errors (and a duplicate key) are many classes: one line either way
        raise UsageError(f"--runtime-env: {path}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    return runtime_env(value, f"--runtime-env {path}", path.parent)


def release(version: str) -> str:
    """A torch version without its build tag: CUDA torch on GPU nodes (+cu128) matches CPU torch (+cpu) on a laptop."""
    return version.split("+", 1)[0]
