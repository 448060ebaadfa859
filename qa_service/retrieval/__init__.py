"""What answering needs, whatever engine holds the index: the store protocol, analysis,
scoring, the models and the search that puts them together."""
