"""Text in, records out: articles, passages with exact offsets, citations. No engine, no Flask."""
