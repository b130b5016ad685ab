"""``greenflow plugins [--check] [--json]``: what is installed, from which distribution."""

from __future__ import annotations

import json

import click

from greenflow.plugins import PluginInfo, available


@click.command("plugins")
@click.option("--check", is_flag=True, help="Exit with status 1 if any plugin fails to load.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins(check: bool, as_json: bool) -> None:
    """List installed plugins: name, kind, distribution, version and whether each loads.

    Every plugin is imported to know its status; a failed one shows why (a missing
    dependency, a name registered by two distributions, a class that is not a plugin).
    """
    infos = available()
    if as_json:
        click.echo(json.dumps([info.to_json() for info in infos], indent=2))
    else:
        _print_table(infos)
    failed = [info for info in infos if info.status == "failed"]
    if check and failed:
        names = ", ".join(f"{info.kind.value} {info.name!r}" for info in failed)
        click.echo(f"{len(failed)} plugin(s) failed to load: {names}", err=True)
        raise click.exceptions.Exit(1)


def _print_table(infos: list[PluginInfo]) -> None:
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Created here, not at import: click's test runner swaps sys.stdout per invocation.
    console = Console()
    if not infos:
        console.print(
            "No plugins installed (not even greenflow-core's built-ins: is it installed?)"
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "kind", "distribution", "version"):
        table.add_column(column, no_wrap=True)
    table.add_column("status", overflow="fold")
    for info in infos:
        status = (
            Text("ok", style="green")
            if info.status == "ok"
            else Text(f"failed: {info.error}", style="red")
        )
        table.add_row(
            info.name, info.kind.value, info.distribution or "?", info.version or "?", status
        )
    if console.is_terminal:
        console.print(table)
        return
    # A pipe, a file, CI's log: rich would fit the table to 80 columns and fold an error
    # into a column a few characters wide. As wide as the widest row instead, so that each
    # plugin is one line to read or grep, without the blanks that pad the last column.
    width = Console(width=1_000_000, file=io.StringIO()).measure(table).maximum
    text = io.StringIO()
    Console(width=width, file=text, color_system=None).print(table)
    for line in text.getvalue().splitlines():
        click.echo(line.rstrip())
