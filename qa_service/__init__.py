"""Citation-backed question answering over a folder of text articles."""
