"""The PostgreSQL engine: generations as schemas of one database, optionally sharded."""
