"""`qa-service sources`: the articles of a running service, listed, added, replaced
or deleted through its API (writing needs a key of scope write). A write returns once
answers come from it, unless --no-wait.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qa_service.core.results import SourceInfo, WriteStatus

from .common import echo_json, service_option

if TYPE_CHECKING:
    from qa_service.client import QAClient


def _article_option(command):
    """FILE, --name and the metadata options, passed on as `name`, `text` and `metadata`."""

    @functools.wraps(command)
    def with_article(
        *args,
        file: Path,
        name: str | None,
        title: str | None,
        publisher: str | None,
        date: str | None,
        article_url: str | None,
        **kwargs,
    ):
        given = {"title": title, "publisher": publisher, "date": date, "url": article_url}
        metadata = {field: value for field, value in given.items() if value is not None}
        text = _read_utf8(file)
        return command(*args, name=name or file.name, text=text, metadata=metadata, **kwargs)

    file = click.argument(
        "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
    )
    name = click.option("--name", help="The source's name (.txt or .md)  [default: FILE's name]")
    title = click.option("--title", help="Shown with citations; else the article's first line.")
    publisher = click.option("--publisher", help="Who published it.")
    date = click.option("--date", help="When, as written by the publisher.")
    article_url = click.option("--article-url", help="Where the original article is.")
    return file(name(title(publisher(date(article_url(with_article))))))


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the JSON the service returned."
)
_wait_option = click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Return once answers come from the write, or at once with the write's id.",
)


@click.group()
def sources() -> None:
    """Articles of a running service: list them, or write them with a key of scope write."""


@sources.command("list")
@_json_option
@service_option
def list_sources_command(as_json: bool, client: QAClient) -> None:
    """Every indexed source: name, passages and title."""
    from qa_service.web.schemas import SourceListSchema

    found = client.sources()
    if as_json:
        echo_json(SourceListSchema(), {"sources": found})
        return
    for info in found:
        click.echo(f"{info.name}\t{info.passages}\t{info.title}")


@sources.command("add")
@_article_option
@_json_option
@_wait_option
@service_option
def add_source_command(
    name: str, text: str, metadata: dict[str, str], as_json: bool, wait: bool, client: QAClient
) -> None:
    """Add the UTF-8 article FILE (refused if its name is taken)."""
    _echo_source("added", client.add_source(name, text, wait=wait, **metadata), as_json)


@sources.command("replace")
@_article_option
@_json_option
@_wait_option
@service_option
def replace_source_command(
    name: str, text: str, metadata: dict[str, str], as_json: bool, wait: bool, client: QAClient
) -> None:
    """Replace (or add) an article with FILE; metadata options left out are dropped."""
    _echo_source("written", client.replace_source(name, text, wait=wait, **metadata), as_json)


@sources.command("delete")
@click.argument("name")
@_wait_option
@service_option
def delete_source_command(name: str, wait: bool, client: QAClient) -> None:
    """Remove the article NAME and its metadata."""
    accepted = client.delete_source(name, wait=wait)
    if accepted is None:
        click.echo(f"deleted {name}")
    else:
        _echo_source("deleted", accepted, False)


def _read_utf8(path: Path) -> str:
    """The text of an article file, or a usage error when it is not UTF-8."""
    try:
        # Decoded as the corpus reader decodes articles, so what is sent is what it indexes.
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).", param_hint="'FILE'"
        ) from exc


def _echo_source(done: str, info: SourceInfo | WriteStatus, as_json: bool) -> None:
    """One written source: the JSON the service returned, or one line saying what was done
    (or, for a write not waited for, that it is being indexed)."""
    if isinstance(info, WriteStatus):
        from qa_service.web.write_schemas import WriteSchema

        if as_json:
            echo_json(WriteSchema(), info)
        else:
            click.echo(f"{done} {info.source}: being indexed (write {info.id})")
        return
    if as_json:
        from qa_service.web.schemas import SourceInfoSchema

        echo_json(SourceInfoSchema(), info)
    else:
        passages = "passage" if info.passages == 1 else "passages"
        click.echo(f"{done} {info.name} ({info.passages} {passages}): {info.title}")
