"""The Whoosh engine: generations as folders of files, read into each worker."""
