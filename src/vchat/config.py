"""Settings: defaults < TOML config file < VCHAT_* / OPENAI_* environment < command-line flags."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vchat.errors import ConfigError
from vchat.mcp_config import McpServer, mcp_server
from vchat.userfiles import UserFileError, read_text

PREVIEW_MODES = ("auto", "kitty", "iterm", "sixel", "blocks", "none")
# The settings with a fixed set of values (validated in `_validate`; these types let mypy check the comparisons).
Protocol = Literal["react", "tools"]
VisionMode = Literal["auto", "on", "off"]
PngStyle = Literal["fast", "small"]
Tier = Literal["auto", "classic", "current"]
SafetyMode = Literal["auto", "on", "off"]
PreviewMode = Literal["auto", "kitty", "iterm", "sixel", "blocks", "none"]
KEEP_POLICIES = ("resident", "offload")


@dataclass
class RuntimeSettings:
    """The `[runtime]` table: where visual models run and how much memory they may take."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float16 | bfloat16 | float32
    vram_budget: str = "auto"  # auto, or a size like "6GB" / "5.5GiB" / bytes
    ram_budget: str = "auto"


@dataclass
class ToolPolicy:
    """One `[tools.NAME]` table: per-tool device override and residency policy."""

    device: str | None = None
    keep: str | None = None  # resident | offload


@dataclass
class Settings:
    """Every setting vchat reads; built once by `load_settings`."""

    llm: str = "auto"  # auto | openai | local | local:ID_OR_FOLDER | none | scripted:FILE
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    out_dir: Path = Path("vchat-out")
    max_steps: int = 8
    max_format_retries: int = 2
    timeout: float = 120.0
    temperature: float = 0.0  # 0: greedy (deterministic); above 0 the built-in planner samples
    top_p: float = 1.0  # nucleus sampling for the built-in planner (used only when temperature > 0)
    stream: bool = True  # some servers stream badly; VCHAT_STREAM=0 asks for whole replies
    # -- the language model's protocol and limits --
    protocol: Protocol = "react"  # react (text ReAct, any model) | tools (native function calling)
    history_budget: int = 6000  # estimated tokens of earlier turns kept in full; older ones condensed (0: never)
    max_tokens: int = 1024  # new tokens per model reply (sent as max_tokens; the built-in planner's cap)
    reply_deadline: float = 300.0  # seconds a whole model reply may take, streaming included
    vision: VisionMode = "auto"  # auto | on | off: give the planner the newest images as pixels
    # Decode replies under a grammar of the offered tools and existing images: auto (the built-in planner: on;
    # servers: off) | on (servers too: sent as their structured-output option) | off
    constrain: str = "auto"
    planner_int8: str = "auto"  # int8 weights for the built-in planner: auto (on a CPU) | on (CPU only) | off
    planner_threads: int = 0  # CPU threads the built-in planner decodes with; 0: the cores not already busy
    vision_max_side: int = 448  # long side, in pixels, of images shown to the planner
    vision_images: int = 3  # how many of the newest images are shown as pixels (older ones by handle)
    max_image_pixels: int = 64_000_000
    # PNG encoding of outputs: fast (default) | small; see store/files.py PNG_STYLES for what each costs
    png_compression: PngStyle = "fast"
    # Which default checkpoints the tools use: classic (SD 1.5 family, 4-6 GB), current (FLUX.2 [klein], SAM 3,
    # Depth Anything V2) or auto (current where the device's memory holds it); `[models]` overrides still win.
    tier: Tier = "auto"
    caption_on_attach: bool = False  # caption each attached image for the model (costs a BLIP run)
    safety_checker: SafetyMode = "auto"  # auto (when the checkpoint ships one) | on | off
    sd_max_side: int = 768  # Stable Diffusion works at most this many pixels on the long side
    sd_upscale_small: bool = False  # run small inputs at 512 px instead of their own size
    preview: PreviewMode = "auto"
    verbose: bool = False
    debug: bool = False
    config_path: Path | None = None
    models: dict[str, str] = field(default_factory=dict)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    tools: dict[str, ToolPolicy] = field(default_factory=dict)
    mcp_servers: dict[str, McpServer] = field(default_factory=dict)
    plugins: bool = True  # load tools from installed packages (the `vchat.tools` entry-point group)

    def tool_policy(self, name: str) -> ToolPolicy:
        """The user's policy for one tool (empty when none is configured)."""
        return self.tools.get(name, ToolPolicy())


# Top-level keys the TOML file and VCHAT_* variables may set, with their parsers.
_SCALARS: dict[str, type] = {
    "llm": str,
    "model": str,
    "base_url": str,
    "api_key": str,
    "out_dir": Path,
    "max_steps": int,
    "max_format_retries": int,
    "timeout": float,
    "temperature": float,
    "top_p": float,
    "stream": bool,
    "protocol": str,
    "history_budget": int,
    "max_tokens": int,
    "reply_deadline": float,
    "vision": str,
    "constrain": str,
    "planner_int8": str,
    "planner_threads": int,
    "vision_max_side": int,
    "vision_images": int,
    "max_image_pixels": int,
    "png_compression": str,
    "tier": str,
    "caption_on_attach": bool,
    "safety_checker": str,
    "sd_max_side": int,
    "sd_upscale_small": bool,
    "preview": str,
    "verbose": bool,
    "debug": bool,
    "plugins": bool,
}

# Environment names that do not follow the VCHAT_<KEY> pattern.
_ENV_ALIASES = {"VCHAT_OUT": "out_dir"}


def default_config_path() -> Path:
    """Where the config file lives unless VCHAT_CONFIG says otherwise."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("vchat", appauthor=False)) / "config.toml"


def _coerce(key: str, kind: type, value: Any, origin: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is Path:
            return Path(str(value)).expanduser()
        if kind is int and isinstance(value, float):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {key} = {value!r} is not a valid {kind.__name__}") from None


def _apply_scalars(settings: Settings, values: Mapping[str, Any], origin: str) -> None:
    for key, value in values.items():
        if value is None:
            continue
        if key not in _SCALARS:
            import difflib

            close = difflib.get_close_matches(key, list(_SCALARS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{origin}: unknown setting {key!r}{hint}")
        setattr(settings, key, _coerce(key, _SCALARS[key], value, origin))


def _apply_file(settings: Settings, path: Path) -> None:
    try:
        data = tomllib.loads(read_text(path, "config file"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except UserFileError as exc:
        raise ConfigError(str(exc)) from None
    origin = str(path)
    models = data.pop("models", {})
    runtime = data.pop("runtime", {})
    tools = data.pop("tools", {})
    servers = data.pop("mcp_servers", {})
    if not isinstance(servers, dict) or not all(isinstance(t, dict) for t in servers.values()):
        raise ConfigError(f"{path}: [mcp_servers] must hold one table per server, e.g. [mcp_servers.comfy]")
    settings.mcp_servers.update({name: mcp_server(name, table, str(path)) for name, table in servers.items()})
    _apply_scalars(settings, data, origin)
    if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
        raise ConfigError(f"{origin}: [models] maps keys to hub ids or folders (strings)")
    settings.models.update({k: str(Path(v).expanduser()) if v.startswith("~") else v for k, v in models.items()})
    if not isinstance(runtime, dict):
        raise ConfigError(f"{origin}: [runtime] must be a table")
    for key, value in runtime.items():
        if key not in {f.name for f in dataclasses.fields(RuntimeSettings)}:
            raise ConfigError(f"{origin}: unknown setting runtime.{key}")
        setattr(settings.runtime, key, str(value))
    if not isinstance(tools, dict):
        raise ConfigError(f"{origin}: [tools] must hold one table per tool")
    for name, table in tools.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [tools.{name}] must be a table")
        unknown = set(table) - {"device", "keep"}
        if unknown:
            raise ConfigError(f"{origin}: unknown setting tools.{name}.{sorted(unknown)[0]}")
        settings.tools[name] = ToolPolicy(device=table.get("device"), keep=table.get("keep"))


def _apply_env(settings: Settings, env: Mapping[str, str]) -> None:
    # OpenAI's own variables first, so that VCHAT_* ones override them.
    legacy = env.get("OPENAI_API_BASE")
    base = env.get("OPENAI_BASE_URL") or legacy
    if base:
        settings.base_url = base
    if env.get("OPENAI_API_KEY"):
        settings.api_key = env["OPENAI_API_KEY"]
    for name, value in env.items():
        if not name.startswith("VCHAT_") or name == "VCHAT_CONFIG":
            continue
        key = _ENV_ALIASES.get(name, name[len("VCHAT_") :].lower())
        if key in _SCALARS:
            # One at a time, so that an error names the variable that holds the bad value.
            _apply_scalars(settings, {key: value}, f"environment variable {name}")
        elif key in ("device", "dtype", "vram_budget", "ram_budget"):
            setattr(settings.runtime, key, value)


def _validate(settings: Settings) -> None:
    if settings.preview not in PREVIEW_MODES:
        raise ConfigError(f"preview must be one of {', '.join(PREVIEW_MODES)}, not {settings.preview!r}")
    if settings.max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, not {settings.max_steps}")
    if settings.max_format_retries < 0:
        raise ConfigError("max_format_retries cannot be negative")
    for key in ("timeout", "reply_deadline", "temperature", "top_p"):
        if not math.isfinite(getattr(settings, key)):
            raise ConfigError(f"{key} must be a finite number, not {getattr(settings, key)}")
    if settings.timeout <= 0:
        raise ConfigError("timeout must be positive")
    if settings.protocol not in ("react", "tools"):
        raise ConfigError(f"protocol must be react or tools, not {settings.protocol!r}")
    if settings.history_budget < 0:
        raise ConfigError("history_budget cannot be negative (0 keeps every turn in full)")
    if settings.max_tokens < 16:
        raise ConfigError(f"max_tokens must be at least 16, not {settings.max_tokens}")
    if settings.reply_deadline <= 0:
        raise ConfigError("reply_deadline must be positive (seconds)")
    if settings.vision not in ("auto", "on", "off"):
        raise ConfigError(f"vision must be auto, on or off, not {settings.vision!r}")
    if settings.constrain not in ("auto", "on", "off"):
        raise ConfigError(f"constrain must be auto, on or off, not {settings.constrain!r}")
    if settings.planner_int8 not in ("auto", "on", "off"):
        raise ConfigError(f"planner_int8 must be auto, on or off, not {settings.planner_int8!r}")
    if settings.planner_threads < 0:
        raise ConfigError("planner_threads cannot be negative (0 picks the free cores)")
    if settings.vision_max_side < 64:
        raise ConfigError(f"vision_max_side must be at least 64, not {settings.vision_max_side}")
    if settings.vision_images < 0:
        raise ConfigError("vision_images cannot be negative")
    if settings.safety_checker not in ("auto", "on", "off"):
        raise ConfigError(f"safety_checker must be auto, on or off, not {settings.safety_checker!r}")
    if settings.sd_max_side < 256:
        raise ConfigError(f"sd_max_side must be at least 256, not {settings.sd_max_side}")
    if settings.max_image_pixels < 1:
        raise ConfigError("max_image_pixels must be positive")
    if settings.tier not in ("auto", "classic", "current"):
        raise ConfigError(f"tier must be auto, classic or current, not {settings.tier!r}")
    if settings.png_compression not in ("fast", "small"):
        raise ConfigError(f"png_compression must be fast or small, not {settings.png_compression!r}")
    if settings.base_url and url_problem(settings.base_url):
        raise ConfigError(f"base_url {settings.base_url!r} {url_problem(settings.base_url)}")
    if not 0 < settings.top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], not {settings.top_p}")
    if settings.temperature < 0:
        raise ConfigError(f"temperature cannot be negative, not {settings.temperature}")
    llm = settings.llm
    if not (llm in ("auto", "openai", "local", "none") or llm.startswith(("scripted:", "local:"))):
        raise ConfigError(f"llm must be auto, openai, local, local:ID_OR_FOLDER, none or scripted:FILE, not {llm!r}")
    if llm == "local:":
        raise ConfigError("llm = local: needs a hub id or a folder after the colon (or just local)")
    for name, policy in settings.tools.items():
        if policy.keep is not None and policy.keep not in KEEP_POLICIES:
            raise ConfigError(f"tools.{name}.keep must be resident or offload, not {policy.keep!r}")


def check_flags(flags: Mapping[str, Any]) -> None:
    """Validate command-line values on their own, so a bad flag can be told apart from a bad config file."""
    settings = Settings()
    _apply_scalars(settings, dict(flags), "command line")
    _validate(settings)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Build Settings from defaults, the config file, the environment and flags (in that order)."""
    env = os.environ if env is None else env
    settings = Settings()
    explicit = config_path or (Path(env["VCHAT_CONFIG"]).expanduser() if env.get("VCHAT_CONFIG") else None)
    path = explicit or default_config_path()
    # A named file must be there; the default one may be absent, but what stands in its place is read
    # (and refused in one line when it is a folder, a pipe or a device).
    if explicit is not None or os.path.lexists(path):
        _apply_file(settings, path)
        settings.config_path = path
    _apply_env(settings, env)
    _apply_scalars(settings, dict(flags or {}), "command line")
    # Only the address that wins is checked, and the error names where it came from.
    check_url(settings.base_url, _base_url_origin(flags or {}, env, settings.config_path))
    _validate(settings)
    return settings


def _base_url_origin(flags: Mapping[str, Any], env: Mapping[str, str], config: Path | None) -> str:
    if flags.get("base_url") is not None:
        return "command line"
    for name in ("VCHAT_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        if env.get(name):
            return name if name.startswith("OPENAI") else f"environment variable {name}"
    return str(config) if config else "config"


def url_problem(url: str) -> str | None:
    """What is wrong with a server address, in a few words, or None when it can be connected to."""
    from urllib.parse import urlsplit

    text = url.strip()
    if not text.lower().startswith(("http://", "https://")):
        return "needs a scheme: http://" + text + ("" if "/v1" in text else "/v1")
    try:
        parts = urlsplit(text)
        port = parts.port  # parsing the port is what raises on "host:abc" or "host:11434:"
    except ValueError:
        return "is not a valid address: after the host name comes :PORT (a number), then the path, e.g. /v1"
    if not parts.hostname:
        return "has no host name, e.g. http://localhost:11434/v1"
    if port == 0:
        return "has port 0"
    return None


def check_url(url: str | None, origin: str) -> None:
    """Raise a one-line ConfigError naming `origin` when `url` is set and cannot be connected to."""
    problem = url_problem(url) if url else None
    if problem:
        raise ConfigError(f"{origin}: base_url {url!r} {problem}")


def is_local_url(url: str | None) -> bool:
    """True for servers on this machine, which need no real API key."""
    if not url:
        return False
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.endswith(".local")
