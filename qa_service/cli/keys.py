"""`qa-service keys`: API keys made and listed in the keys file, stored as digests."""

from __future__ import annotations

from pathlib import Path

import click

from qa_service.web.keys import SCOPES


@click.group()
def keys() -> None:
    """API keys: stored as digests in the keys file the server reads (keys.json in the
    index folder, or QA_API_KEYS_FILE)."""


_keys_file = click.option(
    "--file",
    "keys_file",
    envvar="QA_API_KEYS_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The keys file (env QA_API_KEYS_FILE; default keys.json in the index folder, QA_INDEX).",
)


def _path(keys_file: Path | None) -> Path:
    """The keys file given, else the one the server reads with the same settings."""
    from qa_service.config import keys_path, load_config

    return keys_file or keys_path(load_config())


@keys.command("add")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=["read"],
    show_default=True,
    help="What the key may do (repeat for more).",
)
@_keys_file
def add_key_command(name: str, scopes: tuple[str, ...], keys_file: Path | None) -> None:
    """Make a key NAME; print its secret (shown this once, stored only as a digest)."""
    from qa_service.web.keys import add_key

    try:
        secret = add_key(_path(keys_file), name, scopes)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(secret)


@keys.command("list")
@_keys_file
def list_keys_command(keys_file: Path | None) -> None:
    """The keys' names and scopes (never their secrets)."""
    from qa_service.web.keys import load_keys

    try:
        found = load_keys(_path(keys_file))
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for key in found:
        click.echo(f"{key.name}\t{','.join(key.scopes)}")


@keys.command("remove")
@click.argument("name")
@_keys_file
def remove_key_command(name: str, keys_file: Path | None) -> None:
    """Remove the key NAME: a running service refuses it within a second."""
    from qa_service.web.keys import remove_key

    try:
        remove_key(_path(keys_file), name)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"removed {name}")
