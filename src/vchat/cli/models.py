"""`vchat models` (list, pull) and `vchat doctor`: what the model runtime would load, from where, and on what."""

from __future__ import annotations

import contextlib
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vchat import __version__
from vchat.cli.common import stderr
from vchat.errors import VchatError

if TYPE_CHECKING:
    from vchat.config import Settings
    from vchat.runtime.manager import ModelManager

models_app = typer.Typer(
    help="List the visual models (where from, downloaded or not, size, where loaded) and download them.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", metavar="PATH", help="Config file (default: user config dir).")
]


def _stdout() -> Console:
    from vchat.ui.render import listing_console

    return listing_console()


def _fail(message: str, code: int = 1) -> typer.Exit:
    from vchat.ui.render import print_error

    print_error(stderr(), message)  # escaped: a key typed as `[/x]` or a `[models]` hint is text, not markup
    return typer.Exit(code)


def _load(ctx: typer.Context, config: Path | None) -> Settings:
    from vchat.config import Settings, load_settings

    found = ctx.find_object(Settings)
    if found is not None and config is None:
        return found
    return load_settings(config_path=config)


def model_rows(settings: Settings, manager: ModelManager | None = None) -> list[dict[str, Any]]:
    """One row per model key: id or folder, local or not, downloaded state, bytes on disk, where it is loaded."""
    from vchat.runtime import hub
    from vchat.runtime.catalog import CLASSIC_ONLY, CURRENT_ONLY, DEFAULT_MODELS, components_of

    resident = manager.resident() if manager is not None else {}
    rows = []
    for key in DEFAULT_MODELS:
        specs = components_of(key)
        tier = "current" if key in CURRENT_ONLY else ("classic" if key in CLASSIC_ONLY else "both")
        if not specs:
            # A key whose loading parts are not in the catalog yet: its id is known, its state is not.
            rows.append(
                {
                    "key": key,
                    "tier": tier,
                    "ref": hub.model_ref(key, settings.models),
                    "local": False,
                    "cached": "unknown",
                    "bytes": 0,
                    "resident": "",
                }
            )
            continue
        files: list[Path] = []
        missing = 0
        sources = [hub.source_for(spec, settings.models) for spec in specs]
        counted = 0
        for spec, source in zip(specs, sources, strict=True):
            found, lacking = hub.find_files(spec, source)
            files.extend(found)
            # Parts made only of optional files (a safety checker some checkpoints lack) say nothing about
            # whether the model is there: counting them made "partial 2/7" out of nothing at all.
            if hub.has_required_files(spec):
                counted += 1
                missing += bool(lacking)
        present = counted - missing
        state = "yes" if missing == 0 else ("no" if present == 0 else f"partial {present}/{counted}")
        places = sorted({resident[s.key][0] for s in specs if s.key in resident})
        rows.append(
            {
                "key": key,
                "tier": tier,
                "ref": hub.model_ref(key, settings.models),
                "local": sources[0].local,
                "cached": state,
                "bytes": hub.disk_size(dict.fromkeys(files)),
                "resident": ", ".join(places),
            }
        )
    return rows


def models_table(settings: Settings, manager: ModelManager | None = None, active: str | None = None) -> Table:
    """The `vchat models` table (the REPL can pass its manager to fill in the resident column).

    With `active` (a tier name), the tier column marks the rows that tier uses with `*`.
    """
    from vchat.runtime.memory import format_size

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for name in ("key", "tier", "id or path", "downloaded", "on disk", "loaded on"):
        table.add_column(name, justify="right" if name == "on disk" else "left")
    for row in model_rows(settings, manager):
        used = active is not None and row["tier"] in ("both", active)
        cached = (
            row["cached"] if not row["local"] else ("folder" if row["cached"] == "yes" else "folder " + row["cached"])
        )
        style = "green" if row["cached"] == "yes" else ("red" if row["cached"] == "no" else "yellow")
        table.add_row(
            row["key"],
            f"{row['tier']}{' *' if used else ''}",
            row["ref"],
            f"[{style}]{cached}[/]",
            format_size(row["bytes"]) if row["bytes"] else "-",
            row["resident"] or "-",
        )
    return table


@models_app.callback()
def models_main(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """List every model key, where it comes from, whether it is downloaded, its size and where it is loaded."""
    try:
        settings = _load(ctx, config)
    except VchatError as exc:
        raise _fail(str(exc)) from None
    ctx.obj = settings
    if ctx.invoked_subcommand is None:
        from vchat.runtime import hub

        console = _stdout()
        active, why = tier_in_use(settings)
        console.print(models_table(settings, active=active))
        console.print(f"active tier: {active} ({why}); * marks the models it uses", markup=False)
        offline = " (offline: HF_HUB_OFFLINE is set)" if hub.is_offline() else ""
        console.print(
            f"cache: {hub.cache_dir()}{offline}; fetch ahead with `vchat models pull [KEY…]` or `--tier current`",
            markup=False,
        )


def tier_in_use(settings: Settings) -> tuple[str, str]:
    """(tier, why) for the listing: the setting, or what `auto` resolves to on this machine."""
    if settings.tier in ("classic", "current"):
        return settings.tier, f"set to {settings.tier}"
    from vchat.runtime.tiers import resolve_auto

    choice = resolve_auto(settings)
    return choice.tier, f"auto: {choice.reason}"


@models_app.command("pull")
def pull_command(
    ctx: typer.Context,
    keys: Annotated[
        list[str] | None,
        typer.Argument(metavar="[KEY]...", help="Model keys (default: every one the tier uses not downloaded yet)."),
    ] = None,
    tier: Annotated[
        str | None,
        typer.Option("--tier", metavar="TIER", help="Fetch the models of this tier: classic or current."),
    ] = None,
) -> None:
    """Download models into the Hugging Face cache, with progress bars on stderr."""
    from vchat.runtime import hub
    from vchat.runtime.catalog import COMPONENTS, DEFAULT_MODELS, TIER_NAMES, tier_models

    settings = _load(ctx, None)
    err = stderr()
    if tier is not None and tier not in TIER_NAMES:
        raise _fail(f"--tier must be classic or current, not {tier!r}", code=2)
    if tier is not None and keys:
        raise _fail("give model keys or --tier, not both", code=2)
    wanted = list(keys or [])
    unknown = [k for k in wanted if k not in DEFAULT_MODELS and k not in COMPONENTS]
    if unknown:
        # A bad command line (exit 2), like an unknown tool; with did-you-mean for a near key.
        import difflib

        close = difflib.get_close_matches(unknown[0], [*DEFAULT_MODELS, *COMPONENTS], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise _fail(f"unknown model {unknown[0]!r}; {hint}`vchat models` lists the keys", code=2)
    if not wanted:
        chosen = tier or tier_in_use(settings)[0]
        uses = set(tier_models(chosen))
        rows = [row for row in model_rows(settings) if row["key"] in uses]
        wanted = [row["key"] for row in rows if row["cached"] not in ("yes", "unknown") and not row["local"]]
        if not wanted:
            err.print(f"every model of the {chosen} tier is already downloaded")
            return
    if any(k == "planner" or k.startswith("planner.") for k in wanted) and "planner" not in settings.models:
        # The planner's default depends on the device it will run on: the 2B with a GPU or MPS, else the 0.8B.
        from vchat.runtime.catalog import planner_default
        from vchat.runtime.devices import resolve_device

        with contextlib.suppress(ImportError, VchatError):
            settings.models["planner"] = planner_default(resolve_device(settings.runtime.device))
    if keys:
        # Named models already in the cache need no network: say so, even offline, and fetch only the rest.
        cached = {row["key"] for row in model_rows(settings) if row["cached"] == "yes" or row["local"]}
        here = [k for k in wanted if k in cached]
        if here:
            err.print(f"already downloaded: {', '.join(here)} (in {hub.cache_dir()})")
        wanted = [k for k in wanted if k not in cached]
        if not wanted:
            return
    try:
        hub.ensure_pullable()
        err.print(f"pulling {', '.join(wanted)} into {hub.cache_dir()}")
        done = hub.pull(wanted, settings.models, log=lambda line: err.print(line))
    except VchatError as exc:
        raise _fail(str(exc)) from None
    for repo_id, path in done:
        err.print(f"[green]done[/] {escape(repo_id)} -> {escape(str(path))}")


def doctor(settings: Settings) -> bool:
    """Print the language model (and whether it answers), then what the runtime sees: device, memory, cache, network.

    Returns False when the language model that would be used does not answer (or cannot be built).
    """
    from vchat.runtime import devices, hub, memory

    console = _stdout()
    rows: list[tuple[str, str]] = []
    rt = settings.runtime
    rows.append(("vchat", f"{__version__} (Python {platform.python_version()}, {sys.platform})"))
    rows.append(("config", str(settings.config_path) if settings.config_path else "none (defaults)"))
    from vchat.llm.check import llm_rows
    from vchat.runtime.catalog import COMPONENTS, DEFAULT_MODELS

    llm_report = llm_rows(settings)
    rows.extend(llm_report)
    answered = not any(text.startswith(("no:", "error:")) for _, text in llm_report)
    unknown = sorted(k for k in settings.models if k not in DEFAULT_MODELS and k not in COMPONENTS)
    if unknown:
        rows.append(("[models]", f"unknown key(s) ignored: {', '.join(unknown)}; `vchat models` lists the keys"))
    try:
        import torch

        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
        rows.append(("torch", f"{torch.__version__} ({build})"))
        device = devices.resolve_device(rt.device)
        free, total = devices.device_memory(device)
        name = devices.device_name(device)
        rows.append(("device", f"{device}: {name} (setting {rt.device!r})"))
        tools_dtype = devices.resolve_dtype(rt.dtype, device)
        # The built-in planner has a dtype of its own (bf16) when the setting is auto: say both when they differ.
        from vchat.runtime.catalog import component

        planner_dtype = devices.resolve_dtype(rt.dtype, device, preferred=component("planner").preferred_dtype)
        both = tools_dtype if planner_dtype == tools_dtype else f"{tools_dtype} (tools), {planner_dtype} (planner)"
        rows.append(("dtype", f"{both} (setting {rt.dtype!r})"))
        if devices.is_accelerator(device):
            vram = _budget_text(rt.vram_budget, free, total, accelerator=True)
            rows.append(
                ("GPU memory", f"{memory.format_size(free)} free of {memory.format_size(total)}; budget {vram}")
            )
    except ImportError:
        rows.append(("torch", "not installed: the visual tools cannot run"))
    except VchatError as exc:
        rows.append(("device", f"error: {exc}"))
    tier, why = tier_in_use(settings)
    rows.append(("model tier", f"{tier} ({why})"))
    avail, ram_total = devices.host_memory()
    ram = _budget_text(rt.ram_budget, avail, ram_total, accelerator=False)
    rows.append(("RAM", f"{memory.format_size(avail)} available of {memory.format_size(ram_total)}; budget {ram}"))
    cache = hub.cache_dir()
    rows.append(("HF cache", f"{cache}" + ("" if cache.is_dir() else " (not created yet)")))
    offline = hub.is_offline()
    if offline:
        rows.append(("offline", "yes (HF_HUB_OFFLINE is set: nothing will download)"))
    elif not hub.reachable():
        # Not set offline, but no network to the hub either: say so, rather than a cheerful "no".
        offline = True
        rows.append(("offline", f"yes: {hub.endpoint()} cannot be reached, so nothing can download now"))
    else:
        rows.append(("offline", f"no ({hub.endpoint()} answers)"))
    pending = [row for row in model_rows(settings) if row["cached"] != "yes"]
    if pending:
        names = ", ".join(f"{row['key']} ({row['ref']})" for row in pending)
        verb = "missing, cannot download while offline" if offline else "downloaded on first use"
        rows.append(("models", f"{len(pending)} {verb}: {names}"))
    else:
        rows.append(("models", "all downloaded"))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"{label:<{width}}  {value}", markup=False)
    return answered


def _budget_text(setting: str, free: int, total: int, accelerator: bool) -> str:
    from vchat.runtime import memory

    try:
        parsed = memory.parse_budget(setting)
    except VchatError as exc:
        return f"error: {exc}"
    if parsed == memory.AUTO:
        return f"{memory.format_size(memory.auto_budget(free, total, accelerator))} (auto: free minus a reserve)"
    return "unlimited" if parsed is None else memory.format_size(int(parsed))
