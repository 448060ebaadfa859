"""The Whoosh engine: generations as folders under one index folder.

The folders' life (build, swap, clean, manifests) is engines/generations.py's;
beside the generations, every version of every article indexed, by SHA-256.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from qa_service.core.results import SourceDocument
from qa_service.engines import KEPT, generations
from qa_service.engines.layered import LayeredStore, full_build_of, served_passages
from qa_service.retrieval.store import SHA256, VERSIONS_DAYS, Layer, PassageStore, PreparedIndex

from .generation import DEFERRED_FILES, open_folder, open_whoosh
from .write import write

log = logging.getLogger(__name__)
# Beside the generations: every version of every article indexed, by SHA-256.
VERSIONS = "versions"


class WhooshEngine:
    """Generations as folders under `index_dir` (an `store.Engine`)."""

    # Every request reads the `current` link afresh.
    seen_within = 0.0

    def __init__(self, index_dir: Path | str, versions_days: float = VERSIONS_DAYS):
        self.index_dir = Path(index_dir)
        self.versions_days = versions_days
        self.kept_dir = self.index_dir / KEPT

    def current_name(self) -> str | None:
        """The current generation's name, or None."""
        return generations.current_name(self.index_dir)

    def unchanged(self, corpus_hash: str) -> tuple[str, int] | None:
        """The current generation's name and passages if built from `corpus_hash` and intact."""
        current = generations.read_current_manifest(self.index_dir)
        if not current or current.get("corpus_hash") != corpus_hash:
            return None
        try:
            generations.check_manifest(self.index_dir / generations.CURRENT_LINK, current)
        except (OSError, ValueError) as exc:
            log.warning("rebuilding the damaged current generation: %s", exc)
            return None
        return current["generation"], current["passages"]

    def build_lock(self):
        """One build at a time per index folder, across processes."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return generations.build_lock(self.index_dir)

    def publish(self, prepared: PreparedIndex, corpus_hash: str, layer: Layer | None = None) -> str:
        """Write a new generation folder beside the current one and swap it in; a layer's
        folder holds the layer alone (its encoder is its base's)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        held = []  # the versions the new generation cites besides its own sources
        passages = len(prepared.passages)  # what it serves: with a layer, the base's visible too
        if layer is not None:
            base = generations.read_manifest(self.index_dir / layer.base)
            if base is None or base.get("layer"):
                raise ValueError(f"no full build {layer.base} to lay a layer over")
            held = [s["sha256"] for s in base["sources"] if s["name"] not in layer.hidden]
            passages = served_passages(base["passages"], layer.hidden, passages)
        with generations.new_generation(self.index_dir, corpus_hash) as (folder, name):
            write(folder, prepared, encoder=layer is None)
            manifest = {
                "generation": name,
                "corpus_hash": corpus_hash,
                "passages": passages,
                "sources": prepared.sources,
            }
            if layer is not None:
                manifest["layer"] = {"base": layer.base, "hidden": dict(layer.hidden)}
            generations.write_manifest(folder, manifest)
        self._keep_versions(prepared.sources, held)
        return name

    def _keep_versions(self, sources: list[dict], held: Sequence[str] = ()) -> None:
        """Store each article's text by its SHA-256 (once), mark it and the `held` versions
        seen, forget old ones."""
        folder = self.index_dir / VERSIONS
        folder.mkdir(exist_ok=True)
        current = {f"{sha256}.json" for sha256 in held}
        for sha256 in held:
            with contextlib.suppress(FileNotFoundError):
                os.utime(folder / f"{sha256}.json")
        for source in sources:
            path = folder / f"{source['sha256']}.json"
            current.add(path.name)
            if path.exists():
                os.utime(path)  # seen now: its retention starts again
                continue
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(source, ensure_ascii=False), encoding="utf-8")
            os.replace(partial, path)
        cutoff = time.time() - self.versions_days * 86400
        for path in folder.glob("*.json"):
            if path.name not in current and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def version(self, sha256: str) -> SourceDocument | None:
        """An article's text as some build indexed it, by the text's SHA-256, or None."""
        if not SHA256.fullmatch(sha256):
            return None
        try:
            text = (self.index_dir / VERSIONS / f"{sha256}.json").read_text(encoding="utf-8")
        except OSError:
            return None
        return SourceDocument(**json.loads(text))

    def open(self, reuse: PassageStore | None = None, *, whole: bool = True) -> PassageStore:
        """Open the current generation, or raise IndexUnavailable; a layer's base is taken
        from `reuse` when it lies over the same (no reading, no checking again)."""
        # Not whole, the files read at first use are checked then (the bulk of the bytes).
        deferred = () if whole else DEFERRED_FILES
        with generations.unavailable_unless_readable(self.index_dir) as folder:
            manifest = generations.verified_manifest(folder, deferred=deferred)
            if not (layer := manifest.get("layer")):
                return open_folder(folder, manifest, whole=whole)
            base = full_build_of(reuse)
            if base is None or base.info.name != layer["base"]:
                base_folder = self.index_dir / layer["base"]
                manifest_of_base = generations.verified_manifest(base_folder, deferred=deferred)
                base = open_folder(base_folder, manifest_of_base, whole=whole)
            top = open_folder(folder, manifest, base.info.encoder, whole=whole)
            hidden = {name: tuple(span) for name, span in layer["hidden"].items()}
            return LayeredStore(folder.name, base, top, Layer(layer["base"], hidden))

    def check(self) -> str:
        """The current generation's name if its files (and its base's) open, else raise
        IndexUnavailable."""
        with generations.unavailable_unless_readable(self.index_dir) as folder:
            manifest = generations.verified_manifest(folder)
            open_whoosh(folder).doc_count()
            if layer := manifest.get("layer"):
                generations.verified_manifest(self.index_dir / layer["base"])
                open_whoosh(self.index_dir / layer["base"]).doc_count()
            return folder.name
