"""Building an index's generations and opening the current one; the public names re-exported."""

from qa_service.engines import configured_engine, engine_for

from .build import BuildReport, build_index, corpus_hash, prepare, prepare_layer, update_index
from .handle import FILE_CHECK_SECONDS, IndexHandle, check_index, open_generation

__all__ = [
    "FILE_CHECK_SECONDS",
    "BuildReport",
    "IndexHandle",
    "build_index",
    "check_index",
    "configured_engine",
    "corpus_hash",
    "engine_for",
    "open_generation",
    "prepare",
    "prepare_layer",
    "update_index",
]
