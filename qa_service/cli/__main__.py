"""`python -m qa_service.cli`."""

from .main import main

main()
